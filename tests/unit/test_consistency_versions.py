"""Registry and model version skew: the pure core, the report (JSON, text, exit code), the
service's alerts and metrics, all on in-memory twins."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from test_consistency_checker import (
    NOW_NS,
    PROJECT,
    REGISTRY_V1,
    RELEASED,
    S,
    caught_up,
    make_world,
    versions_of,
)
from test_consistency_service import Sink

from consistency.adapters.versions import live_version
from consistency.checker import Checker
from consistency.cli import EXIT_OK, EXIT_UNMEASURED, EXIT_VIOLATED, exit_code, format_report
from consistency.config import ConsistencySettings
from consistency.core.bounds import Measure
from consistency.core.report import Report, Violation
from consistency.core.versions import LiveVersion, LiveVersions, compare, skew
from consistency.measure.versions import VERSIONS_MAX_AGE
from consistency.service import ConsistencyService

# Feast, imported by other unit tests, sets PROMETHEUS_MULTIPROC_DIR for the whole session;
# prometheus_client then warns on removing a label set (the checker's process has no Feast).
pytestmark = pytest.mark.filterwarnings("ignore:Removal of labels:UserWarning")

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
NOW = T0.timestamp() + 3600
REGISTRY_V2 = "0bb1f2e3d4c5b6a7"


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# Core -----------------------------------------------------------------------------------------
def test_the_reference_version_is_no_skew_however_long_ago_it_was_released() -> None:
    result = skew(LiveVersion("b", at(0)), LiveVersion("b", at(-600)), NOW)
    assert result.skew_seconds == 0.0
    assert (result.version, result.reference_version) == ("b", "b")


def test_a_region_left_behind_counts_from_when_the_reference_moved_on() -> None:
    behind = skew(LiveVersion("b", at(20)), LiveVersion("a", at(0)), NOW)
    assert behind.skew_seconds == pytest.approx(40 * 60)
    assert (behind.version, behind.reference_version) == ("a", "b")
    missing = skew(LiveVersion("b", at(20)), None, NOW)
    assert missing.skew_seconds == pytest.approx(40 * 60) and missing.version is None


def test_a_canary_ahead_of_the_reference_starts_at_zero() -> None:
    """A rollout releases to its canary first: that is skew from the canary's release on,
    not since the reference's (possibly week-old) release."""
    canary = skew(LiveVersion("a", at(-7 * 24 * 60)), LiveVersion("b", at(59)), NOW)
    assert canary.skew_seconds == pytest.approx(60)
    only_here = skew(None, LiveVersion("m1", at(50)), NOW)
    assert only_here.skew_seconds == pytest.approx(10 * 60)


def test_skew_is_never_negative_when_the_releasers_clock_is_ahead() -> None:
    assert skew(LiveVersion("b", at(90)), LiveVersion("a", at(0)), NOW).skew_seconds == 0.0


def test_skew_is_unknown_without_the_reference_or_a_release_time() -> None:
    unread = skew(None, LiveVersion("a", at(0)), NOW, known=False)
    assert unread.skew_seconds is None and unread.version == "a"
    assert skew(LiveVersion("b", None), LiveVersion("a", at(0)), NOW).skew_seconds is None


def test_compare_covers_every_model_of_either_side() -> None:
    reference = LiveVersions(
        LiveVersion("r1", at(0)),
        {"fraud": LiveVersion("v7", at(30)), "risk": LiveVersion("v1", at(0))},
    )
    region = LiveVersions(
        LiveVersion("r1", at(0)),
        {"fraud": LiveVersion("v6", at(0)), "canary": LiveVersion("c", at(55))},
    )
    report = compare(reference, region, NOW)
    assert report.registry.skew_seconds == 0.0
    skews = {name: s.skew_seconds for name, s in report.models.items()}
    assert skews == {"canary": pytest.approx(300), "fraud": pytest.approx(1800), "risk": 3600}
    assert [name for name, _ in report.artifacts()] == [
        "registry",
        "model:canary",
        "model:fraud",
        "model:risk",
    ]
    unread = compare(None, region, NOW)
    assert {s.skew_seconds for _, s in unread.artifacts()} == {None}


def test_release_times_are_read_as_written_by_the_releasers() -> None:
    live = live_version({"version": "v7", "released_at": "2026-11-26T21:53:31.252026+00:00"})
    assert live == LiveVersion("v7", datetime(2026, 11, 26, 21, 53, 31, 252026, tzinfo=UTC))
    naive = live_version({"version": "v7", "released_at": "2026-11-26T21:53:31"})
    assert naive.released_at is not None and naive.released_at.tzinfo is UTC
    assert live_version({"version": "v7"}).released_at is None
    with pytest.raises(ValueError):
        live_version({"released_at": "2026-11-26T21:53:31"})


