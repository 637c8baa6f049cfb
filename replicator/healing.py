"""Self-healing: a region's worker notices that its Redis lost data the group had committed.

Invariant: before the worker commits ``next offset = N`` for a partition, the region's Redis
holds an *applied mark* ``>= N`` for it (``_replicator:applied``, written after the rows,
raised only, never lowered). Redis loses a suffix of its writes, never a middle (AOF and RDB
are point-in-time, a replica is a prefix of its primary, FLUSHALL loses everything), so a
mark that survived proves the rows before it survived. (Redis breaks this when its ``default``
user may not run what its append-only file holds: docs/replication.md, self-healing.)
Hence, for a partition this worker holds:

    stored mark < offset the group committed   =>   Redis lost rows in [mark, committed)

It is checked atomically each time a mark is raised (one round trip per poll, so rows
applied after a loss cannot hide it) and every ``check_seconds`` for idle partitions. Then,
by ``worker.on_data_loss``:

- ``replay`` (default): seek the partition back to the stored mark and apply from there;
  commits stay where they were until the replay passes them (offsets never go back).
- ``alert``: keep applying new rows but stop committing the partition and stop recording its
  heartbeats (so staleness grows and the checker alerts), log ``region_data_lost`` with the
  command that fixes it, and show the partitions in the metrics and the worker's stats.
  Once ``replicator region rebuild R`` has replayed the log (raising the marks), the worker
  resumes by itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

log = logging.getLogger(__name__)

Partition = tuple[str, int]
Policy = Literal["replay", "alert"]


class AppliedMarks(Protocol):
    """The region's Redis, as the guard sees it (adapters/redis_store.py)."""

    def raise_marks(
        self, positions: dict[Partition, int], floors: dict[Partition, int]
    ) -> dict[Partition, int]:
        """Raise each partition's mark to its position unless the stored mark is below its
        floor; return those refused, with their stored mark (0: none)."""

    def read_marks(self, partitions: list[Partition]) -> dict[Partition, int]: ...


@runtime_checkable
class GroupPositions(Protocol):
    """The region's consumer, as the guard sees it (adapters/kafka_source.py)."""

    @property
    def committed(self) -> dict[Partition, int]:
        """Per assigned partition, the next offset the group committed."""

    def rewind(self, topic: str, partition: int, offset: int) -> int:
        """Deliver the partition again from ``offset`` (or the log start, if later);
        returns the offset it will start at."""


def lost(marks: dict[Partition, int], committed: dict[Partition, int]) -> dict[Partition, int]:
    """Partitions whose stored mark (absent: 0) is below what the group committed."""
    return {tp: marks.get(tp, 0) for tp, offset in committed.items() if marks.get(tp, 0) < offset}


@dataclass
class DataLossGuard:
    region: str
    store: AppliedMarks
    source: GroupPositions
    policy: Policy = "replay"
    check_seconds: float = 1.0
    monotonic: Callable[[], float] = time.monotonic
    lost: dict[Partition, int] = field(default_factory=dict)
    """Partitions whose loss is known and not yet repaired -> stored mark when detected."""
    healing: dict[Partition, int] = field(default_factory=dict)
    """``replay``: partitions being replayed -> the committed offset the replay must pass."""
    detected: int = 0
    """How many partition losses were detected (a counter)."""
    _last_check: float = float("-inf")

    def holds(self, partition: Partition) -> bool:
        """True while nothing may be committed or reported healthy for ``partition``."""
        return partition in self.lost

    def poll(self) -> None:
        """Every ``check_seconds``: compare the stored marks of assigned partitions."""
        now = self.monotonic()
        if now - self._last_check < self.check_seconds:
            return
        self._last_check = now
        committed = self.source.committed
        floors = {tp: o for tp, o in committed.items() if tp not in self.healing}
        gone = lost(self.store.read_marks(sorted(committed)), floors)
        for tp in list(self.lost):
            if tp not in gone:
                self._repaired(tp, "its marks are back (the region was rebuilt)")
        self._handle(gone)

    def marked(self, positions: dict[Partition, int]) -> dict[Partition, int]:
        """Raise the marks of a poll's positions (rows applied); return the positions that
        may be committed."""
        floors = {tp: o for tp, o in self.source.committed.items() if tp not in self.healing}
        refused = self.store.raise_marks(positions, floors)
        self._handle(refused)
        for tp, target in list(self.healing.items()):
            if positions.get(tp, -1) >= target:
                del self.healing[tp]
                self._repaired(tp, "replayed up to what the group had committed")
        return {tp: o for tp, o in positions.items() if tp not in self.lost}

    def _handle(self, gone: dict[Partition, int]) -> None:
        for (topic, partition), mark in gone.items():
            tp = (topic, partition)
            committed = self.source.committed.get(tp, 0)
            first = tp not in self.lost
            if first:
                self.detected += 1
            if self.policy == "replay":
                start = self.source.rewind(topic, partition, mark)
                self.healing[tp] = committed
                self.lost.pop(tp, None)
                log.error(
                    "%s: Redis lost the rows of %s[%d] from offset %d to %d; replaying them "
                    "from offset %d",
                    self.region,
                    topic,
                    partition,
                    mark,
                    committed,
                    start,
                    extra=_extra("region_data_lost", topic, partition, mark, committed),
                )
                if start > mark:
                    log.error(
                        "%s: offsets %d to %d of %s[%d] are no longer in the log: the region "
                        "misses those rows until the primary writes the entities again",
                        self.region,
                        mark,
                        start,
                        topic,
                        partition,
                        extra=_extra("region_history_missing", topic, partition, mark, start),
                    )
                continue
            self.lost[tp] = mark
            if not first:
                continue
            log.error(
                "%s: Redis lost the rows of %s[%d] from offset %d to %d; not committing it "
                "until the region is rebuilt: run `replicator region rebuild %s`",
                self.region,
                topic,
                partition,
                mark,
                committed,
                self.region,
                extra=_extra("region_data_lost", topic, partition, mark, committed),
            )

    def _repaired(self, tp: Partition, how: str) -> None:
        self.lost.pop(tp, None)
        log.warning(
            "%s: %s[%d] is whole again: %s",
            self.region,
            tp[0],
            tp[1],
            how,
            extra={"event": "region_data_repaired", "topic": tp[0], "partition": tp[1]},
        )

    def summary(self) -> dict[str, float]:
        return {
            "data_loss_detected": self.detected,
            "data_lost_partitions": len(self.lost),
            "data_healing_partitions": len(self.healing),
        }


def _extra(event: str, topic: str, partition: int, start: int, end: int) -> dict[str, object]:
    return {"event": event, "topic": topic, "partition": partition, "from": start, "to": end}
