"""What a check found, as plain values, and its JSON form (``consistency check --json``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from consistency.core.bounds import Measure
from consistency.core.cost import EgressReport
from consistency.core.versions import VersionsReport


@dataclass
class PartitionReport:
    staleness_seconds: float | None = None
    lag_offsets: int | None = None
    lag_seconds: float | None = None


@dataclass
class DivergenceReport:
    mode: str
    """"sampled" or "full"."""
    keys_checked: int = 0
    reference_keys: int = 0
    missing: int = 0
    extra: int = 0
    conflicting: int = 0
    behind: int = 0
    in_flight: int = 0
    ratio: float = 0.0
    ratio_low: float | None = None
    ratio_high: float | None = None
    confidence: float | None = None
    keys_per_second: float = 0.0
    seconds: float = 0.0
    mismatched_buckets: int | None = None

    @property
    def diverged(self) -> int:
        return self.missing + self.extra + self.conflicting + self.behind

    @property
    def evaluated_ratio(self) -> float:
        """What bounds are checked against: the exact ratio of a full check, or the lower end
        of a sample's interval (violated only when the sample shows it with confidence)."""
        if self.mode == "sampled" and self.ratio_low is not None:
            return self.ratio_low
        return self.ratio


@dataclass
class ViewReport:
    staleness_seconds: float | None = None
    freshness_seconds: float | None = None
    newest_event_s: int | None = None
    lag_offsets: int | None = None
    lag_seconds: float | None = None
    partitions: dict[int, PartitionReport] = field(default_factory=dict)
    divergence: DivergenceReport | None = None


@dataclass
class RegionReport:
    status: str = "ok"
    staleness_seconds: float | None = None
    lag_offsets: int | None = None
    lag_seconds: float | None = None
    catchup_seconds: float | None = None
    retention_seconds: float | None = None
    retention_headroom_seconds: float | None = None
    feature_views: dict[str, ViewReport] = field(default_factory=dict)
    versions: VersionsReport | None = None
    """Registry and models live in the region against the reference (None: not read)."""
    egress: EgressReport | None = None
    """Bytes its workers fetched and their monthly cost (None: nothing counted yet)."""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Violation:
    region: str
    feature_view: str
    """The feature view, or for version skew the artifact ("registry", "model:<name>")."""
    measure: Measure
    value: float | None
    bound: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "feature_view": self.feature_view,
            "measure": self.measure.value,
            "value": _num(self.value),
            "bound": self.bound,
        }


@dataclass
class HeartbeatInfo:
    sequence: int | None = None
    emitted_ns: int | None = None
    interval_seconds: float | None = None
    emitter_up: bool = False
    age_seconds: float = 0.0
    """Since the newest round was made (checker's monotonic clock,
    ``consistency.core.stall``); added to the staleness of every partition behind it."""
    stalled_seconds: float = 0.0
    """The newest round's age once the next is late (else 0.0); added to every staleness."""


@dataclass
class Report:
    generated_at_ns: int
    project: str
    reference_region: str
    heartbeat: HeartbeatInfo
    regions: dict[str, RegionReport] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.errors and not any(r.errors for r in self.regions.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at_ns / 1e9,
            "project": self.project,
            "reference_region": self.reference_region,
            "heartbeat": {
                "sequence": self.heartbeat.sequence,
                "emitted_at": None
                if self.heartbeat.emitted_ns is None
                else self.heartbeat.emitted_ns / 1e9,
                "interval_seconds": self.heartbeat.interval_seconds,
                "emitter_up": self.heartbeat.emitter_up,
                "age_seconds": round(self.heartbeat.age_seconds, 3),
                "stalled_seconds": round(self.heartbeat.stalled_seconds, 3),
            },
            "regions": {name: _region(r) for name, r in self.regions.items()},
            "egress": _egress_totals(self.regions),
            "violations": [v.to_dict() for v in self.violations],
            "errors": list(self.errors),
        }


def _num(value: float | None) -> float | str | None:
    if value is None:
        return None
    if math.isinf(value):
        return "unmeasurable"
    return round(value, 6) if isinstance(value, float) else value


def _region(report: RegionReport) -> dict[str, Any]:
    return {
        "status": report.status,
        "staleness_seconds": _num(report.staleness_seconds),
        "lag_offsets": report.lag_offsets,
        "lag_seconds": _num(report.lag_seconds),
        "catchup_seconds": _num(report.catchup_seconds),
        "retention_seconds": _num(report.retention_seconds),
        "retention_headroom_seconds": _num(report.retention_headroom_seconds),
        "feature_views": {name: _view(v) for name, v in sorted(report.feature_views.items())},
        "versions": None if report.versions is None else report.versions.to_dict(),
        "egress": None if report.egress is None else report.egress.to_dict(),
        "errors": list(report.errors),
    }


def _egress_totals(regions: dict[str, RegionReport]) -> dict[str, Any]:
    """Monthly USD over every region whose egress was counted."""
    counted = [r.egress for r in regions.values() if r.egress is not None]
    return {
        "regions_counted": len(counted),
        "monthly_cost_usd": round(sum(e.monthly_cost_usd for e in counted), 4),
        "compression_saves_usd": round(sum(e.compression_saves_usd for e in counted), 4),
        "subscription_saves_usd": round(sum(e.subscription_saves_usd for e in counted), 4),
    }


def _view(view: ViewReport) -> dict[str, Any]:
    d = view.divergence
    out: dict[str, Any] = {
        "staleness_seconds": _num(view.staleness_seconds),
        "freshness_seconds": _num(view.freshness_seconds),
        "lag_offsets": view.lag_offsets,
        "lag_seconds": _num(view.lag_seconds),
        "divergence_ratio": None if d is None else _num(d.ratio),
        "missing": None if d is None else d.missing,
        "extra": None if d is None else d.extra,
        "conflicting": None if d is None else d.conflicting,
        "behind": None if d is None else d.behind,
        "in_flight": None if d is None else d.in_flight,
        "partitions": {
            str(p): {
                "staleness_seconds": _num(r.staleness_seconds),
                "lag_offsets": r.lag_offsets,
                "lag_seconds": _num(r.lag_seconds),
            }
            for p, r in sorted(view.partitions.items())
        },
    }
    if d is not None:
        out["divergence"] = {
            "mode": d.mode,
            "keys_checked": d.keys_checked,
            "reference_keys": d.reference_keys,
            "ratio": _num(d.ratio),
            "ratio_interval": None
            if d.ratio_low is None
            else [_num(d.ratio_low), _num(d.ratio_high)],
            "confidence": d.confidence,
            "keys_per_second": round(d.keys_per_second, 1),
            "seconds": round(d.seconds, 3),
            "mismatched_buckets": d.mismatched_buckets,
        }
    return out
