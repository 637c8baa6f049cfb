"""Prometheus metrics of the checker (served on ``/metrics`` by ``consistency serve``).

Names are part of the interface: ``infra/monitoring`` (Grafana dashboard, alert rules) uses
them and a test checks that every name those files use is served. ``METRIC_NAMES`` lists
them. Unmeasurable staleness is exported as +Inf, so it trips every threshold. Version series
(``kind`` "registry" with the project as ``name``, or "model" with the model's name) of an
artifact that is gone, or of a version no longer live, are removed, not left at their last
value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from consistency.config import Bounds
from consistency.core.bounds import AlertBook, Measure, State
from consistency.core.report import DivergenceReport, HeartbeatInfo, RegionReport
from consistency.core.versions import MODEL_PREFIX, REGISTRY, ArtifactSkew

RV = ["region", "feature_view"]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.region_staleness = Gauge(
            "consistency_region_staleness_seconds",
            "Worst heartbeat staleness of the region (primary clock only)",
            ["region"],
            registry=r,
        )
        self.staleness = Gauge(
            "consistency_staleness_seconds",
            "Heartbeat staleness per region and feature view (worst partition)",
            RV,
            registry=r,
        )
        self.partition_staleness = Gauge(
            "consistency_partition_staleness_seconds",
            "Heartbeat staleness per region, feature view and partition",
            [*RV, "partition"],
            registry=r,
        )
        self.freshness = Gauge(
            "consistency_freshness_seconds",
            "Now minus the newest event time seen in the region for the view",
            RV,
            registry=r,
        )
        self.lag_offsets = Gauge(
            "consistency_consumer_lag_offsets",
            "Records the region's worker has not consumed yet",
            RV,
            registry=r,
        )
        self.lag_seconds = Gauge(
            "consistency_consumer_lag_seconds",
            "Age of the oldest unconsumed record (primary clock)",
            RV,
            registry=r,
        )
        self.measured = Gauge(
            "consistency_region_measured",
            "1 when every measure of the region was read in the latest round, 0 when something "
            "was not (its status is then unknown unless a bound is violated)",
            ["region"],
            registry=r,
        )
        self.catchup = Gauge(
            "consistency_catchup_seconds",
            "Estimated time for the region to consume its lag at its current rate",
            ["region"],
            registry=r,
        )
        self.headroom = Gauge(
            "consistency_retention_headroom_seconds",
            "Topic retention minus (lag + catch-up); absent when retention is unlimited",
            ["region"],
            registry=r,
        )
        self.divergence = Gauge(
            "consistency_divergence_ratio",
            "Diverged keys / reference keys, latest check",
            [*RV, "mode"],
            registry=r,
        )
        self.divergence_low = Gauge(
            "consistency_divergence_ratio_low",
            "Lower end of the sampled ratio's confidence interval (exact ratio for full checks)",
            RV,
            registry=r,
        )
        self.divergence_high = Gauge(
            "consistency_divergence_ratio_high",
            "Upper end of the sampled ratio's confidence interval (exact ratio for full checks)",
            RV,
            registry=r,
        )
        self.divergent_keys = Gauge(
            "consistency_divergent_keys",
            "Keys per class in the latest divergence check",
            [*RV, "class"],
            registry=r,
        )
        self.keys_per_second = Gauge(
            "consistency_keys_scanned_per_second",
            "Keys read per second by the latest divergence check",
            ["mode"],
            registry=r,
        )
        self.bound = Gauge(
            "consistency_bound",
            "Configured bound per region, feature view and measure",
            [*RV, "measure"],
            registry=r,
        )
        self.violation = Gauge(
            "consistency_violation",
            "1 while the bound is VIOLATED (after hysteresis), else 0",
            [*RV, "measure"],
            registry=r,
        )
        self.live_version = Gauge(
            "consistency_live_version_info",
            "1 for the registry or model version live in the region",
            ["region", "kind", "name", "version"],
            registry=r,
        )
        self.version_skew = Gauge(
            "consistency_version_skew_seconds",
            "How long the region has run another version than the reference region (0: same)",
            ["region", "kind", "name"],
            registry=r,
        )
        self._version_series: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self.egress_bytes = Gauge(
            "consistency_egress_bytes",
            "Bytes the region's workers fetched since counting began (encoding: wire = as "
            "carried, compressed; decompressed = the records)",
            ["region", "encoding"],
            registry=r,
        )
        self.egress_rate = Gauge(
            "consistency_egress_wire_bytes_per_second",
            "Average wire bytes per second the region fetched since counting began",
            ["region"],
            registry=r,
        )
        self.egress_cost = Gauge(
            "consistency_egress_monthly_cost_usd",
            "Monthly transfer cost estimate of the region (its rate x 730 h x its $/GB)",
            ["region"],
            registry=r,
        )
        self.egress_view_cost = Gauge(
            "consistency_egress_view_monthly_cost_usd",
            "Monthly transfer cost estimate per region and feature view",
            RV,
            registry=r,
        )
        self.egress_saves = Gauge(
            "consistency_egress_saves_usd",
            "Monthly cost avoided per region by a lever (compression, subscription)",
            ["region", "lever"],
            registry=r,
        )
        self.alerts = Counter(
            "consistency_alerts",
            "Alerts raised (state VIOLATED or RECOVERED)",
            ["measure", "state"],
            registry=r,
        )
        self.emitter_up = Gauge(
            "consistency_heartbeat_emitter_up",
            "1 when the primary's heartbeat emission record exists",
            registry=r,
        )
        self.sequence = Gauge(
            "consistency_heartbeat_sequence", "Newest emitted heartbeat sequence", registry=r
        )
        self.stalled = Gauge(
            "consistency_heartbeat_stalled_seconds",
            "How long the emission record has not advanced beyond its interval",
            registry=r,
        )
        self.interval = Gauge(
            "consistency_heartbeat_interval_seconds",
            "Heartbeat interval: the resolution of staleness",
            registry=r,
        )
        self.duration = Gauge(
            "consistency_check_duration_seconds", "Duration of the latest run", ["job"], registry=r
        )
        self.last_run = Gauge(
            "consistency_last_check_timestamp_seconds",
            "When the job last completed (checker clock)",
            ["job"],
            registry=r,
        )
        self.errors = Counter(
            "consistency_check_errors", "Runs that could not measure something", ["job"], registry=r
        )

    def add_webhook(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self.registry.register(_WebhookCollector(counts))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # Updates ------------------------------------------------------------------------------
    def heartbeat(self, info: HeartbeatInfo) -> None:
        self.emitter_up.set(1 if info.emitter_up else 0)
        if info.sequence is not None:
            self.sequence.set(info.sequence)
        if info.interval_seconds is not None:
            self.interval.set(info.interval_seconds)
        self.stalled.set(info.stalled_seconds)

    def regions(self, reports: Mapping[str, RegionReport], bounds: Bounds) -> None:
        for region, report in reports.items():
            self.region_staleness.labels(region).set(_value(report.staleness_seconds))
            staleness = report.staleness_seconds
            unmeasured = report.errors or staleness is None or math.isinf(staleness)
            self.measured.labels(region).set(0 if unmeasured else 1)
            _set_optional(self.catchup.labels(region), report.catchup_seconds)
            if report.retention_headroom_seconds is not None:
                self.headroom.labels(region).set(report.retention_headroom_seconds)
            for view, vr in report.feature_views.items():
                self.staleness.labels(region, view).set(_value(vr.staleness_seconds))
                for p, pr in vr.partitions.items():
                    self.partition_staleness.labels(region, view, str(p)).set(
                        _value(pr.staleness_seconds)
                    )
                _set_optional(self.freshness.labels(region, view), vr.freshness_seconds)
                _set_optional(self.lag_offsets.labels(region, view), vr.lag_offsets)
                _set_optional(self.lag_seconds.labels(region, view), vr.lag_seconds)
                resolved = bounds.resolve(region, view)
                for measure, value in (
                    (Measure.STALENESS, resolved.max_staleness_seconds),
                    (Measure.FRESHNESS, resolved.max_freshness_seconds),
                    (Measure.DIVERGENCE, resolved.max_divergence_ratio),
                ):
                    gauge = self.bound.labels(region, view, measure.value)
                    gauge.set(math.nan if value is None else value)

    def egress(self, reports: Mapping[str, RegionReport]) -> None:
        """Bytes and cost; a region not counted (or not read) keeps its last values."""
        for region, report in reports.items():
            e = report.egress
            if e is None:
                continue
            self.egress_bytes.labels(region, "wire").set(e.wire_bytes)
            self.egress_bytes.labels(region, "decompressed").set(e.record_bytes)
            self.egress_rate.labels(region).set(e.wire_bytes_per_second)
            self.egress_cost.labels(region).set(e.monthly_cost_usd)
            self.egress_saves.labels(region, "compression").set(e.compression_saves_usd)
            self.egress_saves.labels(region, "subscription").set(e.subscription_saves_usd)
            for view, ve in e.feature_views.items():
                self.egress_view_cost.labels(region, view).set(ve.monthly_cost_usd)

    def versions(self, reports: Mapping[str, RegionReport], bounds: Bounds, project: str) -> None:
        """Live versions and skew; a region whose bucket was not read keeps its last values."""
        for region, report in reports.items():
            if report.versions is None:
                continue
            artifacts: list[tuple[str, str, str, ArtifactSkew]] = [
                (REGISTRY, "registry", project, report.versions.registry),
                *(
                    (MODEL_PREFIX + name, "model", name, skew)
                    for name, skew in report.versions.models.items()
                ),
            ]
            bound = bounds.max_version_skew(region)
            info: set[tuple[str, ...]] = set()
            skews: set[tuple[str, ...]] = set()
            bounds_set: set[tuple[str, ...]] = set()
            for artifact, kind, name, skew in artifacts:
                self.version_skew.labels(region, kind, name).set(_value(skew.skew_seconds))
                skews.add((region, kind, name))
                if skew.version is not None:
                    self.live_version.labels(region, kind, name, skew.version).set(1)
                    info.add((region, kind, name, skew.version))
                measure = Measure.VERSION_SKEW.value
                self.bound.labels(region, artifact, measure).set(_value(bound))
                bounds_set.add((region, artifact, measure))
            self._keep_only(self.live_version, "info", region, info)
            self._keep_only(self.version_skew, "skew", region, skews)
            self._keep_only(self.bound, "bound", region, bounds_set)

    def _keep_only(
        self, gauge: Gauge, key: str, region: str, current: set[tuple[str, ...]]
    ) -> None:
        previous = self._version_series.get((key, region), set())
        for labels in previous - current:
            gauge.remove(*labels)
        self._version_series[(key, region)] = current

    def divergence_of(self, region: str, view: str, report: DivergenceReport) -> None:
        self.divergence.labels(region, view, report.mode).set(report.ratio)
        low = report.ratio if report.ratio_low is None else report.ratio_low
        high = report.ratio if report.ratio_high is None else report.ratio_high
        self.divergence_low.labels(region, view).set(low)
        self.divergence_high.labels(region, view).set(high)
        for name in ("missing", "extra", "conflicting", "behind", "in_flight"):
            self.divergent_keys.labels(region, view, name).set(getattr(report, name))
        self.keys_per_second.labels(report.mode).set(report.keys_per_second)

    def states(self, book: AlertBook) -> None:
        for (region, view, measure), tracker in book.trackers.items():
            self.violation.labels(region, view, measure.value).set(
                1 if tracker.state is State.VIOLATED else 0
            )


def _value(value: float | None) -> float:
    return math.nan if value is None else value


def _set_optional(gauge: Gauge, value: float | None) -> None:
    gauge.set(math.nan if value is None else value)


class _WebhookCollector(Collector):
    def __init__(self, counts: Callable[[], Mapping[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "consistency_webhook_deliveries",
            "Webhook deliveries by outcome (delivered, failed, dropped)",
            labels=["outcome"],
        )
        for outcome, count in sorted(self._counts().items()):
            family.add_metric([outcome], count)
        yield family


METRIC_NAMES = frozenset(
    {
        "consistency_region_staleness_seconds",
        "consistency_region_measured",
        "consistency_staleness_seconds",
        "consistency_partition_staleness_seconds",
        "consistency_freshness_seconds",
        "consistency_consumer_lag_offsets",
        "consistency_consumer_lag_seconds",
        "consistency_catchup_seconds",
        "consistency_retention_headroom_seconds",
        "consistency_divergence_ratio",
        "consistency_divergence_ratio_low",
        "consistency_divergence_ratio_high",
        "consistency_divergent_keys",
        "consistency_keys_scanned_per_second",
        "consistency_bound",
        "consistency_violation",
        "consistency_live_version_info",
        "consistency_version_skew_seconds",
        "consistency_alerts_total",
        "consistency_heartbeat_emitter_up",
        "consistency_heartbeat_sequence",
        "consistency_heartbeat_interval_seconds",
        "consistency_heartbeat_stalled_seconds",
        "consistency_check_duration_seconds",
        "consistency_last_check_timestamp_seconds",
        "consistency_check_errors_total",
        "consistency_webhook_deliveries_total",
        "consistency_egress_bytes",
        "consistency_egress_wire_bytes_per_second",
        "consistency_egress_monthly_cost_usd",
        "consistency_egress_view_monthly_cost_usd",
        "consistency_egress_saves_usd",
    }
)
