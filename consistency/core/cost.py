"""What replication to a region costs in transfer: bytes fetched, extrapolated to a month.

Every region's workers fetch the feature-view topics they subscribe to from the brokers
(``replicator.core.egress`` counts them per topic). The checker reads those running totals
and turns them into a monthly estimate: the average byte rate since counting began
(``since_ns``), times a month (730 hours), times the region pair's price per GB (2**30
bytes, as clouds bill it). It also shows what the two levers save:

- compression: the same records carried decompressed (record bytes plus the protocol
  overhead) cost this much more;
- per-region subscription: each feature view the region does not subscribe to would cost
  what it costs the regions that do (its wire byte rate there; the highest if several).

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from replicator.core.egress import OVERHEAD, EgressCounts

GB = 1024**3
"""Bytes in a billed GB."""
MONTH_SECONDS = 730 * 3600
"""A billing month: 730 hours."""


def monthly_bytes(n_bytes: float, seconds: float) -> float:
    """``n_bytes`` observed over ``seconds``, extrapolated to a month (0 when no time)."""
    return n_bytes * MONTH_SECONDS / seconds if seconds > 0 else 0.0


def usd(n_bytes: float, usd_per_gb: float) -> float:
    return n_bytes / GB * usd_per_gb


@dataclass
class ViewEgress:
    records: int = 0
    record_bytes: int = 0
    wire_bytes: int = 0
    monthly_cost_usd: float = 0.0


@dataclass
class EgressReport:
    """One region's transfer from ``source_region`` and its monthly estimate (USD)."""

    source_region: str
    usd_per_gb: float
    observed_seconds: float
    record_bytes: int
    wire_bytes: int
    monthly_wire_bytes: float
    monthly_cost_usd: float
    compression_saves_usd: float
    """Monthly: record bytes (plus overhead) at the same price, minus the actual cost."""
    subscription_saves_usd: float = 0.0
    """Monthly: what the views the region does not subscribe to cost where they are fetched."""
    unpriced_views: list[str] = field(default_factory=list)
    """Views the region skips that no region fetches: their saving is not known."""
    feature_views: dict[str, ViewEgress] = field(default_factory=dict)
    overhead_wire_bytes: int = 0

    @property
    def wire_bytes_per_second(self) -> float:
        return self.wire_bytes / self.observed_seconds if self.observed_seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_region": self.source_region,
            "usd_per_gb": self.usd_per_gb,
            "observed_seconds": round(self.observed_seconds, 3),
            "record_bytes": self.record_bytes,
            "wire_bytes": self.wire_bytes,
            "overhead_wire_bytes": self.overhead_wire_bytes,
            "wire_bytes_per_second": round(self.wire_bytes_per_second, 3),
            "monthly_wire_bytes": round(self.monthly_wire_bytes),
            "monthly_cost_usd": round(self.monthly_cost_usd, 4),
            "compression_saves_usd": round(self.compression_saves_usd, 4),
            "subscription_saves_usd": round(self.subscription_saves_usd, 4),
            "unpriced_views": list(self.unpriced_views),
            "feature_views": {
                name: {
                    "records": v.records,
                    "record_bytes": v.record_bytes,
                    "wire_bytes": v.wire_bytes,
                    "monthly_cost_usd": round(v.monthly_cost_usd, 4),
                }
                for name, v in sorted(self.feature_views.items())
            },
        }


def region_egress(
    counts: EgressCounts,
    now_ns: int,
    *,
    source_region: str,
    usd_per_gb: float,
    view_of: Callable[[str], str | None],
) -> EgressReport:
    """A region's report from its consumer group's totals; topics ``view_of`` does not
    know (another project's) are left out, protocol overhead is in the totals."""
    seconds = max(0.0, (now_ns - counts.since_ns) / 1e9)
    views: dict[str, ViewEgress] = {}
    for topic, counted in counts.topics.items():
        view = view_of(topic)
        if view is None:
            continue
        views[view] = ViewEgress(
            counted.records,
            counted.record_bytes,
            counted.wire_bytes,
            usd(monthly_bytes(counted.wire_bytes, seconds), usd_per_gb),
        )
    overhead = counts.topics[OVERHEAD].wire_bytes if OVERHEAD in counts.topics else 0
    wire = sum(v.wire_bytes for v in views.values()) + overhead
    record = sum(v.record_bytes for v in views.values())
    cost = usd(monthly_bytes(wire, seconds), usd_per_gb)
    uncompressed = usd(monthly_bytes(record + overhead, seconds), usd_per_gb)
    return EgressReport(
        source_region=source_region,
        usd_per_gb=usd_per_gb,
        observed_seconds=seconds,
        record_bytes=record,
        wire_bytes=wire,
        monthly_wire_bytes=monthly_bytes(wire, seconds),
        monthly_cost_usd=cost,
        compression_saves_usd=max(0.0, uncompressed - cost),
        feature_views=views,
        overhead_wire_bytes=overhead,
    )


def add_subscription_savings(
    reports: Mapping[str, EgressReport],
    views: Iterable[str],
    subscribes: Callable[[str, str], bool],
) -> None:
    """Fill each report's ``subscription_saves_usd``: for every view in ``views`` the region
    does not subscribe to, the view's monthly wire bytes in the region that fetches most of
    it, at this region's price. A view nobody fetches goes to ``unpriced_views``."""
    monthly_by_view: dict[str, float] = {}
    for report in reports.values():
        for name, view in report.feature_views.items():
            rate = monthly_bytes(view.wire_bytes, report.observed_seconds)
            monthly_by_view[name] = max(monthly_by_view.get(name, 0.0), rate)
    all_views = sorted(set(views) | set(monthly_by_view))
    for region, report in reports.items():
        skipped = [v for v in all_views if not subscribes(region, v)]
        report.subscription_saves_usd = sum(
            usd(monthly_by_view[v], report.usd_per_gb) for v in skipped if v in monthly_by_view
        )
        report.unpriced_views = [v for v in skipped if v not in monthly_by_view]
