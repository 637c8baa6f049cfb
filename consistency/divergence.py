"""Divergence of one feature view between the reference region and another region.

Sampled: keys drawn uniformly from the reference's version hashes, read on both sides,
classified; the ratio comes with a Wilson interval. Full: bucket digests computed inside
each Redis are compared, only mismatched buckets are listed key by key, and only keys
that differ are read again (fresh) and classified. In both, the workers' committed offsets
are read *before* the values, so "in flight" is decided conservatively (core.classify).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from consistency.core.classify import Entry, KeyClass, Position, classify
from consistency.core.digest import diff_entries, mismatched_buckets
from consistency.core.report import DivergenceReport
from consistency.core.stats import wilson_interval
from consistency.ports import RegionData, ScanResult, ViewLayout

PositionsFn = Callable[[], tuple[dict[int, Position], dict[int, Position]]]
"""Reads (reference positions, region positions) by partition, at call time."""


@dataclass(frozen=True)
class Pair:
    """The reference and one region, compared for one project."""

    project: str
    reference: RegionData
    region: RegionData
    partitions: int
    positions: PositionsFn
    partition_of: Callable[[bytes, int], int]
    """Key -> partition, as the publisher routes it (``replicator.core.wire.partition_for``)."""
    monotonic: Callable[[], float] = time.monotonic


@dataclass
class Findings:
    report: DivergenceReport
    keys: dict[bytes, KeyClass] = field(default_factory=dict)
    """Every key that differs, with its class (in-flight ones included)."""
    newest_event_s: int | None = None
    """Newest event time seen in the region (for freshness)."""


def classify_keys(
    view: ViewLayout, keys: Sequence[bytes], pair: Pair
) -> tuple[dict[bytes, KeyClass], list[Entry], list[Entry]]:
    """Class of every key that differs, and both sides' entries (in ``keys`` order)."""
    ref_positions, reg_positions = pair.positions()  # before the values (see core.classify)
    ref_entries = pair.reference.read_entries(view, keys, pair.partitions)
    reg_entries = pair.region.read_entries(view, keys, pair.partitions)
    out: dict[bytes, KeyClass] = {}
    unknown = Position(committed=None, known=False)
    for key, ref, reg in zip(keys, ref_entries, reg_entries, strict=True):
        p = pair.partition_of(key, pair.partitions)
        found = classify(ref, reg, ref_positions.get(p, unknown), reg_positions.get(p, unknown))
        if found is not None:
            out[key] = found
    return out, ref_entries, reg_entries


def _count(report: DivergenceReport, classes: dict[bytes, KeyClass]) -> None:
    for found in classes.values():
        setattr(report, found.value, getattr(report, found.value) + 1)


def sampled(
    view: ViewLayout, pair: Pair, *, size: int, confidence: float, seed: int | None
) -> Findings:
    """``size`` keys drawn from the reference, classified; the ratio with its Wilson
    interval at ``confidence``."""
    started = pair.monotonic()
    keys = pair.reference.sample_keys(view, pair.project, pair.partitions, size, seed)
    classes, ref_entries, reg_entries = classify_keys(view, keys, pair)
    checked = sum(
        1 for r, g in zip(ref_entries, reg_entries, strict=True) if r.present or g.present
    )
    report = DivergenceReport(mode="sampled", keys_checked=checked, confidence=confidence)
    _count(report, classes)
    report.ratio = report.diverged / checked if checked else 0.0
    report.ratio_low, report.ratio_high = wilson_interval(report.diverged, checked, confidence)
    report.seconds = pair.monotonic() - started
    report.keys_per_second = 2 * len(keys) / report.seconds if report.seconds > 0 else 0.0
    return Findings(report, classes, _newest(reg_entries))


def sample_freshness(
    view: ViewLayout,
    *,
    project: str,
    region: RegionData,
    partitions: int,
    size: int,
    seed: int | None,
) -> int | None:
    """Newest event time among a sample of the region's keys (the reference's freshness)."""
    keys = region.sample_keys(view, project, partitions, size, seed)
    return _newest(region.read_entries(view, keys, partitions))


def _newest(entries: Sequence[Entry]) -> int | None:
    events = [e.event[0] for e in entries if e.event is not None]
    return max(events) if events else None


def full(
    view: ViewLayout,
    pair: Pair,
    *,
    hex_digits: int,
    reference_scan: Callable[[], ScanResult] | None = None,
) -> Findings:
    """Bucket digests of both sides, then the keys of mismatched buckets, classified.

    ``reference_scan`` (waits for a scan running elsewhere) lets one reference scan serve
    every region; without it the reference is scanned here, alongside the region."""
    project, reference, region = pair.project, pair.reference, pair.region
    started = pair.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        ref_future = (
            None
            if reference_scan is not None
            else pool.submit(reference.scan_digests, view, project, hex_digits)
        )
        reg_scan = region.scan_digests(view, project, hex_digits)
        if ref_future is not None:
            ref_scan = ref_future.result()
        else:
            assert reference_scan is not None
            ref_scan = reference_scan()
        buckets = mismatched_buckets(ref_scan.digests, reg_scan.digests)
        classes: dict[bytes, KeyClass] = {}
        if buckets:
            ref_list_f = pool.submit(reference.scan_buckets, view, project, hex_digits, buckets)
            reg_list = region.scan_buckets(view, project, hex_digits, buckets)
            differing = [key for key, _, _ in diff_entries(ref_list_f.result(), reg_list)]
            classes, _, _ = classify_keys(view, differing, pair)
    report = DivergenceReport(
        mode="full",
        keys_checked=reg_scan.keys,
        reference_keys=ref_scan.keys,
        mismatched_buckets=len(buckets),
    )
    _count(report, classes)
    report.ratio = report.diverged / max(1, ref_scan.keys)
    report.seconds = pair.monotonic() - started
    scanned = reg_scan.keys + (ref_scan.keys if reference_scan is None else 0)
    report.keys_per_second = scanned / report.seconds if report.seconds > 0 else 0.0
    return Findings(report, classes, reg_scan.newest_event_s)
