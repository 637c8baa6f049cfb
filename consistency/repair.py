"""``consistency repair``: re-apply diverged keys from the reference, last writer wins.

A full check finds the region's missing, conflicting and behind keys; their rows are read
from the reference (bytes and version) and sent through the replicator's own
``apply_rows.lua`` as wire-v1 batches carrying the reference's version (event time, created
time, Kafka offset, row index). The script applies a row only if its version is at least
the stored one, so a repair can never move a key back in time: a key the region holds in a
newer version is left alone and reported. Each batch names its rows' original indexes
(``EncodedBatch.row_indexes``), so every row keeps its whole version, ties included
(the order is ``replicator.core.version``).

Extra keys (in the region, not in the reference) are reported, not deleted: the
last-writer-wins path has no deletion; ``replicator region rebuild`` or an operator does it.
"""

from __future__ import annotations

import functools
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from consistency.checker import Checker
from consistency.core.classify import KeyClass
from consistency.core.feast_bytes import decode_timestamp
from consistency.divergence import Pair, classify_keys
from consistency.errors import UsageError
from consistency.ports import RawRow, ViewLayout
from replicator.core import wire
from replicator.core.records import ApplyOutcome, EncodedBatch, Row, RowBatch
from replicator.core.version import FIRST_ROW_INDEX, Version
from replicator.errors import PermanentError

log = logging.getLogger(__name__)

REPAIRABLE = (KeyClass.MISSING, KeyClass.CONFLICTING, KeyClass.BEHIND)
APPLY_CHUNK = 50
REPAIR_BATCH_ROWS = 1000


class RowApplier(Protocol):
    """The region's writer (``replicator.adapters.redis_store.RegionStore``)."""

    def apply(self, batches: Sequence[EncodedBatch]) -> list[ApplyOutcome | PermanentError]: ...


@dataclass
class ViewRepair:
    feature_view: str
    found: dict[str, int] = field(default_factory=dict)
    """Keys per class before the repair."""
    attempted: int = 0
    repaired: int = 0
    not_repaired: int = 0
    """Still different afterwards (the region holds a newer version, or the row changed)."""
    unrepairable: int = 0
    """The reference has no timestamp for the key: nothing to apply."""
    extra_left: int = 0

    def to_dict(self) -> dict[str, object]:
        return dict(vars(self))


def plan_batches(
    view: ViewLayout,
    rows: Sequence[RawRow],
    partitions: int,
    partition_of: Callable[[bytes, int], int],
) -> tuple[list[EncodedBatch], list[bytes]]:
    """Wire-v1 batches that re-apply ``rows`` with their own versions; and the keys that
    cannot be re-applied (no ``_ts`` at the reference)."""
    groups: dict[tuple[int, int, tuple[bytes, ...]], list[tuple[int, Row]]] = defaultdict(list)
    unrepairable: list[bytes] = []
    for raw in rows:
        event = decode_timestamp(raw.values[0])
        if raw.values[0] is None or event is None:
            unrepairable.append(raw.key)
            continue
        present = [
            (f, v) for f, v in zip(view.fields, raw.values[1:], strict=True) if v is not None
        ]
        fields = tuple(f for f, _ in present)
        version = raw.version or Version(event[0], event[1], 0, 0, 0, FIRST_ROW_INDEX)
        row = Row(
            raw.key,
            raw.values[0],
            version.event_s,
            version.event_nanos,
            version.created_s,
            version.created_nanos,
            tuple(v for _, v in present),
        )
        groups[(partition_of(raw.key, partitions), version.offset, fields)].append(
            (version.index, row)
        )
    batches: list[EncodedBatch] = []
    for (partition, offset, fields), members in sorted(groups.items()):
        for start in range(0, len(members), REPAIR_BATCH_ROWS):
            chunk = members[start : start + REPAIR_BATCH_ROWS]
            batch = RowBatch(
                view.name,
                fields,
                tuple(r for _, r in chunk),
                schema_fingerprint="consistency-repair",
            )
            _, payload = wire.encode_rows(batch)
            indexes = tuple(i for i, _ in chunk)
            batches.append(EncodedBatch(payload, view.name, partition, offset, None, indexes))
    return batches, unrepairable


def repair_region(
    checker: Checker,
    region: str,
    applier: RowApplier,
    *,
    views: Sequence[str] | None = None,
    dry_run: bool = False,
) -> list[ViewRepair]:
    if region == checker.scope.reference_region:
        raise UsageError(f"{region} is the reference region: there is nothing to repair it from")
    layouts = checker.views()
    reference = checker.regions[checker.scope.reference_region]
    target = checker.regions[region]
    partitions = checker.scope.partitions
    found = checker.measure_divergence("full", regions=[region], views=views)
    results = []
    for (_, view), findings in sorted(found.items()):
        layout = layouts[view]
        result = ViewRepair(view)
        for cls in KeyClass:
            result.found[cls.value] = sum(1 for c in findings.keys.values() if c is cls)
        result.extra_left = result.found[KeyClass.EXTRA.value]
        keys = sorted(k for k, c in findings.keys.items() if c in REPAIRABLE)
        result.attempted = len(keys)
        if keys:
            rows = reference.read_rows(layout, keys, partitions)
            batches, unrepairable = plan_batches(layout, rows, partitions, checker.partition_of)
            result.unrepairable = len(unrepairable)
            if not dry_run:
                for start in range(0, len(batches), APPLY_CHUNK):
                    for outcome in applier.apply(batches[start : start + APPLY_CHUNK]):
                        if isinstance(outcome, PermanentError):
                            log.error("repair batch refused: %s", outcome)
                pair = Pair(
                    checker.scope.project,
                    reference,
                    target,
                    partitions,
                    functools.partial(checker.positions_for, region, view),
                    checker.partition_of,
                )
                still, _, _ = classify_keys(layout, keys, pair)
                left = [k for k, c in still.items() if c is not KeyClass.IN_FLIGHT]
                result.not_repaired = len(left)
                result.repaired = len(keys) - len(left)
        log.info(
            "repair of %s in %s: %d repaired, %d not repaired, %d extra left",
            view,
            region,
            result.repaired,
            result.not_repaired,
            result.extra_left,
            extra={"event": "repair_done", "region": region, **result.to_dict()},
        )
        results.append(result)
    return results
