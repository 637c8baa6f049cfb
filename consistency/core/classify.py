"""Classifying one key of one feature view: reference region against another region.

    missing      the reference holds the key, the region does not, and the row is not in flight
    extra        the region holds the key, the reference does not (and nothing explains it)
    in_flight    the region (or the reference) lacks the newer row and has not consumed it from
                 Kafka yet: lag, not divergence (the staleness bound reports lag, however long)
    behind       the region holds an older version although it already consumed the newer row
                 (a lost update): counted as divergence
    conflicting  same or newer version in the region, different bytes: counted

"In flight" is decided on log positions, not clocks: the row that makes the difference was
written at Kafka offset ``o`` of partition ``p`` (its version says so), and the side that
lacks it has committed ``c <= o`` for ``p`` (workers commit only after Redis acknowledged).
The committed offsets are read before the values, which keeps the test conservative.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from replicator.core.version import Version, unlogged


class KeyClass(StrEnum):
    MISSING = "missing"
    EXTRA = "extra"
    IN_FLIGHT = "in_flight"
    BEHIND = "behind"
    CONFLICTING = "conflicting"

    @property
    def counts_as_divergence(self) -> bool:
        return self is not KeyClass.IN_FLIGHT


@dataclass(frozen=True, slots=True)
class Entry:
    """One view's data at one key in one region; ``digest`` None means absent."""

    digest: str | None
    version: Version | None = None
    """From the region's version hash; None when the key was not written by a worker."""
    event: tuple[int, int] | None = None
    """From ``_ts:<view>``, used when there is no version."""

    @property
    def present(self) -> bool:
        return self.digest is not None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a region's consumer stands in the key's partition."""

    committed: int | None
    """Next offset to consume (None: the group never committed in this partition)."""
    known: bool = True
    """False when Kafka did not say: nothing is then taken to be in flight."""

    def still_queued(self, offset: int) -> bool:
        """Whether the record at ``offset`` may not have been applied yet. Only offsets
        decide: a region over its staleness bound is lagging (the staleness measure says so),
        and its queued rows are not lost updates."""
        return self.known and (self.committed is None or self.committed <= offset)


def _order(entry: Entry) -> Version | None:
    if entry.version is not None:
        return entry.version
    if entry.event is not None:
        return unlogged(*entry.event)
    return None


def _offset(entry: Entry) -> int | None:
    return entry.version.offset if entry.version is not None else None


def classify(
    reference: Entry, region: Entry, ref_position: Position, region_position: Position
) -> KeyClass | None:
    """None when both hold the same bytes (or neither holds the key)."""
    if reference.digest == region.digest:
        return None
    if not region.present:
        offset = _offset(reference)
        if offset is not None and region_position.still_queued(offset):
            return KeyClass.IN_FLIGHT
        return KeyClass.MISSING
    if not reference.present:
        offset = _offset(region)
        if offset is not None and ref_position.still_queued(offset):
            return KeyClass.IN_FLIGHT
        return KeyClass.EXTRA
    ref_order, reg_order = _order(reference), _order(region)
    if ref_order is None or reg_order is None or reg_order == ref_order:
        return KeyClass.CONFLICTING
    if reg_order < ref_order:
        offset = _offset(reference)
        if offset is not None and region_position.still_queued(offset):
            return KeyClass.IN_FLIGHT
        return KeyClass.BEHIND
    offset = _offset(region)
    if offset is not None and ref_position.still_queued(offset):
        return KeyClass.IN_FLIGHT  # the reference is the one behind
    return KeyClass.CONFLICTING
