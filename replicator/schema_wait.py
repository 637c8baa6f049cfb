"""Rows whose schema the region's registry does not list yet: parked, not dropped.

The record's topic-partition is paused at it (other partitions and views keep flowing) and
resumes as soon as the region's manifest lists the schema. After ``wait_seconds`` the
partition resumes anyway and the schema counts as expired: its rows go to the dead-letter
topic (``unknown_schema``). A wait of 0 parks nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from replicator.core import wire
from replicator.core.ports import ChangeSource, SchemaCatalog
from replicator.errors import TransientError

log = logging.getLogger(__name__)

Partition = tuple[str, int]


@dataclass(frozen=True)
class Parked:
    feature_view: str
    fingerprint: str
    offset: int
    since: float
    """The worker's monotonic clock (seconds) when parked."""


class SchemaWait:
    """The parked partitions of one worker. The source and catalog are passed on each call:
    the worker's own, which a caller may wrap after building it."""

    def __init__(self, region: str, wait_seconds: float, monotonic: Callable[[], float]) -> None:
        self.region = region
        self.wait_seconds = wait_seconds
        self.monotonic = monotonic
        self.parked: dict[Partition, Parked] = {}
        self._expired: set[tuple[str, str]] = set()

    def must_wait(self, header: wire.RecordHeader, is_known: Callable[[str, str], bool]) -> bool:
        """Whether the record's rows must wait for their schema (``is_known`` is asked only
        while waiting is on and the schema has not expired)."""
        if self.wait_seconds <= 0:
            return False
        schema = (header.feature_view, header.schema_fingerprint)
        return schema not in self._expired and not is_known(*schema)

    def park(
        self,
        source: ChangeSource,
        position: tuple[str, int, int],
        header: wire.RecordHeader,
    ) -> None:
        """Pause ``(topic, partition)`` at ``offset``: that record is delivered again on resume."""
        topic, partition, offset = position
        source.pause(topic, partition, offset)
        self.parked[(topic, partition)] = Parked(
            header.feature_view, header.schema_fingerprint, offset, self.monotonic()
        )
        log.warning(
            "parked %s[%d] at offset %d: schema %s of %s is not in %s's registry yet",
            topic,
            partition,
            offset,
            header.schema_fingerprint,
            header.feature_view,
            self.region,
            extra={"event": "partition_parked", "topic": topic, "partition": partition},
        )

    def check(self, source: ChangeSource, catalog: SchemaCatalog) -> None:
        """Resume each parked partition whose schema arrived or whose wait expired; forget
        one the source no longer has paused (revoked in a rebalance). While the catalog
        cannot answer (S3 down), keep waiting."""
        for (topic, partition), parked in list(self.parked.items()):
            if not source.is_paused(topic, partition):
                del self.parked[(topic, partition)]  # revoked in a rebalance: start afresh
                continue
            schema = (parked.feature_view, parked.fingerprint)
            waited = self.monotonic() - parked.since
            try:
                known = catalog.is_known(*schema)
            except TransientError as exc:  # the registry cannot be read: keep waiting
                log.warning("%s", exc, extra={"event": "transient_error"})
                continue
            if known:
                outcome = "schema arrived"
            elif waited >= self.wait_seconds:
                self._expired.add(schema)
                outcome = "schema wait expired, sending its rows to the dead-letter topic"
            else:
                continue
            del self.parked[(topic, partition)]
            source.resume(topic, partition)
            log.info(
                "resumed %s[%d] after %.1fs: %s",
                topic,
                partition,
                waited,
                outcome,
                extra={"event": "partition_resumed", "topic": topic, "partition": partition},
            )
