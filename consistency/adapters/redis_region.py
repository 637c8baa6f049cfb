"""One region's Redis as the checker reads it: heartbeats, sampled keys, digests.

Reads use the region's checker user (``consistency.wiring.checker_user``), whose ACL allows
read commands, SCRIPT LOAD and EVALSHA_RO only; the digest script runs with ``EVALSHA_RO``,
so Redis refuses any write even where the checker falls back to the writer. Feast keys are
read in Feast's layout; versions come from the replicator's hashes ``_replicator:v:<view>:<p>``.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from types import TracebackType
from typing import Any

import redis

from consistency.adapters.shared import read_applied_heartbeats, read_emission
from consistency.core.classify import Entry
from consistency.core.digest import LANES, BucketDigests
from consistency.core.feast_bytes import view_key_pattern
from consistency.errors import SourceUnavailable
from consistency.ports import RawRow, ScanResult, TopicPartition, ViewLayout
from replicator.core import version
from replicator.core.egress import EgressCounts
from replicator.core.keys import egress_key, row_versions_key
from replicator.core.staleness import AppliedHeartbeat, Emission
from replicator.core.wire import partition_for

log = logging.getLogger(__name__)

DIGEST_LUA = (resources.files("consistency.adapters") / "digest.lua").read_text(encoding="utf-8")
READ_CHUNK = 500


class RedisRegion:
    def __init__(
        self, name: str, connect: Callable[[], redis.Redis], *, scan_count: int = 1000
    ) -> None:
        self.name = name
        self._connect = connect
        self._scan_count = scan_count
        self._client: redis.Redis | None = None
        self._sha: str | None = None

    @property
    def client(self) -> Any:
        """The connection, typed loosely on purpose: redis-py's hints want ``str`` keys, and
        Feast keys are binary (redis-py sends bytes as they are)."""
        if self._client is None:
            self._client = self._connect()
        return self._client

    def __enter__(self) -> RedisRegion:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _fail(self, what: str, exc: Exception) -> SourceUnavailable:
        return SourceUnavailable(f"redis {self.name}: cannot {what}: {exc}", source=self.name)

    # Heartbeats -------------------------------------------------------------------------
    def emission(self, project: str) -> Emission | None:
        try:
            return read_emission(self.client, project)
        except redis.RedisError as exc:
            raise self._fail("read the heartbeat emission record", exc) from exc
        except ValueError as exc:
            raise self._fail("parse the heartbeat emission record", exc) from exc

    def applied_heartbeats(
        self, positions: Sequence[TopicPartition]
    ) -> dict[TopicPartition, AppliedHeartbeat]:
        try:
            return read_applied_heartbeats(self.client, positions)
        except redis.RedisError as exc:
            raise self._fail("read applied heartbeats", exc) from exc
        except ValueError as exc:
            raise self._fail("parse applied heartbeats", exc) from exc

    def egress(self, group: str) -> EgressCounts | None:
        try:
            raw = self.client.hgetall(egress_key(group))
        except redis.RedisError as exc:
            raise self._fail("read the fetched-bytes counters", exc) from exc
        try:
            return EgressCounts.from_fields(group, {k.decode(): v for k, v in raw.items()})
        except (UnicodeDecodeError, ValueError) as exc:
            raise self._fail("parse the fetched-bytes counters", exc) from exc

    # Keys ---------------------------------------------------------------------------------
    def sample_keys(
        self, view: ViewLayout, project: str, partitions: int, size: int, seed: int | None
    ) -> list[bytes]:
        """Uniform over the view's keys: partitions weighted by their number of versions."""
        rng = random.Random(seed)
        suffix = project.encode()
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for p in range(partitions):
                    pipe.hlen(row_versions_key(view.name, p))
                sizes = [int(n) for n in pipe.execute()]
            total = sum(sizes)
            if total == 0:
                return []
            wanted = [0] * partitions
            for p in rng.choices(range(partitions), weights=sizes, k=size):
                wanted[p] += 1
            picked: list[bytes] = []
            for p, count in enumerate(wanted):
                if count:
                    picked.extend(self._random_fields(view, p, count, sizes[p], suffix))
        except redis.RedisError as exc:
            raise self._fail("sample keys", exc) from exc
        rng.shuffle(picked)
        return picked[:size]

    def _random_fields(
        self, view: ViewLayout, partition: int, count: int, available: int, suffix: bytes
    ) -> list[bytes]:
        # Version hashes hold every project's keys of this view name: keep this project's.
        key = row_versions_key(view.name, partition)
        found: set[bytes] = set()
        ask = count
        for _ in range(4):
            ask = min(available, ask)
            for field in self.client.hrandfield(key, ask) or []:
                if field.endswith(suffix) and field.startswith(view.key_prefix):
                    found.add(field)
            if len(found) >= count or ask >= available:
                break
            share = max(len(found), 1) / ask
            ask = math.ceil(count / share * 1.2)
        return sorted(found)[:count] if len(found) > count else list(found)

    def read_rows(self, view: ViewLayout, keys: Sequence[bytes], partitions: int) -> list[RawRow]:
        fields = list(view.read_fields)
        out: list[RawRow] = []
        try:
            for chunk in _chunks(keys, READ_CHUNK):
                with self.client.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.hmget(key, fields)
                        pipe.hget(row_versions_key(view.name, partition_for(key, partitions)), key)
                    replies = pipe.execute()
                for i, key in enumerate(chunk):
                    out.append(
                        RawRow(key, tuple(replies[2 * i]), version.decode(replies[2 * i + 1]))
                    )
        except redis.RedisError as exc:
            raise self._fail("read keys", exc) from exc
        return out

    def read_entries(self, view: ViewLayout, keys: Sequence[bytes], partitions: int) -> list[Entry]:
        return [row.entry() for row in self.read_rows(view, keys, partitions)]

    # Digests ------------------------------------------------------------------------------
    def scan_digests(self, view: ViewLayout, project: str, hex_digits: int) -> ScanResult:
        digests = BucketDigests.empty(hex_digits)
        keys = newest = 0
        for reply in self._scan(view, project, hex_digits, "digest", ""):
            keys += int(reply[1])
            newest = max(newest, int(reply[2]))
            body = reply[3:]
            width = LANES + 2
            for i in range(0, len(body), width):
                digests.add_partial(body[i].decode(), [int(x) for x in body[i + 1 : i + width]])
        return ScanResult(digests, keys, newest or None)

    def scan_buckets(
        self, view: ViewLayout, project: str, hex_digits: int, buckets: Sequence[str]
    ) -> dict[bytes, str]:
        if not buckets:
            return {}
        out: dict[bytes, str] = {}
        for reply in self._scan(view, project, hex_digits, "list", ",".join(buckets)):
            body = reply[3:]
            for i in range(0, len(body), 2):
                out[bytes(body[i])] = body[i + 1].decode()
        return out

    def _scan(
        self, view: ViewLayout, project: str, hex_digits: int, mode: str, wanted: str
    ) -> Iterator[list[Any]]:
        pattern = view_key_pattern(view.key_prefix, project)
        cursor: bytes | str = "0"
        try:
            while True:
                reply = self._digest_step(
                    cursor, pattern, hex_digits, mode, wanted, view.read_fields
                )
                yield reply
                cursor = reply[0]
                if cursor in (b"0", "0", 0):
                    return
        except redis.RedisError as exc:
            raise self._fail(f"scan {view.name}", exc) from exc

    def _digest_step(
        self,
        cursor: bytes | str,
        pattern: bytes,
        hex_digits: int,
        mode: str,
        wanted: str,
        fields: Sequence[bytes],
    ) -> list[Any]:
        args = [cursor, self._scan_count, pattern, hex_digits, mode, wanted, *fields]
        if self._sha is None:
            self._sha = str(self.client.script_load(DIGEST_LUA))
        try:
            return list(self.client.evalsha_ro(self._sha, 0, *args))
        except redis.exceptions.NoScriptError:
            self._sha = str(self.client.script_load(DIGEST_LUA))
            return list(self.client.evalsha_ro(self._sha, 0, *args))


def _chunks(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
