"""Measures every region against the primary's heartbeats and the reference region.

``Checker`` only talks to ports (RegionData, LogAdmin, Manifest, LiveVersionSource), so unit
tests drive it with in-memory twins; ``wiring.build_checker`` connects it to Redis, Kafka and
S3. It composes one meter per concern (``consistency.measure``) and leaves the arithmetic to
``consistency.core``; it is safe to call from one scheduler thread per job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from consistency.config import Bounds, ConsistencySettings
from consistency.core.classify import Position
from consistency.core.cost import EgressReport
from consistency.core.evaluate import one_shot_violations, region_status
from consistency.core.region import RegionReadings, region_report
from consistency.core.report import HeartbeatInfo, RegionReport, Report, ViewReport
from consistency.core.scope import Scope
from consistency.divergence import Findings
from consistency.errors import ConsistencyError, SourceUnavailable
from consistency.measure.divergence import DivergenceMeter
from consistency.measure.egress import EgressMeter
from consistency.measure.freshness import NewestEvents
from consistency.measure.heartbeats import HeartbeatMeter
from consistency.measure.log_positions import LogMeter, LogRound, RegionLog
from consistency.measure.versions import VersionMeter
from consistency.measure.views import ViewCache
from consistency.ports import (
    LiveVersionSource,
    LogAdmin,
    Manifest,
    RegionData,
    TopicPartition,
    ViewLayout,
)
from replicator.core.staleness import AppliedHeartbeat, Emission

__all__ = ["Checker", "Scope", "StalenessRound"]


@dataclass(frozen=True)
class RegionRedis:
    """One region's half of a staleness round that its Redis answers."""

    applied: dict[TopicPartition, AppliedHeartbeat] | None
    """None when unread (no emission, or the region did not answer)."""
    egress: EgressReport | None
    errors: list[str]


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
        self._views = ViewCache(manifest, monotonic)
        self._heartbeats = HeartbeatMeter(regions[scope.primary_region], scope.project, monotonic)
        self._log = LogMeter(log_admin, monotonic)
        self._newest = NewestEvents()
        self._egress = EgressMeter(scope, settings.egress, self.regions, clock)
        self._divergence = DivergenceMeter(
            scope,
            settings,
            regions=self.regions,
            log_admin=log_admin,
            partition_of=partition_of,
            newest=self._newest,
            monotonic=monotonic,
        )
        self._region_pools = {
            r: ThreadPoolExecutor(1, thread_name_prefix=f"region-{r}") for r in scope.regions
        }
        self._pending: dict[str, Future[RegionRedis]] = {}
        self._log_pool = ThreadPoolExecutor(1, thread_name_prefix="kafka")
        self._pending_log: Future[LogRound] | None = None
        self._versions = (
            None
            if versions is None
            else VersionMeter(
                versions,
                scope.regions,
                scope.reference_region,
                clock=clock,
                monotonic=monotonic,
            )
        )

    @property
    def bounds(self) -> Bounds:
        return self.settings.bounds

    def views(self, *, max_age: float = 60.0) -> dict[str, ViewLayout]:
        """The manifest's feature views (cached ``max_age`` seconds)."""
        return self._views.get(max_age=max_age)

    # Staleness, lag, catch-up, freshness, versions ---------------------------------------
    def measure_staleness(self) -> StalenessRound:
        """One round of everything but divergence; what could not be read is in ``errors``
        (the round's) or in a region's ``errors``, never raised."""
        errors: list[str] = []
        emission, heartbeat = self._heartbeats.read(errors)
        topics = self._topics(emission, errors)
        reports = self._regions_within_deadline(emission, heartbeat.age_seconds, topics, errors)
        self._newest.add_to(reports, self.clock() / 1e9)
        self._egress.add_savings(reports, [v for t in topics if (v := self.scope.view_of(t))])
        if self._versions is not None:
            self._versions.add_to(reports)
        return StalenessRound(heartbeat, reports, errors)

    def _regions_within_deadline(
        self,
        emission: Emission | None,
        round_age: float,
        topics: Mapping[str, int],
        errors: list[str],
    ) -> dict[str, RegionReport]:
        """Each region's Redis read in its own thread and Kafka in one more, all under one
        deadline (``schedule.read_timeout_seconds``): a region that does not answer in time
        (or still hangs from an earlier round) is unmeasurable this round, a Kafka that does
        not leaves every region's lag unknown, and the rest is reported all the same."""
        deadline = self.settings.schedule.read_timeout_seconds
        views = {r: self.scope.views_of_region(r, topics) for r in self.scope.regions}
        positions = {r: [(t, p) for t, n in v.values() for p in range(n)] for r, v in views.items()}
        log_future = self._submit_log(emission, topics, positions)
        futures: dict[str, Future[RegionRedis]] = {}
        reasons: dict[str, str] = {}
        for region in self.scope.regions:
            pending = self._pending.get(region)
            if pending is not None and not pending.done():
                reasons[region] = f"{region}: still no answer to an earlier round's reads"
                continue
            futures[region] = self._region_pools[region].submit(
                self._region_redis, region, emission, positions[region]
            )
        waited: list[Future[Any]] = [*futures.values(), *([log_future] if log_future else [])]
        wait(waited, timeout=deadline)
        log = self._log_answer(log_future, deadline)
        errors.extend(log.errors)
        reports: dict[str, RegionReport] = {}
        for region in self.scope.regions:
            future = futures.get(region)
            if future is not None and future.done():
                redis = future.result()
            else:
                if future is not None:
                    self._pending[region] = future
                    reasons[region] = f"{region}: no answer within {deadline:g} s"
                redis = RegionRedis(None, None, [reasons[region]])
            reports[region] = self._region_report(
                region, emission, round_age, views[region], redis, log.regions[region]
            )
        return reports

    def _submit_log(
        self,
        emission: Emission | None,
        topics: Mapping[str, int],
        positions: Mapping[str, list[TopicPartition]],
    ) -> Future[LogRound] | None:
        """The round's Kafka readings, started in the Kafka thread; None while an earlier
        round's still hang there."""
        if self._pending_log is not None and not self._pending_log.done():
            return None
        wanted = {r: (self.scope.groups[r], positions[r]) for r in self.scope.regions}
        emitted_ns = None if emission is None else emission.emitted_ns
        self._pending_log = self._log_pool.submit(self._log.read_round, emitted_ns, topics, wanted)
        return self._pending_log

    def _log_answer(self, future: Future[LogRound] | None, deadline: float) -> LogRound:
        if future is None:
            reason = "kafka: still no answer to an earlier round's reads"
        elif not future.done():
            reason = f"kafka: no answer within {deadline:g} s"
        else:
            return future.result()
        return LogRound.unanswered(self.scope.regions, reason)

    def close(self, *, kafka_wait: float = 30.0) -> None:
        """Stop the region and Kafka threads. A hung Redis read is left to its socket
        timeout; a Kafka read still running is awaited up to ``kafka_wait`` seconds (each
        of its calls ends within the adapter's timeout), so that the caller may close the
        Kafka clients it uses (``wiring.close_checker``) without closing them under it."""
        for pool in [*self._region_pools.values(), self._log_pool]:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._pending_log is not None:
            wait([self._pending_log], timeout=kafka_wait)

    def _topics(self, emission: Emission | None, errors: list[str]) -> dict[str, int]:
        if emission is not None and emission.topics:
            return {t: e.partitions for t, e in emission.topics.items()}
        try:
            return {self.scope.topic(view): self.scope.partitions for view in self.views()}
        except ConsistencyError as exc:
            errors.append(str(exc))
            return {}

    def _region_redis(
        self, region: str, emission: Emission | None, positions: Sequence[TopicPartition]
    ) -> RegionRedis:
        """The region's half of a round that its Redis answers (in the region's thread)."""
        errors: list[str] = []
        applied = None
        if emission is not None:
            try:
                applied = self.regions[region].applied_heartbeats(positions)
            except SourceUnavailable as exc:
                errors.append(str(exc))
        egress = self._egress.read(region, errors)
        return RegionRedis(applied, egress, errors)

    def _region_report(
        self,
        region: str,
        emission: Emission | None,
        round_age: float,
        views: Mapping[str, tuple[str, int]],
        redis: RegionRedis,
        log: RegionLog,
    ) -> RegionReport:
        readings = RegionReadings(views, redis.applied, log.lag, log.lag_seconds)
        report = region_report(emission, round_age, readings)
        report.errors.extend(redis.errors + log.errors)
        self._log.add_catch_up(region, log.committed, report)
        self._log.add_retention([t for t, _ in views.values()], report)
        report.egress = redis.egress
        return report

    # Divergence ---------------------------------------------------------------------------
    def measure_divergence(
        self,
        mode: str,
        *,
        regions: Sequence[str] | None = None,
        views: Sequence[str] | None = None,
    ) -> dict[tuple[str, str], Findings]:
        """Compare each region with the reference, per view ("sampled" or "full")."""
        return self._divergence.measure(mode, self.views(), regions=regions, views=views)

    def positions_for(
        self, region: str, view: str
    ) -> tuple[dict[int, Position], dict[int, Position]]:
        return self._divergence.positions_for(region, view)

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
        self._newest.add_to(report.regions, self.clock() / 1e9)
        report.violations = one_shot_violations(report.regions, self.bounds)
        violated = {v.region for v in report.violations}
        for region, rr in report.regions.items():
            rr.status = region_status(rr, violated=region in violated, blind=bool(report.errors))
        return report
