"""A region's Redis online store, as the region's writer sees it.

Writes go through server-side Lua scripts so the last-writer-wins decision is atomic inside
Redis (see apply_rows.lua). The Feast keys keep Feast's exact layout; replication metadata
lives under its own prefix and never collides with them. The scripts get the version layout
and order from ``replicator.core.version`` (its Lua rendering is prepended when they load).

Errors are sorted by what a retry can change (docs/replication.md, "Errors"): the server's
state (unreachable, timeout, LOADING, BUSY, OOM, READONLY, MISCONF, ACL denials...) raises
``TransientError`` and is retried; anything else Redis answers to one record's script call
(our ``MALFORMED`` refusals, a Lua runtime error, WRONGTYPE...) is deterministic for that
record and comes back as its outcome, a ``PermanentError``, for the dead-letter topic.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from importlib import resources
from types import TracebackType
from typing import Any, cast

import msgpack
import redis
from redis.retry import Retry

from replicator.config import RedisEndpoint, RedisUser
from replicator.config_security import Credentials, TlsSettings
from replicator.core.egress import F_SINCE_NS, EgressCounts
from replicator.core.keys import (
    NAMESPACE,
    applied_heartbeat_key,
    egress_key,
    emission_key,
    row_versions_key,
    worker_stats_key,
)
from replicator.core.records import ApplyOutcome, DeleteView, EncodedBatch, Heartbeat
from replicator.core.staleness import (
    APPLIED_FIELDS,
    AppliedHeartbeat,
    Emission,
    parse_applied,
    parse_emission,
)
from replicator.core.version import LUA_PRELUDE
from replicator.core.wire import partition_for
from replicator.errors import MalformedRecord, PermanentError, RejectedByStore, TransientError

log = logging.getLogger(__name__)


def script_source(name: str) -> str:
    """A script of this package as Redis runs it: the version prelude, then the file."""
    body = (resources.files("replicator.adapters") / name).read_text(encoding="utf-8")
    return LUA_PRELUDE + body


_APPLY_LUA = script_source("apply_rows.lua")
_DELETE_LUA = script_source("delete_view.lua")
# ARGV: sequence, emitted_ns, applied_ns, plausible_until_ns ('' = no limit): a stored stamp
# above the limit was never emitted by the primary and does not block newer real ones.
_HEARTBEAT_LUA = """
local stored = redis.call('HGET', KEYS[1], 'emitted_ns')
local forged = stored and ARGV[4] ~= '' and tonumber(stored) > tonumber(ARGV[4])
if stored and not forged and tonumber(stored) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'sequence', ARGV[1], 'emitted_ns', ARGV[2], 'applied_ns', ARGV[3])
return 1
"""

_TRANSIENT_CLASSES: tuple[type[redis.RedisError], ...] = (
    redis.ConnectionError,  # unreachable, reset, AUTH refused, LOADING (BusyLoadingError)
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,  # OOM: maxmemory reached
    redis.exceptions.ReadOnlyError,  # READONLY: a replica, or a failover in progress
    redis.exceptions.NoPermissionError,  # NOPERM: the writer user lacks a right (operator)
    redis.exceptions.NoScriptError,  # NOSCRIPT: script cache flushed, loaded on next call
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,  # CLUSTERDOWN, MASTERDOWN
)
TRANSIENT_CODES = frozenset({"BUSY", "MISCONF", "NOREPLICAS", "LOADING", "OOM", "READONLY"})
"""Redis error codes (first word of an error reply) redis-py has no class for that describe
the server's state, not the record: BUSY (another script runs too long), MISCONF (persistence
failing), NOREPLICAS. Every other error reply to a script call is deterministic for it."""


def error_code(error: redis.RedisError) -> str:
    """The Redis error code of an error reply: ``WRONGTYPE``, ``MALFORMED`` (ours), ``ERR``
    (Lua runtime errors among them)..."""
    known = getattr(error, "status_code", None)
    if isinstance(known, str) and known:
        return known
    words = str(error).split(maxsplit=1)
    first = words[0] if words else ""
    return first if first.isupper() and first.isalpha() else "ERR"


def is_transient(error: redis.RedisError) -> bool:
    """Whether retrying the same call can succeed: by class, else by the Redis error code."""
    if isinstance(error, _TRANSIENT_CLASSES):
        return True
    return isinstance(error, redis.ResponseError) and error_code(error) in TRANSIENT_CODES


def connect(
    endpoint: RedisEndpoint,
    user: RedisUser,
    *,
    timeout: float = 30.0,
    connect_timeout: float = 5.0,
    retry: Retry | None = None,
) -> redis.Redis:
    """The one place that makes a Redis client: ``user`` logged in, over TLS when the
    endpoint's ``tls.enabled`` (server certificate checked against ``tls.ca_file``, with the
    client certificate when one is set). Timeouts in seconds."""
    options: dict[str, Any] = tls_options(endpoint.tls)
    if retry is not None:
        options["retry"] = retry
    return redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        username=user.username,
        password=user.password.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout,
        **options,
    )


def feast_connection_string(endpoint: RedisEndpoint, user: RedisUser) -> str:
    """Feast's Redis ``connection_string`` for ``user`` (it holds the password: the file it
    goes in must be private), with the TLS options of ``connect``."""
    return connection_string(endpoint.host, endpoint.port, user, endpoint.tls)


def connection_string(host: str, port: int, user: Credentials, tls: TlsSettings) -> str:
    """Feast's ``host:port,key=value,...`` form of a login to ``host:port`` with ``tls``."""
    options = {k: v for k, v in tls_options(tls).items() if v is not None}
    parts = [
        f"{host}:{port}",
        f"username={user.username}",
        f"password={user.password.get_secret_value()}",
        *(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in options.items()),
    ]
    return ",".join(parts)


