"""A region's Redis online store, as the region's writer sees it.

Writes go through server-side Lua scripts so the last-writer-wins decision is atomic inside
Redis (see apply_rows.lua). The Feast keys keep Feast's exact layout; replication metadata
lives under its own prefix and never collides with them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from importlib import resources
from types import TracebackType

import redis

from replicator.config import RedisEndpoint, RedisUser
from replicator.core.keys import (
    NAMESPACE,
    applied_heartbeat_key,
    row_versions_key,
    worker_stats_key,
)
from replicator.core.records import ApplyOutcome, DeleteView, EncodedBatch, Heartbeat
from replicator.core.wire import partition_for
from replicator.errors import MalformedRecord, TransientError

log = logging.getLogger(__name__)

_SCRIPTS = resources.files("replicator.adapters")
_APPLY_LUA = (_SCRIPTS / "apply_rows.lua").read_text(encoding="utf-8")
_DELETE_LUA = (_SCRIPTS / "delete_view.lua").read_text(encoding="utf-8")
# ARGV: sequence, emitted_ns, applied_ns, plausible_until_ns ('' = no limit): a stored stamp
# above the limit was never emitted by the primary and does not block newer real ones.
_HEARTBEAT_LUA = """
local stored = redis.call('HGET', KEYS[1], 'emitted_ns')
local forged = stored and ARGV[4] ~= '' and tonumber(stored) > tonumber(ARGV[4])
if stored and not forged and tonumber(stored) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'sequence', ARGV[1], 'emitted_ns', ARGV[2], 'applied_ns', ARGV[3])
return 1
"""


def connect(endpoint: RedisEndpoint, user: RedisUser, *, timeout: float = 30.0) -> redis.Redis:
    return redis.Redis(
        host=endpoint.host,
        port=endpoint.port,
        username=user.username,
        password=user.password.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=5,
    )


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

    def apply(self, batches: Sequence[EncodedBatch]) -> list[ApplyOutcome | MalformedRecord]:
        """Apply encoded row batches in one round trip.

        Returns one outcome per batch, in order: counts, or the reason Redis refused it.
        Raises TransientError when Redis cannot be reached or refuses for another reason;
        nothing should be committed then.
        """
        if not batches:
            return []
        client = self.client
        ttl = str(self._ttl)
        try:
            with client.pipeline(transaction=False) as pipe:
                for b in batches:
                    args: list[bytes | str | int] = [
                        b.payload,
                        b.offset,
                        ttl,
                        row_versions_key(b.feature_view, b.partition),
                        b.feature_view,
                        "" if b.max_event_s is None else b.max_event_s,
                    ]
                    self._apply(keys=[], args=args, client=pipe)
                replies = pipe.execute(raise_on_error=False)
        except redis.RedisError as exc:
            raise TransientError(f"redis {self._where}: {exc}") from exc
        return [self._outcome(reply) for reply in replies]

    def delete_view(self, delete: DeleteView, partition: int, partitions: int, offset: int) -> int:
        """Remove a view from the keys of one partition written before ``offset`` (the
        deletion's place in the log); returns how many keys lost it."""
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
            raise TransientError(f"redis {self._where}: {exc}") from exc
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
            raise TransientError(f"redis {self._where}: {exc}") from exc

    def write_stats(self, region: str, stats: dict[str, float]) -> None:
        """Publish the worker's counters next to the data (read by the demo and checker)."""
        try:
            self.client.hset(worker_stats_key(region), mapping=stats)
        except redis.RedisError as exc:
            log.debug("cannot write worker stats: %s", exc)

    def _keys_of(self, pattern: bytes, partition: int, partitions: int) -> Iterator[bytes]:
        for key in self.client.scan_iter(match=pattern, count=1000):
            if partition_for(key, partitions) == partition:
                yield key

    def _outcome(self, reply: object) -> ApplyOutcome | MalformedRecord:
        if isinstance(reply, redis.ResponseError):
            text = str(reply)
            if "MALFORMED" in text:
                return MalformedRecord(text.split("MALFORMED", 1)[1].strip())
            raise TransientError(f"redis {self._where} refused the batch: {text}")
        if isinstance(reply, Exception):
            raise TransientError(f"redis {self._where}: {reply}")
        if not isinstance(reply, list) or len(reply) != 2:
            raise TransientError(f"redis {self._where}: unexpected apply reply {reply!r}")
        return ApplyOutcome(int(reply[0]), int(reply[1]))

    @property
    def _where(self) -> str:
        return f"{self._endpoint.host}:{self._endpoint.port}"


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


def _chunks(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
