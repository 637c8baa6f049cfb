"""Bound evaluation with hysteresis, and the alert state derived from it.

Each (region, feature view, measure) has a ``Tracker``, a Schmitt trigger with counts:

    OK/RECOVERED --(value > bound, ``violate_after`` evaluations in a row)--> VIOLATED
    VIOLATED --(value <= bound * recover_ratio, ``recover_after`` in a row)--> RECOVERED

A value oscillating around the bound therefore stays VIOLATED (it never drops below the
lower threshold) instead of raising an alert per crossing. ``math.inf`` stands for "could
not be measured" (treated as above any bound); ``None`` for "not measured this round"
(no change).

Alerts are per (region, measure): ``AlertBook`` turns the trackers of a region's feature
views into one VIOLATED alert when the first view violates and one RECOVERED alert when the
last one recovers, so a region whose worker stops raises one staleness alert, not one per
view and partition. For ``Measure.VERSION_SKEW`` the view's place holds the artifact
("registry" or "model:<name>").
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum


class Measure(StrEnum):
    STALENESS = "staleness"
    FRESHNESS = "freshness"
    DIVERGENCE = "divergence"
    VERSION_SKEW = "version_skew"


class State(StrEnum):
    OK = "ok"
    VIOLATED = "violated"
    RECOVERED = "recovered"


@dataclass(frozen=True)
class Hysteresis:
    violate_after: int = 2
    recover_after: int = 3
    recover_ratio: float = 0.8

    def __post_init__(self) -> None:
        if self.violate_after < 1 or self.recover_after < 1:
            raise ValueError("violate_after and recover_after must be at least 1")
        if not 0.0 < self.recover_ratio <= 1.0:
            raise ValueError("recover_ratio must be in (0, 1]")


def violates(value: float | None, bound: float | None) -> bool:
    """One-shot evaluation (``consistency check --once``): no history, no hysteresis."""
    if bound is None or value is None:
        return False
    return value > bound


@dataclass
class Tracker:
    hysteresis: Hysteresis
    state: State = State.OK
    above: int = 0
    below: int = 0
    value: float | None = None
    bound: float | None = None

    def observe(self, value: float | None, bound: float | None) -> State | None:
        """Feed one evaluation; returns the new state when it changed."""
        if value is None:
            return None
        self.value, self.bound = value, bound
        if bound is None:  # the bound was switched off
            self.above = self.below = 0
            if self.state is State.VIOLATED:
                self.state = State.RECOVERED
                return self.state
            return None
        h = self.hysteresis
        if self.state is State.VIOLATED:
            self.below = self.below + 1 if value <= bound * h.recover_ratio else 0
            if self.below >= h.recover_after:
                self.state, self.below = State.RECOVERED, 0
                return self.state
            return None
        self.above = self.above + 1 if value > bound else 0
        if self.above >= h.violate_after:
            self.state, self.above = State.VIOLATED, 0
            return self.state
        return None


@dataclass(frozen=True)
class Alert:
    region: str
    measure: Measure
    state: State
    """VIOLATED or RECOVERED."""
    feature_views: dict[str, tuple[float | None, float | None]]
    """View -> (value, bound): the violating views, or the ones that recovered."""

    def to_dict(self) -> dict[str, object]:
        return {
            "region": self.region,
            "measure": self.measure.value,
            "state": self.state.value.upper(),
            "feature_views": {
                view: {"value": _finite(value), "bound": bound}
                for view, (value, bound) in sorted(self.feature_views.items())
            },
        }


def _finite(value: float | None) -> float | str | None:
    if value is not None and math.isinf(value):
        return "unmeasurable"
    return value


@dataclass
class AlertBook:
    """Trackers per (region, view, measure) and the alert state per (region, measure)."""

    hysteresis: Hysteresis
    trackers: dict[tuple[str, str, Measure], Tracker] = field(default_factory=dict)
    alerting: dict[tuple[str, Measure], State] = field(default_factory=dict)

    def observe(
        self,
        measure: Measure,
        observations: Iterable[tuple[str, str, float | None, float | None]],
    ) -> list[Alert]:
        """Feed (region, view, value, bound) of one evaluation round of one measure."""
        touched: set[str] = set()
        for region, view, value, bound in observations:
            key = (region, view, measure)
            tracker = self.trackers.setdefault(key, Tracker(self.hysteresis))
            tracker.observe(value, bound)
            touched.add(region)
        alerts = []
        for region in sorted(touched):
            alert = self._region_alert(region, measure)
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _region_alert(self, region: str, measure: Measure) -> Alert | None:
        mine = {
            view: t for (r, view, m), t in self.trackers.items() if r == region and m is measure
        }
        violated = {v: (t.value, t.bound) for v, t in mine.items() if t.state is State.VIOLATED}
        before = self.alerting.get((region, measure), State.OK)
        if violated and before is not State.VIOLATED:
            self.alerting[(region, measure)] = State.VIOLATED
            return Alert(region, measure, State.VIOLATED, violated)
        if not violated and before is State.VIOLATED:
            self.alerting[(region, measure)] = State.RECOVERED
            recovered = {v: (t.value, t.bound) for v, t in mine.items()}
            return Alert(region, measure, State.RECOVERED, recovered)
        return None

    def state_of(self, region: str, view: str, measure: Measure) -> State:
        tracker = self.trackers.get((region, view, measure))
        return tracker.state if tracker else State.OK

    def violated(self) -> list[tuple[str, str, Measure, Tracker]]:
        return [
            (r, v, m, t)
            for (r, v, m), t in sorted(
                self.trackers.items(), key=lambda i: (i[0][0], i[0][1], i[0][2].value)
            )
            if t.state is State.VIOLATED
        ]