def tls_options(tls: TlsSettings) -> dict[str, Any]:
    """redis-py keyword arguments for ``tls`` (none when TLS is off)."""
    if not tls.enabled:
        return {}
    return {
        "ssl": True,
        "ssl_cert_reqs": "required",
        "ssl_ca_certs": str(tls.ca_file) if tls.ca_file else None,
        "ssl_certfile": str(tls.cert_file) if tls.cert_file else None,
        "ssl_keyfile": str(tls.key_file) if tls.key_file else None,
        "ssl_check_hostname": tls.check_hostname,
    }


class RegionStore:
    """Applies row batches and view deletions to one region's Redis (lazily connected)."""

    def __init__(
        self,
        endpoint: RedisEndpoint,
        user: RedisUser,
        *,
        key_ttl_seconds: int | None = None,
    ) -> None:
        self._endpoint = endpoint
        self._user = user
        self._ttl = key_ttl_seconds or 0
        self._client: redis.Redis | None = None

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            self._client = connect(self._endpoint, self._user)
            self._apply = self._client.register_script(_APPLY_LUA)
            self._delete = self._client.register_script(_DELETE_LUA)
            self._heartbeat = self._client.register_script(_HEARTBEAT_LUA)
        return self._client

    def __enter__(self) -> RegionStore:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def apply(self, batches: Sequence[EncodedBatch]) -> list[ApplyOutcome | PermanentError]:
        """Apply encoded row batches in one round trip.

        Returns one outcome per batch, in order: counts, or why Redis refused it for good
        (``MalformedRecord`` for the script's own checks, ``RejectedByStore`` for any other
        error deterministic for that record). Raises TransientError when Redis cannot be
        reached or is in a state a retry can change (``is_transient``); nothing should be
        committed then. Raises RejectedByStore when the call as a whole fails for good (an
        argument redis-py refuses, say): the caller applies the batches one by one to find
        the record it belongs to.
        """
        if not batches:
            return []
        client = self.client
        try:
            replies = self._evalsha_each(client, batches)
            if any(isinstance(reply, redis.exceptions.NoScriptError) for reply in replies):
                # First use, or an emptied script cache (restart, SCRIPT FLUSH): load it and
                # run the batches again (a batch that did run meanwhile is only redelivered).
                client.script_load(self._apply.script)
                replies = self._evalsha_each(client, batches)
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return [self._outcome(reply) for reply in replies]

    def _evalsha_each(self, client: redis.Redis, batches: Sequence[EncodedBatch]) -> list[Any]:
        """One pipeline of the apply script per batch, its replies (errors among them). The
        script is called by EVALSHA itself: a pipeline of redis-py ``Script`` calls first
        asks SCRIPT EXISTS, one more round trip for every apply."""
        with client.pipeline(transaction=False) as pipe:
            for b in batches:
                args: list[bytes | str | int] = [
                    b.payload,
                    b.offset,
                    self._ttl if b.key_ttl_seconds is None else b.key_ttl_seconds,
                    row_versions_key(b.feature_view, b.partition),
                    b.feature_view,
                    "" if b.max_event_s is None else b.max_event_s,
                    _row_indexes(b),
                ]
                pipe.evalsha(self._apply.sha, 0, *args)
            return list(pipe.execute(raise_on_error=False))

    def delete_view(self, delete: DeleteView, partition: int, partitions: int, offset: int) -> int:
        """Remove a view from the keys of one partition written before ``offset`` (the
        deletion's place in the log); returns how many keys lost it. Raises TransientError
        (retry) or RejectedByStore (deterministic for this deletion), as ``apply`` does."""
        args: list[bytes | str | int] = [
            delete.feature_view,
            row_versions_key(delete.feature_view, partition),
            offset,
            *delete.fields,
        ]
        touched = 0
        try:
            for chunk in _chunks(self._keys_of(delete.scan_pattern, partition, partitions), 500):
                touched += int(self._delete(keys=chunk, args=args))
        except redis.RedisError as exc:
            raise self._error(exc) from exc
        return touched

    def record_heartbeat(
        self,
        topic: str,
        partition: int,
        heartbeat: Heartbeat,
        applied_ns: int,
        *,
        plausible_until_ns: int | None = None,
    ) -> None:
        """Remember the newest heartbeat applied for this partition (primary clock kept);
        an older one delivered late (a replay, a worker that lost the partition) is ignored,
        unless the stored one is stamped above ``plausible_until_ns`` (forged: replaced)."""
        key = applied_heartbeat_key(topic, partition)
        limit = "" if plausible_until_ns is None else str(plausible_until_ns)
        args: list[int | str] = [heartbeat.sequence, heartbeat.emitted_ns, applied_ns, limit]
        try:
            client = self.client
            self._heartbeat(keys=[key], args=args, client=client)
        except redis.RedisError as exc:
            raise self._error(exc) from exc

    def write_stats(self, region: str, stats: dict[str, float]) -> None:
        """Publish the worker's counters next to the data (read by the demo and checker)."""
        try:
            self.client.hset(worker_stats_key(region), mapping=stats)
        except redis.RedisError as exc:
            log.debug("cannot write worker stats: %s", exc)

    def add_egress(self, delta: EgressCounts) -> bool:
        """HINCRBY each field of ``delta`` into ``_replicator:egress:<group>`` (one MULTI: all
        fields or none), and set ``since_ns`` if no worker of the group did before."""
        try:
            pipe = self.client.pipeline(transaction=True)
            key = egress_key(delta.group)
            pipe.hsetnx(key, F_SINCE_NS, str(delta.since_ns))
            for name, value in delta.to_fields().items():
                pipe.hincrby(key, name, value)
            pipe.execute()
        except redis.RedisError as exc:
            log.debug("cannot add egress counts: %s", exc)
            return False
        return True

    def _keys_of(self, pattern: bytes, partition: int, partitions: int) -> Iterator[bytes]:
        for key in self.client.scan_iter(match=pattern, count=1000):
            if partition_for(key, partitions) == partition:
                yield key

    def _outcome(self, reply: object) -> ApplyOutcome | PermanentError:
        if isinstance(reply, redis.RedisError):
            if is_transient(reply):
                raise TransientError(f"redis {self._where}: {reply}") from reply
            if error_code(reply) == "MALFORMED":  # the script's own checks (error_reply)
                return MalformedRecord(str(reply).split(maxsplit=1)[-1])
            return RejectedByStore(f"redis {self._where} refused the batch: {reply}")
        if isinstance(reply, Exception):
            raise TransientError(f"redis {self._where}: {reply}") from reply
        if not isinstance(reply, list) or len(reply) != 2:
            return RejectedByStore(f"redis {self._where}: unexpected apply reply {reply!r:.200}")
        return ApplyOutcome(int(reply[0]), int(reply[1]))

    def _error(self, exc: redis.RedisError) -> TransientError | RejectedByStore:
        if is_transient(exc):
            return TransientError(f"redis {self._where}: {exc}")
        return RejectedByStore(f"redis {self._where} refused the call: {exc}")

    @property
    def _where(self) -> str:
        return f"{self._endpoint.host}:{self._endpoint.port}"


