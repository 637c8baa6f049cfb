"""Measures every region against the primary's heartbeats and the reference region.

``Checker`` only talks to ports (RegionData, LogAdmin, Manifest, LiveVersionSource), so unit
tests drive it with in-memory twins; ``wiring.build_checker`` connects it to Redis, Kafka and
S3. It keeps a little state between rounds (previous committed offsets for the catch-up rate,
newest event times seen, latest staleness for in-flight decisions, the live versions read
from the buckets) and is safe to call from one scheduler thread per job.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from consistency import divergence
from consistency.config import Bounds, ConsistencySettings
from consistency.core.bounds import Measure, violates
from consistency.core.classify import Position
from consistency.core.report import (
    HeartbeatInfo,
    PartitionReport,
    RegionReport,
    Report,
    ViewReport,
    Violation,
)
from consistency.core.staleness import Emission, partition_staleness, view_of_topic, worst
from consistency.core.versions import LiveVersions, compare
from consistency.divergence import Findings
from consistency.errors import ConsistencyError, SourceUnavailable
from consistency.ports import (
    LiveVersionSource,
    LogAdmin,
    Manifest,
    RegionData,
    TopicPartition,
    ViewLayout,
)

log = logging.getLogger(__name__)

MAX_TIMED_POSITIONS = 256
"""Lagging partitions whose oldest unconsumed record is timed per round (one fetch each)."""

VERSIONS_MAX_AGE = 30.0
"""Seconds the live versions read from the buckets are reused; skew is recomputed every round
against the clock, so it keeps growing between reads."""


@dataclass(frozen=True)
class Scope:
    """What the topology says the checker looks at."""

    project: str
    topic_prefix: str
    partitions: int
    primary_region: str
    reference_region: str
    subscriptions: Mapping[str, tuple[str, ...]]
    """Region -> feature views it subscribes to (``*``: all)."""
    groups: Mapping[str, str]
    """Region -> its worker's consumer group."""

    @property
    def regions(self) -> list[str]:
        return list(self.subscriptions)

    def subscribes(self, region: str, view: str) -> bool:
        views = self.subscriptions.get(region, ())
        return "*" in views or view in views

    def topic(self, view: str) -> str:
        return f"{self.topic_prefix}.{self.project}.{view}"


@dataclass
class StalenessRound:
    heartbeat: HeartbeatInfo
    regions: dict[str, RegionReport]
    errors: list[str]


