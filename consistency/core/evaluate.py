"""Bounds against a report's values: one-shot violations and the observations fed to the
hysteresis trackers (``core.bounds``). No I/O; bounds come through ``BoundLookup``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Protocol

from consistency.core.bounds import Measure, violates
from consistency.core.report import RegionReport, ViewReport, Violation

Observation = tuple[str, str, float | None, float | None]
"""(region, feature view or artifact, value, bound)."""


class ViewBounds(Protocol):
    @property
    def max_staleness_seconds(self) -> float | None: ...
    @property
    def max_freshness_seconds(self) -> float | None: ...
    @property
    def max_divergence_ratio(self) -> float | None: ...


class BoundLookup(Protocol):
    """``config.Bounds``: the most specific bound of a region and view."""

    def resolve(self, region: str, feature_view: str) -> ViewBounds: ...

    def max_version_skew(self, region: str) -> float | None: ...


def region_status(report: RegionReport, *, violated: bool, blind: bool) -> str:
    """ "violated" when a bound is; else "unknown" when anything of the region (or of the
    whole round: ``blind``) was not measured, or it has no staleness figure; else "ok".
    Unmeasured never reads as OK."""
    if violated:
        return "violated"
    staleness = report.staleness_seconds
    if blind or report.errors or staleness is None or math.isinf(staleness):
        return "unknown"
    return "ok"


def view_checks(
    region: str, view: str, vr: ViewReport, bounds: BoundLookup
) -> list[tuple[Measure, float | None, float | None]]:
    """(measure, value, bound) of one view: staleness, freshness, divergence (the ratio
    bounds judge: ``DivergenceReport.evaluated_ratio``)."""
    b = bounds.resolve(region, view)
    ratio = None if vr.divergence is None else vr.divergence.evaluated_ratio
    return [
        (Measure.STALENESS, vr.staleness_seconds, b.max_staleness_seconds),
        (Measure.FRESHNESS, vr.freshness_seconds, b.max_freshness_seconds),
        (Measure.DIVERGENCE, ratio, b.max_divergence_ratio),
    ]


def view_observations(
    regions: Mapping[str, RegionReport], bounds: BoundLookup
) -> dict[Measure, list[Observation]]:
    """Staleness, freshness and divergence of every view against its bound, per measure."""
    out: dict[Measure, list[Observation]] = {}
    for region, rr in regions.items():
        for view, vr in sorted(rr.feature_views.items()):
            for measure, value, bound in view_checks(region, view, vr, bounds):
                out.setdefault(measure, []).append((region, view, value, bound))
    return out


def skew_observations(
    regions: Mapping[str, RegionReport], bounds: BoundLookup
) -> list[Observation]:
    """Each live artifact's version skew against the region's bound (unread buckets skipped)."""
    out: list[Observation] = []
    for region, rr in regions.items():
        bound = bounds.max_version_skew(region)
        for artifact, skew in rr.versions.artifacts() if rr.versions else ():
            out.append((region, artifact, skew.skew_seconds, bound))
    return out


def one_shot_violations(
    regions: Mapping[str, RegionReport], bounds: BoundLookup
) -> list[Violation]:
    """Every value above its bound, without hysteresis (``check --once``): per region its
    views' staleness, freshness and divergence, then its version skew."""
    out: list[Violation] = []
    for region, rr in regions.items():
        for view, vr in sorted(rr.feature_views.items()):
            for measure, value, bound in view_checks(region, view, vr, bounds):
                if violates(value, bound):
                    out.append(Violation(region, view, measure, value, bound))
        for _, artifact, value, bound in skew_observations({region: rr}, bounds):
            if violates(value, bound):
                out.append(Violation(region, artifact, Measure.VERSION_SKEW, value, bound))
    return out