def read_emission(client: redis.Redis, project: str) -> Emission | None:
    """The primary's newest durable heartbeat round (``HGETALL _replicator:emitted:<project>``,
    replicator.heartbeat writes it); None when absent. Raises ``redis.RedisError``, and
    ``ValueError`` when a field is not what the emitter writes."""
    return parse_emission(cast(dict[bytes, bytes], client.hgetall(emission_key(project))))


def read_applied_heartbeats(
    client: redis.Redis, positions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], AppliedHeartbeat]:
    """The newest heartbeat this region applied per (topic, partition), one pipelined HMGET
    each (``RegionStore.record_heartbeat`` writes them); a partition that applied none is left
    out. Raises ``redis.RedisError``, and ``ValueError`` when a field is not an integer."""
    with client.pipeline(transaction=False) as pipe:
        for topic, partition in positions:
            pipe.hmget(applied_heartbeat_key(topic, partition), list(APPLIED_FIELDS))
        replies = pipe.execute()
    return parse_applied(positions, replies)


def feast_hashes(client: redis.Redis, project: str) -> dict[bytes, dict[bytes, bytes]]:
    """Every Feast key of ``project`` in this Redis with its whole hash (``HGETALL``)."""
    keys = [
        key
        for key in client.scan_iter(match=b"*" + project.encode(), count=1000)
        if not key.startswith(NAMESPACE)
    ]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        return dict(zip(keys, pipe.execute(), strict=True))


def _row_indexes(batch: EncodedBatch) -> bytes:
    """ARGV[7] of apply_rows.lua: the rows' explicit indexes, empty for their positions."""
    if batch.row_indexes is None:
        return b""
    return msgpack.packb(list(batch.row_indexes))


def _chunks(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