class Checker:
    def __init__(
        self,
        scope: Scope,
        settings: ConsistencySettings,
        *,
        regions: Mapping[str, RegionData],
        log_admin: LogAdmin,
        manifest: Manifest,
        partition_of: Callable[[bytes, int], int],
        versions: LiveVersionSource | None = None,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scope = scope
        self.settings = settings
        self.regions = dict(regions)
        self.log = log_admin
        self.manifest = manifest
        self.partition_of = partition_of
        self.versions = versions
        self.clock = clock
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._views: tuple[float, dict[str, ViewLayout]] = (-math.inf, {})
        self._newest_event: dict[tuple[str, str], int] = {}
        self._staleness: dict[tuple[str, str], float] = {}
        self._progress: dict[str, tuple[float, int, float | None]] = {}
        self._retention: tuple[float, dict[str, int | None]] = (-math.inf, {})
        self._emission_seen: tuple[int, float] | None = None
        self._live: tuple[float, dict[str, LiveVersions], dict[str, str]] = (-math.inf, {}, {})

    @property
    def bounds(self) -> Bounds:
        return self.settings.bounds

    # Views --------------------------------------------------------------------------------
    def views(self, *, max_age: float = 60.0) -> dict[str, ViewLayout]:
        loaded_at, views = self._views
        if self.monotonic() - loaded_at > max_age:
            views = self.manifest.views()
            self._views = (self.monotonic(), views)
        return views

    # Staleness, lag, catch-up -------------------------------------------------------------
    def measure_staleness(self) -> StalenessRound:
        errors: list[str] = []
        emission: Emission | None = None
        try:
            emission = self.regions[self.scope.primary_region].emission(self.scope.project)
        except SourceUnavailable as exc:
            errors.append(str(exc))
        heartbeat = HeartbeatInfo(emitter_up=emission is not None)
        if emission is None and not errors:
            errors.append(
                "no heartbeat round recorded at the primary: is `replicator heartbeats` "
                "running? (staleness cannot be measured without it)"
            )
        stall = 0.0
        if emission is not None:
            heartbeat.sequence = emission.sequence
            heartbeat.emitted_ns = emission.emitted_ns
            heartbeat.interval_seconds = emission.interval_seconds
            stall = heartbeat.stalled_seconds = self._emitter_stall(emission)
        topics = self._topics(emission, errors)
        ends = self._end_offsets(topics, errors)
        reports = {}
        for region in self.scope.regions:
            reports[region] = self._region_staleness(region, emission, topics, ends, stall)
        self._add_freshness(reports)
        self._add_versions(reports)
        return StalenessRound(heartbeat, reports, errors)

    def _emitter_stall(self, emission: Emission) -> float:
        """Seconds the emission record has not moved beyond its interval, timed on the
        checker's monotonic clock (a duration on one machine: skew-free). While the emitter
        stalls, the primary's clock runs on but its newest stamp does not: adding the stall
        keeps staleness from shrinking to zero as regions catch up with a frozen fence."""
        now = self.monotonic()
        seen = self._emission_seen
        if seen is None or seen[0] != emission.sequence:
            self._emission_seen = (emission.sequence, now)
            return 0.0
        return max(0.0, now - seen[1] - emission.interval_seconds)

    def _topics(self, emission: Emission | None, errors: list[str]) -> dict[str, int]:
        if emission is not None and emission.topics:
            return {t: e.partitions for t, e in emission.topics.items()}
        try:
            return {self.scope.topic(view): self.scope.partitions for view in self.views()}
        except ConsistencyError as exc:
            errors.append(str(exc))
            return {}

    def _end_offsets(
        self, topics: Mapping[str, int], errors: list[str]
    ) -> dict[TopicPartition, int]:
        positions = [(t, p) for t, n in topics.items() for p in range(n)]
        try:
            return self.log.end_offsets(positions)
        except SourceUnavailable as exc:
            errors.append(str(exc))
            return {}

    def _region_staleness(
        self,
        region: str,
        emission: Emission | None,
        topics: Mapping[str, int],
        ends: Mapping[TopicPartition, int],
        stall: float,
    ) -> RegionReport:
        report = RegionReport()
        mine: dict[str, tuple[str, int]] = {}
        for topic, partitions in topics.items():
            view = view_of_topic(topic, self.scope.topic_prefix, self.scope.project)
            if view is not None and self.scope.subscribes(region, view):
                mine[view] = (topic, partitions)
        positions = [(t, p) for t, n in mine.values() for p in range(n)]
        applied = {}
        unmeasurable = emission is None
        if emission is not None:
            try:
                applied = self.regions[region].applied_heartbeats(positions)
            except SourceUnavailable as exc:
                report.errors.append(str(exc))
                unmeasurable = True
        committed: dict[TopicPartition, int | None] = {}
        try:
            committed = self.log.committed(self.scope.groups[region], positions)
        except SourceUnavailable as exc:
            report.errors.append(str(exc))
        lag = {
            pos: max(0, ends[pos] - (committed.get(pos) or 0)) for pos in positions if pos in ends
        }
        timed = self._lag_seconds(emission, committed, lag, report)
        for view, (topic, partitions) in sorted(mine.items()):
            vr = ViewReport()
            for p in range(partitions):
                pos = (topic, p)
                pr = PartitionReport(lag_offsets=lag.get(pos), lag_seconds=timed.get(pos))
                if not unmeasurable and emission is not None:
                    behind = partition_staleness(emission, topic, applied.get(pos))
                    pr.staleness_seconds = behind + stall
                vr.partitions[p] = pr
            vr.staleness_seconds = (
                math.inf
                if unmeasurable
                else worst(r.staleness_seconds for r in vr.partitions.values())
            )
            vr.lag_offsets = sum(r.lag_offsets or 0 for r in vr.partitions.values())
            vr.lag_seconds = worst(r.lag_seconds for r in vr.partitions.values())
            if vr.staleness_seconds is not None:
                self._staleness[(region, view)] = vr.staleness_seconds
            report.feature_views[view] = vr
        report.staleness_seconds = worst(v.staleness_seconds for v in report.feature_views.values())
        report.lag_offsets = sum(lag.values()) if lag else None
        report.lag_seconds = worst(timed.values())
        self._catch_up(region, committed, report)
        self._retention_headroom(list(mine.values()), report)
        return report

    def _lag_seconds(
        self,
        emission: Emission | None,
        committed: Mapping[TopicPartition, int | None],
        lag: Mapping[TopicPartition, int],
        report: RegionReport,
    ) -> dict[TopicPartition, float]:
        """Age of the oldest unconsumed record, both ends on the primary's clock."""
        out = {pos: 0.0 for pos, n in lag.items() if n == 0}
        lagging = {pos: committed.get(pos) or 0 for pos, n in lag.items() if n > 0}
        if emission is None or not lagging:
            return out
        chosen = dict(sorted(lagging.items(), key=lambda i: -lag[i[0]])[:MAX_TIMED_POSITIONS])
        try:
            times = self.log.record_times_ms(chosen)
        except SourceUnavailable as exc:
            report.errors.append(str(exc))
            return out
        for pos, ms in times.items():
            out[pos] = max(0.0, (emission.emitted_ns / 1e6 - ms) / 1e3)
        return out

    def _catch_up(
        self, region: str, committed: Mapping[TopicPartition, int | None], report: RegionReport
    ) -> None:
        """Catch-up time = lag / consumption rate; the rate is measured between rounds on
        the checker's monotonic clock (a duration on one machine: skew does not enter)."""
        if not committed:
            return  # Kafka did not answer: no estimate this round
        total = sum(o or 0 for o in committed.values())
        now = self.monotonic()
        previous = self._progress.get(region)
        rate: float | None = None
        if previous is not None and now > previous[0]:
            instant = max(0.0, (total - previous[1]) / (now - previous[0]))
            rate = instant if previous[2] is None else 0.5 * previous[2] + 0.5 * instant
        self._progress[region] = (now, total, rate)
        if not report.lag_offsets:
            report.catchup_seconds = 0.0
        elif rate:
            report.catchup_seconds = report.lag_offsets / rate
        else:
            report.catchup_seconds = None if previous is None else math.inf

    def _retention_headroom(self, topics: Sequence[tuple[str, int]], report: RegionReport) -> None:
        loaded_at, cache = self._retention
        names = [t for t, _ in topics]
        if self.monotonic() - loaded_at > 300 or any(t not in cache for t in names):
            try:
                cache = {**cache, **self.log.retention_ms(names)}
                self._retention = (self.monotonic(), cache)
            except SourceUnavailable as exc:
                report.errors.append(str(exc))
                return
        limits = [cache[t] for t in names if cache.get(t) is not None]
        if not limits:
            return  # unlimited retention: a region can always catch up from the log
        report.retention_seconds = min(limits) / 1e3  # type: ignore[type-var, operator]
        behind = (report.lag_seconds or 0.0) + (report.catchup_seconds or 0.0)
        report.retention_headroom_seconds = report.retention_seconds - behind

    def _add_freshness(self, reports: Mapping[str, RegionReport]) -> None:
        now_s = self.clock() / 1e9
        for region, report in reports.items():
            for view, vr in report.feature_views.items():
                newest = self._newest_event.get((region, view))
                if newest is not None:
                    vr.newest_event_s = newest
                    vr.freshness_seconds = max(0.0, now_s - newest)

    # Registry and model versions --------------------------------------------------------
    def _add_versions(self, reports: Mapping[str, RegionReport]) -> None:
        """Each region's live versions against the reference's, skew on the checker's clock.
        An unreadable bucket is an error of its region (the reference's leaves every skew
        unknown)."""
        if self.versions is None:
            return
        live, failures = self._live_versions()
        now_s = self.clock() / 1e9
        reference = live.get(self.scope.reference_region)
        for region, report in reports.items():
            if region in failures:
                report.errors.append(failures[region])
            else:
                report.versions = compare(reference, live[region], now_s)

    def _live_versions(self) -> tuple[dict[str, LiveVersions], dict[str, str]]:
        loaded_at, live, failures = self._live
        if self.monotonic() - loaded_at < VERSIONS_MAX_AGE:
            return live, failures
        source = self.versions
        assert source is not None
        regions = self.scope.regions
        with ThreadPoolExecutor(max_workers=len(regions), thread_name_prefix="versions") as pool:
            futures = {region: pool.submit(source.live, region) for region in regions}
        live, failures = {}, {}
        for region, future in futures.items():
            try:
                live[region] = future.result()
            except SourceUnavailable as exc:
                failures[region] = str(exc)
        self._live = (self.monotonic(), live, failures)
        return live, failures

    # Divergence ---------------------------------------------------------------------------
    def measure_divergence(
        self,
        mode: str,
        *,
        regions: Sequence[str] | None = None,
        views: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], Findings]:
        """Compare each region with the reference, per view ("sampled" or "full")."""
        if mode not in ("sampled", "full"):
            raise ValueError(f"unknown divergence mode {mode!r}")
        layouts = self.views()
        ref = self.scope.reference_region
        chosen_regions = [r for r in (regions or self.scope.regions) if r != ref]
        chosen_views = [v for v in (views or sorted(layouts)) if v in layouts]
        out: dict[tuple[str, str], Findings] = {}
        for view in chosen_views:
            layout = layouts[view]
            if not self.scope.subscribes(ref, view):
                continue
            targets = [r for r in chosen_regions if self.scope.subscribes(r, view)]
            out.update(self._divergence_of_view(mode, layout, targets))
        return out

    def _divergence_of_view(
        self, mode: str, layout: ViewLayout, targets: Sequence[str]
    ) -> dict[tuple[str, str], Findings]:
        """Every target region at once; in full mode one reference scan serves them all."""
        ref_name = self.scope.reference_region
        ref = self.regions[ref_name]
        partitions = self.scope.partitions
        results: dict[tuple[str, str], Findings] = {}
        pool = ThreadPoolExecutor(max_workers=len(targets) + 1)
        ref_future: Future[Any]
        if mode == "full":
            ref_future = pool.submit(ref.scan_digests, layout, self.scope.project, self._hex_digits)
        else:
            ref_future = pool.submit(
                divergence.sample_freshness,
                layout,
                project=self.scope.project,
                region=ref,
                partitions=partitions,
                size=self.settings.sample.size,
                seed=self.settings.sample.seed,
            )

        def one(region: str) -> Findings:
            common: dict[str, Any] = {
                "project": self.scope.project,
                "reference": ref,
                "region": self.regions[region],
                "partitions": partitions,
                "positions": lambda: self.positions_for(region, layout.name),
                "partition_of": self.partition_of,
                "monotonic": self.monotonic,
            }
            if mode == "full":
                return divergence.full(
                    layout, hex_digits=self._hex_digits, reference_scan=ref_future.result, **common
                )
            sample = self.settings.sample
            return divergence.sampled(
                layout, size=sample.size, confidence=sample.confidence, seed=sample.seed, **common
            )

        try:
            futures = {region: pool.submit(one, region) for region in targets}
            for region, future in futures.items():
                findings = future.result()
                results[(region, layout.name)] = findings
                self._note_newest(region, layout.name, findings.newest_event_s)
            ref_result = ref_future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        newest = ref_result.newest_event_s if mode == "full" else ref_result
        self._note_newest(ref_name, layout.name, newest)
        return results

    @property
    def _hex_digits(self) -> int:
        return self.settings.full.bucket_hex_digits

    def _note_newest(self, region: str, view: str, newest: int | None) -> None:
        if newest is None:
            return
        with self._lock:
            key = (region, view)
            self._newest_event[key] = max(newest, self._newest_event.get(key, newest))

    def positions_for(
        self, region: str, view: str
    ) -> tuple[dict[int, Position], dict[int, Position]]:
        topic = self.scope.topic(view)
        positions = [(topic, p) for p in range(self.scope.partitions)]
        out: list[dict[int, Position]] = []
        for side in (self.scope.reference_region, region):
            within = self._within_staleness(side, view)
            try:
                committed = self.log.committed(self.scope.groups[side], positions)
            except SourceUnavailable as exc:
                log.warning("%s; counting every difference as divergence", exc)
                out.append({})
                continue
            out.append(
                {
                    p: Position(committed.get((topic, p)), within)
                    for p in range(self.scope.partitions)
                }
            )
        return out[0], out[1]

    def _within_staleness(self, region: str, view: str) -> bool:
        bound = self.bounds.resolve(region, view).max_staleness_seconds
        staleness = self._staleness.get((region, view))
        if bound is None or staleness is None:
            return True  # unknown: the log positions alone decide
        return staleness <= bound

    # One-shot report ---------------------------------------------------------------------
    def report(
        self,
        staleness: StalenessRound,
        findings: Mapping[tuple[str, str], Findings] | None = None,
    ) -> Report:
        """Assemble a report and evaluate every bound once (no hysteresis: ``check --once``)."""
        report = Report(
            generated_at_ns=self.clock(),
            project=self.scope.project,
            reference_region=self.scope.reference_region,
            heartbeat=staleness.heartbeat,
            regions=staleness.regions,
            errors=list(staleness.errors),
        )
        for (region, view), found in (findings or {}).items():
            vr = report.regions[region].feature_views.setdefault(view, ViewReport())
            vr.divergence = found.report
        self._add_freshness(report.regions)
        for region, rr in report.regions.items():
            for view, vr in sorted(rr.feature_views.items()):
                bounds = self.bounds.resolve(region, view)
                checks = [
                    (Measure.STALENESS, vr.staleness_seconds, bounds.max_staleness_seconds),
                    (Measure.FRESHNESS, vr.freshness_seconds, bounds.max_freshness_seconds),
                    (
                        Measure.DIVERGENCE,
                        None if vr.divergence is None else vr.divergence.evaluated_ratio,
                        bounds.max_divergence_ratio,
                    ),
                ]
                for measure, value, bound in checks:
                    if violates(value, bound):
                        report.violations.append(Violation(region, view, measure, value, bound))
            skew_bound = self.bounds.max_version_skew(region)
            for artifact, skew in rr.versions.artifacts() if rr.versions else ():
                if violates(skew.skew_seconds, skew_bound):
                    report.violations.append(
                        Violation(
                            region, artifact, Measure.VERSION_SKEW, skew.skew_seconds, skew_bound
                        )
                    )
            if any(v.region == region for v in report.violations):
                rr.status = "violated"
        return report