# Report, JSON, text, exit code ----------------------------------------------------------------
def checked(checker: Checker) -> Report:
    return checker.report(checker.measure_staleness())


def world(**settings: Any) -> Any:
    checker, regions, log, clocks = make_world(ConsistencySettings(**settings))
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    return checker, versions_of(checker), clocks


def released(minutes_ago: float) -> datetime:
    return datetime.fromtimestamp(NOW_NS / S - 60 * minutes_ago, UTC)


def test_every_region_reports_its_versions_against_the_reference() -> None:
    checker, _, _ = world()
    report = checked(checker)
    assert report.violations == [] and exit_code(report) == EXIT_OK
    eu = json.loads(json.dumps(report.to_dict()))["regions"]["eu"]["versions"]
    assert eu == {
        "registry": {
            "version": REGISTRY_V1,
            "reference_version": REGISTRY_V1,
            "released_at": RELEASED.isoformat(),
            "reference_released_at": RELEASED.isoformat(),
            "skew_seconds": 0.0,
        },
        "models": {
            "fraud-gbdt": {
                "version": "v7",
                "reference_version": "v7",
                "released_at": RELEASED.isoformat(),
                "reference_released_at": RELEASED.isoformat(),
                "skew_seconds": 0.0,
            }
        },
    }
    text = format_report(report)
    assert f"  registry {REGISTRY_V1} (reference {REGISTRY_V1})  models fraud-gbdt v7" in text


def test_a_region_behind_on_the_registry_longer_than_the_bound_is_violated_and_exits_1() -> None:
    checker, versions, _ = world()
    versions.release_registry("us", REGISTRY_V2, released(20))
    versions.release_registry("ap", REGISTRY_V2, released(19))
    report = checked(checker)
    assert report.violations == [Violation("eu", "registry", Measure.VERSION_SKEW, 1200.0, 900.0)]
    assert report.regions["eu"].status == "violated"
    assert report.regions["ap"].status == "ok" and report.regions["us"].status == "ok"
    assert exit_code(report) == EXIT_VIOLATED
    doc = report.to_dict()
    assert doc["regions"]["eu"]["versions"]["registry"]["skew_seconds"] == 1200.0
    assert doc["regions"]["eu"]["versions"]["registry"]["version"] == REGISTRY_V1
    assert doc["regions"]["eu"]["versions"]["registry"]["reference_version"] == REGISTRY_V2
    assert doc["violations"][0]["measure"] == "version_skew"
    text = format_report(report)
    assert f"registry {REGISTRY_V1} (reference {REGISTRY_V2}, skew 20.0 min)" in text
    assert "eu / registry: version_skew 20.0 min > 15.0 min" in text


def test_a_model_missing_in_a_region_is_model_skew() -> None:
    checker, versions, _ = world(bounds={"max_version_skew_seconds": 60})
    versions.release_model("us", "ranker", "v2", released(5))
    versions.release_model("eu", "ranker", "v2", released(5))
    report = checked(checker)
    assert [(v.region, v.feature_view, v.value) for v in report.violations] == [
        ("ap", "model:ranker", 300.0)
    ]
    ap = report.to_dict()["regions"]["ap"]["versions"]["models"]["ranker"]
    assert (ap["version"], ap["reference_version"], ap["released_at"]) == (None, "v2", None)
    assert "models fraud-gbdt v7, ranker none (reference v2, skew 5.0 min)" in format_report(report)


def test_the_bound_is_per_region_and_null_switches_it_off() -> None:
    checker, versions, _ = world(
        bounds={
            "max_version_skew_seconds": None,
            "regions": {"ap": {"max_version_skew_seconds": 600}},
        }
    )
    versions.release_registry("us", REGISTRY_V2, released(12))
    report = checked(checker)
    assert [(v.region, v.value, v.bound) for v in report.violations] == [("ap", 720.0, 600.0)]
    assert report.regions["eu"].versions is not None
    assert report.regions["eu"].versions.registry.skew_seconds == 720.0
    assert report.regions["eu"].status == "ok"


def test_buckets_are_read_at_most_every_30s_while_skew_keeps_growing() -> None:
    checker, versions, clocks = world()
    versions.release_registry("us", REGISTRY_V2, released(10))
    first = checker.measure_staleness().regions["eu"].versions
    assert versions.reads == 3 and first is not None
    clocks.mono += VERSIONS_MAX_AGE - 1
    clocks.ns += 10 * S
    versions.release_registry("eu", REGISTRY_V2, released(0))  # not read yet
    cached = checker.measure_staleness().regions["eu"].versions
    assert versions.reads == 3 and cached is not None
    assert cached.registry.skew_seconds == first.registry.skew_seconds + 10  # type: ignore[operator]
    clocks.mono += 1
    fresh = checker.measure_staleness().regions["eu"].versions
    assert versions.reads == 6 and fresh is not None
    assert fresh.registry.skew_seconds == 0.0


