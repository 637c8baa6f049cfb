"""Applied marks in a region's Redis: per partition, the offset below which every record is
applied there (replicator/healing.py explains why they reveal lost data)."""

from __future__ import annotations

import redis

from replicator.adapters.redis_store import RegionStore
from replicator.core.keys import NAMESPACE
from replicator.errors import TransientError

MARKS_KEY = NAMESPACE.decode() + "applied"
"""Hash: field ``<topic>:<partition>`` -> next offset applied (topic names hold no ``:``)."""

_RAISE_LUA = """
local refused = {}
for i = 1, #ARGV, 3 do
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if stored < tonumber(ARGV[i + 2]) then
    refused[#refused + 1] = ARGV[i]
    refused[#refused + 1] = stored
  elseif tonumber(ARGV[i + 1]) > stored then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return refused
"""

Partition = tuple[str, int]


def _field(tp: Partition) -> str:
    return f"{tp[0]}:{tp[1]}"


def _partition(field: bytes) -> Partition:
    topic, _, partition = field.decode().rpartition(":")
    return topic, int(partition)


class RedisAppliedMarks:
    """The marks of one region, through the region store's (writer's) connection."""

    def __init__(self, store: RegionStore) -> None:
        self._store = store

    def raise_marks(
        self, positions: dict[Partition, int], floors: dict[Partition, int]
    ) -> dict[Partition, int]:
        """Atomically, per partition: if the stored mark (none: 0) is below ``floors[tp]``,
        leave it and report it; else raise it to ``positions[tp]``. Raises TransientError."""
        if not positions:
            return {}
        args: list[str | int] = []
        for tp, offset in positions.items():
            args += [_field(tp), offset, floors.get(tp, -1)]
        try:
            script = self._store.client.register_script(_RAISE_LUA)
            reply = script(keys=[MARKS_KEY], args=args)
        except redis.RedisError as exc:
            raise TransientError(f"redis applied marks: {exc}") from exc
        pairs = list(reply)
        return {_partition(pairs[i]): int(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    def read_marks(self, partitions: list[Partition]) -> dict[Partition, int]:
        """Stored marks of ``partitions`` (absent ones left out). Raises TransientError."""
        if not partitions:
            return {}
        try:
            values: list[bytes | None] = self._store.client.hmget(  # type: ignore[assignment]
                MARKS_KEY, [_field(tp) for tp in partitions]
            )
        except redis.RedisError as exc:
            raise TransientError(f"redis applied marks: {exc}") from exc
        return {tp: int(v) for tp, v in zip(partitions, values, strict=True) if v is not None}

    def all_marks(self) -> dict[Partition, int]:
        """Every stored mark. Raises TransientError."""
        try:
            stored: dict[bytes, bytes] = self._store.client.hgetall(MARKS_KEY)  # type: ignore[assignment]
        except redis.RedisError as exc:
            raise TransientError(f"redis applied marks: {exc}") from exc
        return {_partition(field): int(value) for field, value in stored.items()}
