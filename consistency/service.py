"""``consistency serve``: scheduled checks, hysteresis, alerts, and the state the web shows.

Jobs (APScheduler 3.x, one thread each, never overlapping themselves):
- staleness every ``schedule.staleness_seconds``: heartbeats, consumer lag, catch-up,
  freshness from the newest event times seen so far, and the skew of the registry and model
  versions live per region (the buckets are read at most every 30 s, the skew every round);
- sampled divergence every ``schedule.sampled_seconds``;
- full divergence on ``schedule.full_cron``.
Each evaluation feeds the ``AlertBook``; a transition becomes a structured log line and a
webhook POST queued on the ``AlertSink`` (which retries in its own thread, off this path).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from consistency.checker import Checker, StalenessRound
from consistency.config import ConsistencySettings
from consistency.core.bounds import Alert, AlertBook, Hysteresis, Measure, State
from consistency.core.evaluate import Observation, skew_observations, view_observations
from consistency.core.report import DivergenceReport, Violation
from consistency.divergence import Findings
from consistency.errors import ConsistencyError
from consistency.metrics import Metrics
from consistency.ports import AlertSink

log = logging.getLogger(__name__)


class ConsistencyService:
    def __init__(
        self,
        checker: Checker,
        settings: ConsistencySettings,
        *,
        sink: AlertSink | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.checker = checker
        self.settings = settings
        self.sink = sink
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.monotonic = monotonic
        h = settings.hysteresis
        self.book = AlertBook(Hysteresis(h.violate_after, h.recover_after, h.recover_ratio))
        self._lock = threading.Lock()
        self.staleness: StalenessRound | None = None
        self.divergence: dict[tuple[str, str], Findings] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=settings.server.history_points)
        self.alerts: deque[dict[str, Any]] = deque(maxlen=200)
        self.last_run: dict[str, float] = {}
        self._scheduler: BackgroundScheduler | None = None

    # Jobs ---------------------------------------------------------------------------------
    def run_staleness(self) -> StalenessRound:
        started = time.monotonic()
        measured = self.checker.measure_staleness()
        bounds = self.settings.bounds
        per_view = view_observations(measured.regions, bounds)
        skew_obs = self._version_observations(measured)
        with self._lock:
            self.staleness = measured
            alerts = self.book.observe(Measure.STALENESS, per_view.get(Measure.STALENESS, []))
            alerts += self.book.observe(Measure.FRESHNESS, per_view.get(Measure.FRESHNESS, []))
            alerts += self.book.observe(Measure.VERSION_SKEW, skew_obs)
            self.history.append(
                {
                    "t": self.clock() / 1e9,
                    "regions": {
                        r: _json_number(rep.staleness_seconds)
                        for r, rep in measured.regions.items()
                    },
                }
            )
        self.metrics.heartbeat(measured.heartbeat)
        self.metrics.regions(measured.regions, bounds)
        self.metrics.versions(measured.regions, bounds, self.checker.scope.project)
        self.metrics.egress(measured.regions)
        self._finish("staleness", started, bool(measured.errors) or _region_errors(measured))
        self._dispatch(alerts)
        return measured

    def _version_observations(self, measured: StalenessRound) -> list[Observation]:
        """(region, artifact, skew, bound) per artifact; an artifact tracked before that is
        gone now (a deleted model) is observed at 0 so its alert can recover."""
        out = skew_observations(measured.regions, self.settings.bounds)
        for region, report in measured.regions.items():
            if report.versions is None:
                continue  # bucket not read: no change
            seen = {artifact for r, artifact, _, _ in out if r == region}
            bound = self.settings.bounds.max_version_skew(region)
            with self._lock:
                gone = [
                    a
                    for (r, a, m) in self.book.trackers
                    if r == region and m is Measure.VERSION_SKEW and a not in seen
                ]
            out.extend((region, artifact, 0.0, bound) for artifact in gone)
        return out

    def run_divergence(self, mode: str) -> dict[tuple[str, str], Findings]:
        started = time.monotonic()
        try:
            found = self.checker.measure_divergence(mode)
        except ConsistencyError as exc:
            log.warning(
                "%s divergence check failed: %s", mode, exc, extra={"event": "check_failed"}
            )
            self._finish(f"divergence_{mode}", started, True)
            return {}
        bounds = self.settings.bounds
        observations = []
        for (region, view), findings in found.items():
            self.metrics.divergence_of(region, view, findings.report)
            observations.append(
                (
                    region,
                    view,
                    findings.report.evaluated_ratio,
                    bounds.resolve(region, view).max_divergence_ratio,
                )
            )
        with self._lock:
            self.divergence.update(found)
            alerts = self.book.observe(Measure.DIVERGENCE, observations)
        self._finish(f"divergence_{mode}", started, False)
        self._dispatch(alerts)
        return found

    def _finish(self, job: str, started: float, failed: bool) -> None:
        self.metrics.duration.labels(job).set(time.monotonic() - started)
        self.metrics.last_run.labels(job).set(self.clock() / 1e9)
        self.last_run[job] = self.monotonic()
        self.metrics.states(self.book)
        if failed:
            self.metrics.errors.labels(job).inc()

    def _dispatch(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            payload = {
                "id": uuid.uuid4().hex,
                "at": datetime.fromtimestamp(self.clock() / 1e9, UTC).isoformat(),
                "source": "consistency",
                "project": self.checker.scope.project,
                "reference_region": self.checker.scope.reference_region,
                **alert.to_dict(),
            }
            log_method = log.warning if alert.state is State.VIOLATED else log.info
            log_method(
                "%s %s bound %s in %s (%s)",
                alert.measure.value,
                "VIOLATED" if alert.state is State.VIOLATED else "RECOVERED",
                "violated" if alert.state is State.VIOLATED else "holds again",
                alert.region,
                ", ".join(sorted(alert.feature_views)),
                extra={"event": "consistency_alert", **payload},
            )
            self.metrics.alerts.labels(alert.measure.value, alert.state.value.upper()).inc()
            with self._lock:
                self.alerts.appendleft(payload)
            if self.sink is not None:
                self.sink.send(payload)

    # State for the web --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._lock:
            measured = self.staleness
            findings = dict(self.divergence)
            violations = [
                Violation(r, v, m, t.value, t.bound).to_dict()
                for r, v, m, t in self.book.violated()
            ]
        if measured is None:
            return {
                "ready": False,
                "project": self.checker.scope.project,
                "reference_region": self.checker.scope.reference_region,
                "regions": {},
                "violations": violations,
                "alerts": list(self.alerts)[:50],
            }
        report = self.checker.report(measured, findings).to_dict()
        report["raw_violations"] = report.pop("violations")
        report["violations"] = violations
        age = self.report_age()
        report["age_seconds"] = None if age is None else round(age, 3)
        report["stale"] = not self.healthy()[0]
        violated_regions = {v["region"] for v in violations}
        over_regions = {v["region"] for v in report["raw_violations"]}
        for name, region in report["regions"].items():
            if name in violated_regions:
                region["status"] = "violated"
            elif report["stale"]:
                region["status"] = "unknown"  # not measured lately: never OK
            elif name in over_regions:
                region["status"] = "breaching"  # over a bound, not yet for violate_after rounds
            elif region["status"] != "unknown":  # unknown: not measured, never OK
                region["status"] = "ok"
        report["ready"] = True
        report["alerts"] = list(self.alerts)[:50]
        report["bounds"] = {
            region: {
                view: self.settings.bounds.resolve(region, view).model_dump()
                for view in region_report["feature_views"]
            }
            for region, region_report in report["regions"].items()
        }
        return report

    def history_points(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.history)

    def report_age(self) -> float | None:
        """Seconds since the last staleness round completed (None: none yet)."""
        last = self.last_run.get("staleness")
        return None if last is None else self.monotonic() - last

    def healthy(self) -> tuple[bool, str]:
        age = self.report_age()
        if age is None:
            return False, "no staleness check has completed yet"
        limit = max(10.0, 5 * self.settings.schedule.staleness_seconds)
        if age > limit:
            return False, f"the last staleness check completed {age:.0f}s ago"
        return True, "ok"

    # Scheduling ---------------------------------------------------------------------------
    def start(self) -> None:
        schedule = self.settings.schedule
        scheduler = BackgroundScheduler(
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC" if schedule.full_cron is None else None,
        )
        now = datetime.now(UTC)
        scheduler.add_job(
            self._guard(self.run_staleness, "staleness"),
            IntervalTrigger(seconds=schedule.staleness_seconds),
            id="staleness",
            next_run_time=now,
        )
        scheduler.add_job(
            self._guard(lambda: self.run_divergence("sampled"), "divergence_sampled"),
            IntervalTrigger(seconds=schedule.sampled_seconds),
            id="divergence_sampled",
            next_run_time=now,
        )
        if schedule.full_cron:
            scheduler.add_job(
                self._guard(lambda: self.run_divergence("full"), "divergence_full"),
                CronTrigger.from_crontab(schedule.full_cron),
                id="divergence_full",
            )
        scheduler.start()
        self._scheduler = scheduler
        log.info("consistency checks scheduled", extra={"event": "service_started"})

    def _guard(self, job: Callable[[], object], name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                job()
            except Exception:  # a failing run must not kill the schedule
                log.exception("%s check crashed", name, extra={"event": "check_crashed"})
                self.metrics.errors.labels(name).inc()

        return run

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        if self.sink is not None:
            self.sink.close()


def _json_number(value: float | None) -> float | None:
    if value is None or math.isinf(value):
        return None
    return round(value, 3)


def _region_errors(measured: StalenessRound) -> bool:
    return any(r.errors for r in measured.regions.values())


__all__ = ["ConsistencyService", "DivergenceReport"]