def test_an_unreadable_bucket_is_an_error_of_its_region_and_exits_3() -> None:
    checker, versions, _ = world()
    versions.down.add("ap")
    report = checked(checker)
    assert report.regions["ap"].versions is None
    assert any("s3 ap" in e for e in report.regions["ap"].errors)
    assert report.regions["eu"].versions is not None
    assert exit_code(report) == EXIT_UNMEASURED


def test_without_the_reference_bucket_skew_is_unknown_but_versions_are_shown() -> None:
    checker, versions, _ = world()
    versions.down.add("us")
    report = checked(checker)
    eu = report.regions["eu"].versions
    assert eu is not None and eu.registry.version == REGISTRY_V1
    assert eu.registry.skew_seconds is None
    assert report.violations == [] and exit_code(report) == EXIT_UNMEASURED
    assert "registry a7c8904e1b2c3d4e (reference none, skew n/a)" in format_report(report)


# serve: hysteresis, alerts, metrics -----------------------------------------------------------
def service_world() -> tuple[ConsistencyService, Any, Any, Sink]:
    checker, versions, clocks = world(
        bounds={"max_staleness_seconds": None},  # the emitter stands still in these tests
        hysteresis={"violate_after": 2, "recover_after": 2, "recover_ratio": 0.8},
    )
    sink = Sink()
    return ConsistencyService(checker, checker.settings, sink=sink), versions, clocks, sink


def rounds(service: ConsistencyService, clocks: Any, n: int, seconds: float = 2.0) -> None:
    for _ in range(n):
        service.run_staleness()
        clocks.mono += seconds
        clocks.ns += int(seconds * S)


def metric(service: ConsistencyService, name: str) -> dict[frozenset[tuple[str, str]], float]:
    text = service.metrics.render().decode()
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def labels(**values: str) -> frozenset[tuple[str, str]]:
    return frozenset(values.items())


def test_serve_alerts_once_on_skew_past_the_bound_and_once_when_the_region_catches_up() -> None:
    service, versions, clocks, sink = service_world()
    versions.release_registry("us", REGISTRY_V2, released(14.5))  # 870 s of skew for eu, ap
    versions.release_registry("ap", REGISTRY_V2, released(14.5))
    rounds(service, clocks, 7, seconds=10)  # 870 .. 930 s, violated from the second above 900
    assert versions.reads == 9  # the buckets were read three times in 70 s
    assert [(a["region"], a["measure"], a["state"]) for a in sink.alerts] == [
        ("eu", "version_skew", "VIOLATED")
    ]
    assert set(sink.alerts[0]["feature_views"]) == {"registry"}
    status = service.status()
    assert status["regions"]["eu"]["status"] == "violated"
    assert [v["feature_view"] for v in status["violations"]] == ["registry"]

    info = metric(service, "consistency_live_version_info")
    assert info[labels(region="eu", kind="registry", name=PROJECT, version=REGISTRY_V1)] == 1
    assert info[labels(region="ap", kind="registry", name=PROJECT, version=REGISTRY_V2)] == 1
    assert info[labels(region="eu", kind="model", name="fraud-gbdt", version="v7")] == 1
    skews = metric(service, "consistency_version_skew_seconds")
    assert skews[labels(region="eu", kind="registry", name=PROJECT)] == 930
    assert skews[labels(region="ap", kind="registry", name=PROJECT)] == 0
    assert skews[labels(region="eu", kind="model", name="fraud-gbdt")] == 0

    versions.release_registry("eu", REGISTRY_V2, released(0))
    rounds(service, clocks, 6, seconds=10)
    assert [(a["region"], a["state"]) for a in sink.alerts] == [
        ("eu", "VIOLATED"),
        ("eu", "RECOVERED"),
    ]
    info = metric(service, "consistency_live_version_info")
    eu = {dict(k)["version"] for k in info if {("region", "eu"), ("kind", "registry")} <= k}
    assert eu == {REGISTRY_V2}  # the old version's series is gone, not left at 1


def test_a_deleted_model_stops_its_alert() -> None:
    service, versions, clocks, sink = service_world()
    versions.release_model("us", "ranker", "v2", released(60))
    rounds(service, clocks, 3)
    assert [(a["region"], a["state"]) for a in sink.alerts] == [
        ("ap", "VIOLATED"),
        ("eu", "VIOLATED"),
    ]
    del versions.models["us"]["ranker"]
    clocks.mono += VERSIONS_MAX_AGE
    rounds(service, clocks, 3)
    assert [(a["region"], a["state"]) for a in sink.alerts][2:] == [
        ("ap", "RECOVERED"),
        ("eu", "RECOVERED"),
    ]
    skews = metric(service, "consistency_version_skew_seconds")
    assert {dict(k)["name"] for k in skews if dict(k)["kind"] == "model"} == {"fraud-gbdt"}
