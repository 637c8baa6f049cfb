"""The checker never goes blind (issue 10, failures 3, 4 and 6), on the in-memory twins:
one hung region does not freeze the others, Kafka down is "could not measure", and what
was not measured reads as unknown, never as OK."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_consistency_checker import caught_up, fill, make_world

from consistency.adapters.memory import MemoryLog, MemoryRegion
from consistency.cli import EXIT_UNMEASURED, exit_code
from consistency.config import ConsistencySettings
from consistency.service import ConsistencyService
from consistency.status_page import render
from replicator.core.staleness import AppliedHeartbeat

FAST = {"schedule": {"read_timeout_seconds": 0.2}}


class HungRegion(MemoryRegion):
    """A region whose Redis accepts the connection and never answers (a cut without RST)."""

    released = threading.Event()

    def applied_heartbeats(self, positions: Sequence[Any]) -> dict[Any, AppliedHeartbeat]:
        self.released.wait(30)
        return super().applied_heartbeats(positions)


class HungLog(MemoryLog):
    """A Kafka whose brokers accept connections and never answer (SIGSTOPped, or cut)."""

    released = threading.Event()

    def end_offsets(self, positions: Sequence[Any]) -> dict[Any, int]:
        self.released.wait(30)
        return super().end_offsets(positions)


@pytest.fixture
def hung() -> Iterator[None]:
    HungRegion.released.clear()
    HungLog.released.clear()
    yield
    HungRegion.released.set()
    HungLog.released.set()


def test_one_unreachable_region_does_not_freeze_the_others(hung: None) -> None:
    checker, regions, log, _ = make_world(ConsistencySettings(**FAST))
    caught_up(regions, log, regions["us"].emitted["proj"].emitted_ns)
    stuck = HungRegion("ap", heartbeats=dict(regions["ap"].heartbeats))
    checker.regions["ap"] = stuck
    first = checker.report(checker.measure_staleness())
    assert first.regions["eu"].staleness_seconds == 0.0 and first.regions["eu"].status == "ok"
    ap = first.regions["ap"]
    assert ap.status == "violated" and "no answer within 0.2 s" in ap.errors[0]
    assert first.to_dict()["regions"]["ap"]["staleness_seconds"] == "unmeasurable"
    second = checker.report(checker.measure_staleness())  # the earlier read still hangs
    assert "still no answer" in second.regions["ap"].errors[0]
    assert second.regions["us"].status == "ok"
    HungRegion.released.set()


def test_a_kafka_that_does_not_answer_leaves_staleness_measured_on_time(hung: None) -> None:
    """Kafka's calls wait out their timeouts (10 s) when no broker answers; the round does
    not: staleness comes from Redis, and a stalled emitter must show within its bound."""
    checker, regions, log, clocks = make_world(ConsistencySettings(**FAST))
    caught_up(regions, log, regions["us"].emitted["proj"].emitted_ns)
    hung_log = HungLog(ends=log.ends, committed_offsets=log.committed_offsets)
    checker._log.log = hung_log
    first = checker.report(checker.measure_staleness())
    assert first.regions["eu"].staleness_seconds == 0.0
    assert first.regions["eu"].errors == ["kafka: no answer within 0.2 s"]
    assert first.regions["eu"].lag_offsets is None  # unknown, not 0
    assert first.regions["eu"].status == "unknown"
    clocks.mono += 20  # the emitter cannot publish either: its record stops moving
    second = checker.report(checker.measure_staleness())
    assert second.regions["eu"].errors == ["kafka: still no answer to an earlier round's reads"]
    assert second.regions["eu"].staleness_seconds == pytest.approx(20.0)
    HungLog.released.set()
    checker._pending_log.result(timeout=10)  # type: ignore[union-attr]
    third = checker.report(checker.measure_staleness())
    assert third.regions["eu"].errors == [] and third.regions["eu"].lag_offsets == 0


def test_kafka_down_is_unknown_never_ok_and_check_exits_3() -> None:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted["proj"].emitted_ns)
    log.down = True
    report = checker.report(checker.measure_staleness())
    assert {r.status for r in report.regions.values()} == {"unknown"}
    assert exit_code(report) == EXIT_UNMEASURED
    errors = report.regions["eu"].errors
    assert errors == ["kafka: all brokers down"]  # reported once, not once per Kafka call


def test_a_stack_without_views_or_emitter_is_unknown_everywhere() -> None:
    checker, regions, _, _ = make_world(ConsistencySettings(bounds={"max_staleness_seconds": 5}))
    regions["us"].emitted.clear()
    checker._views.manifest = type(checker._views.manifest)({})  # no feature views yet
    report = checker.report(checker.measure_staleness())
    assert {r.status for r in report.regions.values()} == {"unknown"}
    assert report.violations == []


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def service(**settings: Any) -> tuple[ConsistencyService, Any, Any, Clock]:
    checker, regions, log, _ = make_world(ConsistencySettings(**settings))
    caught_up(regions, log, regions["us"].emitted["proj"].emitted_ns)
    fill(regions, 20)
    clock = Clock()
    return ConsistencyService(checker, checker.settings, monotonic=clock), regions, log, clock


def test_status_api_and_metrics_say_unknown_while_kafka_is_down() -> None:
    svc, _, log, _ = service()
    svc.run_staleness()
    assert {r["status"] for r in svc.status()["regions"].values()} == {"ok"}
    log.down = True
    svc.run_staleness()
    assert {r["status"] for r in svc.status()["regions"].values()} == {"unknown"}
    measured = {
        s.labels["region"]: s.value
        for f in text_string_to_metric_families(svc.metrics.render().decode())
        if f.name == "consistency_region_measured"
        for s in f.samples
    }
    assert measured == {"us": 0.0, "eu": 0.0, "ap": 0.0}
    log.down = False  # the broker is back: the next round measures again
    svc.run_staleness()
    assert {r["status"] for r in svc.status()["regions"].values()} == {"ok"}


def test_a_stale_report_shows_its_age_and_is_not_ok() -> None:
    svc, _, _, clock = service()
    svc.run_staleness()
    fresh = svc.status()
    assert fresh["stale"] is False and fresh["age_seconds"] == 0.0
    clock.now += 60  # the staleness job has not completed for a minute
    stale = svc.status()
    assert stale["stale"] is True and stale["age_seconds"] == 60.0
    assert {r["status"] for r in stale["regions"].values()} == {"unknown"}
    page = render(stale, [])
    assert '"stale": true' in page and "NOT ALL MEASURED" in page
