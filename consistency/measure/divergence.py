"""Divergence rounds: every chosen region against the reference, view by view.

The comparison of one pair lives in ``consistency.divergence`` (sampled or full); this
module chooses the pairs, runs the regions of a view in parallel (one reference scan serving
all of them in full mode), reads the workers' log positions that decide "in flight", and
notes the newest event times seen (for freshness).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from consistency import divergence as compare
from consistency.config import ConsistencySettings
from consistency.core.classify import Position
from consistency.core.scope import Scope
from consistency.divergence import Findings, Pair
from consistency.errors import SourceUnavailable, UsageError
from consistency.measure.freshness import NewestEvents
from consistency.ports import LogAdmin, RegionData, ScanResult, ViewLayout

log = logging.getLogger(__name__)

MODES = ("sampled", "full")


class DivergenceMeter:
    def __init__(
        self,
        scope: Scope,
        settings: ConsistencySettings,
        *,
        regions: Mapping[str, RegionData],
        log_admin: LogAdmin,
        partition_of: Callable[[bytes, int], int],
        newest: NewestEvents,
        monotonic: Callable[[], float],
    ) -> None:
        self.scope = scope
        self.settings = settings
        self.regions = regions
        self.log = log_admin
        self.partition_of = partition_of
        self.newest = newest
        self.monotonic = monotonic

    def measure(
        self,
        mode: str,
        layouts: Mapping[str, ViewLayout],
        *,
        regions: Sequence[str] | None = None,
        views: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], Findings]:
        """Findings per (region, view): every subscribing region but the reference, for
        every view the reference subscribes to. Raises ``UsageError`` for an unknown mode
        and ``SourceUnavailable`` when a region or the reference cannot be read."""
        if mode not in MODES:
            raise UsageError(f"unknown divergence mode {mode!r}")
        ref = self.scope.reference_region
        chosen_regions = [r for r in (regions or self.scope.regions) if r != ref]
        out: dict[tuple[str, str], Findings] = {}
        for view in [v for v in (views or sorted(layouts)) if v in layouts]:
            if not self.scope.subscribes(ref, view):
                continue
            targets = [r for r in chosen_regions if self.scope.subscribes(r, view)]
            out.update(self._view(mode, layouts[view], targets))
        return out

    def _view(
        self, mode: str, layout: ViewLayout, targets: Sequence[str]
    ) -> dict[tuple[str, str], Findings]:
        """Every target region at once; in full mode one reference scan serves them all."""
        pool = ThreadPoolExecutor(max_workers=len(targets) + 1)
        try:
            ref_future = pool.submit(self._reference_side, mode, layout)
            futures = {r: pool.submit(self._one, mode, layout, r, ref_future) for r in targets}
            results = {}
            for region, future in futures.items():
                findings = future.result()
                results[(region, layout.name)] = findings
                self.newest.note(region, layout.name, findings.newest_event_s)
            ref_result = ref_future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        newest = ref_result.newest_event_s if isinstance(ref_result, ScanResult) else ref_result
        self.newest.note(self.scope.reference_region, layout.name, newest)
        return results

    def _reference_side(self, mode: str, layout: ViewLayout) -> ScanResult | int | None:
        """Full: the reference's scan (shared); sampled: its newest event (for freshness)."""
        ref = self.regions[self.scope.reference_region]
        if mode == "full":
            return ref.scan_digests(layout, self.scope.project, self._hex_digits)
        sample = self.settings.sample
        return compare.sample_freshness(
            layout,
            project=self.scope.project,
            region=ref,
            partitions=self.scope.partitions,
            size=sample.size,
            seed=sample.seed,
        )

    def _one(
        self,
        mode: str,
        layout: ViewLayout,
        region: str,
        ref_future: Future[ScanResult | int | None],
    ) -> Findings:
        pair = Pair(
            project=self.scope.project,
            reference=self.regions[self.scope.reference_region],
            region=self.regions[region],
            partitions=self.scope.partitions,
            positions=lambda: self.positions_for(region, layout.name),
            partition_of=self.partition_of,
            monotonic=self.monotonic,
        )
        if mode == "full":
            return compare.full(
                layout, pair, hex_digits=self._hex_digits, reference_scan=lambda: _scan(ref_future)
            )
        sample = self.settings.sample
        return compare.sampled(
            layout, pair, size=sample.size, confidence=sample.confidence, seed=sample.seed
        )

    @property
    def _hex_digits(self) -> int:
        return self.settings.full.bucket_hex_digits

    def positions_for(
        self, region: str, view: str
    ) -> tuple[dict[int, Position], dict[int, Position]]:
        """(reference, region) log positions per partition of the view's topic; {} for a
        side whose committed offsets Kafka did not give (every difference then counts)."""
        topic = self.scope.topic(view)
        positions = [(topic, p) for p in range(self.scope.partitions)]
        out: list[dict[int, Position]] = []
        for side in (self.scope.reference_region, region):
            try:
                committed = self.log.committed(self.scope.groups[side], positions)
            except SourceUnavailable as exc:
                log.warning("%s; counting every difference as divergence", exc)
                out.append({})
                continue
            out.append(
                {p: Position(committed.get((topic, p))) for p in range(self.scope.partitions)}
            )
        return out[0], out[1]


def _scan(future: Future[ScanResult | int | None]) -> ScanResult:
    result = future.result()
    assert isinstance(result, ScanResult)
    return result
