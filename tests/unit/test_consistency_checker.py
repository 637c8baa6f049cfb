"""The checker on in-memory twins: staleness, lag, divergence, the report, exit codes."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from consistency.adapters.memory import MemoryLog, MemoryManifest, MemoryRegion, MemoryVersions
from consistency.checker import Checker, Scope
from consistency.cli import EXIT_OK, EXIT_UNMEASURED, EXIT_VIOLATED, exit_code, format_report
from consistency.config import ConsistencySettings
from consistency.core.feast_bytes import encode_timestamp
from consistency.ports import ViewLayout
from consistency.repair import plan_batches
from replicator.core import wire
from replicator.core.records import Kind
from replicator.core.staleness import AppliedHeartbeat, Emission, TopicEmission
from replicator.core.version import Version
from replicator.core.wire import partition_for

S = 1_000_000_000
NOW_NS = 1_800_000_000 * S
PROJECT = "proj"
TOPIC = "feast.proj.v"
VIEW = ViewLayout("v", b"\x02\x00pre", (b"\x01\x00\x00\x00", b"\x02\x00\x00\x00"))
REGIONS = ["us", "eu", "ap"]
REGISTRY_V1 = "a7c8904e1b2c3d4e"
RELEASED = datetime.fromtimestamp(NOW_NS / S - 3600, UTC)
"""Every region runs REGISTRY_V1 and fraud-gbdt v7, released an hour before NOW_NS."""


class Clocks:
    def __init__(self) -> None:
        self.ns = NOW_NS
        self.mono = 100.0

    def time_ns(self) -> int:
        return self.ns

    def monotonic(self) -> float:
        return self.mono


def make_world(
    settings: ConsistencySettings | None = None, clock_offset_s: float = 0.0
) -> tuple[Checker, dict[str, MemoryRegion], MemoryLog, Clocks]:
    scope = Scope(
        project=PROJECT,
        topic_prefix="feast",
        partitions=2,
        primary_region="us",
        reference_region="us",
        subscriptions={r: ("*",) for r in REGIONS},
        groups={r: f"replicator-{PROJECT}-{r}" for r in REGIONS},
    )
    regions = {r: MemoryRegion(r) for r in REGIONS}
    regions["us"].emitted[PROJECT] = Emission(
        sequence=100,
        emitted_ns=NOW_NS - 200 * 10**6,
        interval_ns=S,
        topics={TOPIC: TopicEmission(2, NOW_NS - 3600 * S)},
    )
    log = MemoryLog()
    clocks = Clocks()
    checker = Checker(
        scope,
        settings or ConsistencySettings(),
        regions=regions,
        log_admin=log,
        manifest=MemoryManifest({"v": VIEW}),
        partition_of=partition_for,
        versions=same_versions(),
        clock=lambda: clocks.time_ns() + int(clock_offset_s * S),
        monotonic=clocks.monotonic,
    )
    return checker, regions, log, clocks


def same_versions() -> MemoryVersions:
    versions = MemoryVersions()
    for name in REGIONS:
        versions.release_registry(name, REGISTRY_V1, RELEASED)
        versions.release_model(name, "fraud-gbdt", "v7", RELEASED)
    return versions


def versions_of(checker: Checker) -> MemoryVersions:
    assert isinstance(checker.versions, MemoryVersions)
    return checker.versions


def caught_up(regions: dict[str, MemoryRegion], log: MemoryLog, emitted_ns: int) -> None:
    for name, region in regions.items():
        for p in range(2):
            region.heartbeats[(TOPIC, p)] = AppliedHeartbeat(100, emitted_ns)
            log.ends[(TOPIC, p)] = 500
            log.committed_offsets.setdefault(f"replicator-{PROJECT}-{name}", {})[(TOPIC, p)] = 500


def key(i: int) -> bytes:
    return VIEW.key_prefix + b"%05d" % i + PROJECT.encode()


def fill(regions: dict[str, MemoryRegion], n: int, names: list[str] | None = None) -> None:
    for i in range(n):
        k = key(i)
        values = [encode_timestamp(1_790_000_000 + i), b"a%d" % i, b"b%d" % i]
        for name in names or REGIONS:
            regions[name].put(
                VIEW, k, values, Version(1_790_000_000 + i, 0, 0, 0, 10 + i, 1), partition_for(k, 2)
            )


# Staleness ----------------------------------------------------------------------------------
def test_staleness_per_partition_view_and_region() -> None:
    checker, regions, log, _ = make_world()
    emitted = regions["us"].emitted[PROJECT].emitted_ns
    caught_up(regions, log, emitted)
    regions["eu"].heartbeats[(TOPIC, 1)] = AppliedHeartbeat(93, emitted - 7 * S)
    round_ = checker.measure_staleness()
    eu = round_.regions["eu"]
    assert eu.feature_views["v"].partitions[0].staleness_seconds == 0.0
    assert eu.feature_views["v"].partitions[1].staleness_seconds == 7.0
    assert eu.feature_views["v"].staleness_seconds == 7.0
    assert eu.staleness_seconds == 7.0
    assert round_.regions["ap"].staleness_seconds == 0.0
    assert round_.heartbeat.emitter_up and round_.heartbeat.sequence == 100


@pytest.mark.parametrize("offset_s", [-3600.0, -1.5, 0.0, 2.0, 86400.0])
def test_the_checkers_clock_does_not_enter_staleness(offset_s: float) -> None:
    checker, regions, log, _ = make_world(clock_offset_s=offset_s)
    emitted = regions["us"].emitted[PROJECT].emitted_ns
    caught_up(regions, log, emitted)
    regions["ap"].heartbeats[(TOPIC, 0)] = AppliedHeartbeat(96, emitted - 4 * S)
    round_ = checker.measure_staleness()
    assert {r: rep.staleness_seconds for r, rep in round_.regions.items()} == {
        "us": 0.0,
        "eu": 0.0,
        "ap": 4.0,
    }


def test_a_stalled_emitter_does_not_let_staleness_shrink_to_zero() -> None:
    checker, regions, log, clocks = make_world()
    emission = regions["us"].emitted[PROJECT]
    caught_up(regions, log, emission.emitted_ns)
    assert checker.measure_staleness().regions["eu"].staleness_seconds == 0.0
    clocks.mono += 5.0  # the record has not moved for 5 intervals of 1 s
    stalled = checker.measure_staleness()
    assert stalled.heartbeat.stalled_seconds == 5.0
    assert {r.staleness_seconds for r in stalled.regions.values()} == {5.0}
    regions["us"].emitted[PROJECT] = Emission(101, emission.emitted_ns + S, S, emission.topics)
    assert checker.measure_staleness().regions["eu"].staleness_seconds == 1.0


def test_a_region_behind_grows_stale_with_the_clock_not_in_steps_of_rounds() -> None:
    checker, regions, log, clocks = make_world()
    emission = regions["us"].emitted[PROJECT]
    caught_up(regions, log, emission.emitted_ns)
    for p in range(2):  # eu's worker stopped 2 rounds ago
        regions["eu"].heartbeats[(TOPIC, p)] = AppliedHeartbeat(98, emission.emitted_ns - 2 * S)
    first = checker.measure_staleness()
    assert first.regions["eu"].staleness_seconds == 2.0
    clocks.mono += 0.8  # no newer round yet: it is not late, and eu lags on
    later = checker.measure_staleness().regions
    assert later["eu"].staleness_seconds == pytest.approx(2.8)
    assert later["us"].staleness_seconds == 0.0  # caught up: as fresh as the emitter vouches


def test_without_the_emitter_staleness_is_unmeasurable_and_check_exits_3() -> None:
    checker, regions, log, _ = make_world(
        ConsistencySettings(bounds={"max_staleness_seconds": None})
    )
    caught_up(regions, log, NOW_NS)
    regions["us"].emitted.clear()
    report = checker.report(checker.measure_staleness())
    assert math.isinf(report.regions["eu"].staleness_seconds or 0)
    assert any("replicator heartbeats" in e for e in report.errors)
    assert exit_code(report) == EXIT_UNMEASURED
    assert "heartbeat emitter NOT RUNNING" in format_report(report)


def test_an_unreachable_region_is_reported_and_violates_its_staleness_bound() -> None:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    regions["ap"].down = True
    report = checker.report(checker.measure_staleness())
    assert report.regions["ap"].errors and "connection refused" in report.regions["ap"].errors[0]
    assert report.regions["ap"].status == "violated"
    assert report.regions["eu"].status == "ok"
    assert report.to_dict()["regions"]["ap"]["staleness_seconds"] == "unmeasurable"
    assert exit_code(report) == EXIT_UNMEASURED


def test_check_exits_1_and_the_json_has_the_documented_shape_when_a_bound_is_violated() -> None:
    checker, regions, log, _ = make_world()
    emitted = regions["us"].emitted[PROJECT].emitted_ns
    caught_up(regions, log, emitted)
    regions["eu"].heartbeats[(TOPIC, 0)] = AppliedHeartbeat(80, emitted - 20 * S)
    fill(regions, 50)
    findings = checker.measure_divergence("sampled")
    report = checker.report(checker.measure_staleness(), findings)
    assert exit_code(report) == EXIT_VIOLATED
    doc = json.loads(json.dumps(report.to_dict()))
    eu = doc["regions"]["eu"]
    assert eu["status"] == "violated" and eu["staleness_seconds"] == 20.0
    view = eu["feature_views"]["v"]
    for field in (
        "staleness_seconds",
        "freshness_seconds",
        "divergence_ratio",
        "missing",
        "conflicting",
    ):
        assert field in view
    assert doc["regions"]["ap"]["status"] == "ok"
    assert doc["violations"] == [
        {"region": "eu", "feature_view": "v", "measure": "staleness", "value": 20.0, "bound": 5.0}
    ]


def test_all_bounds_hold_exit_0() -> None:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    fill(regions, 20)
    report = checker.report(checker.measure_staleness(), checker.measure_divergence("full"))
    assert report.violations == []
    assert exit_code(report) == EXIT_OK
    assert "every bound holds" in format_report(report)


# Lag, catch-up, retention -------------------------------------------------------------------
def test_consumer_lag_in_offsets_and_primary_clock_seconds_and_catch_up() -> None:
    checker, regions, log, clocks = make_world()
    emitted = regions["us"].emitted[PROJECT].emitted_ns
    caught_up(regions, log, emitted)
    group = f"replicator-{PROJECT}-ap"
    log.committed_offsets[group][(TOPIC, 0)] = 400  # 100 records behind
    log.times_ms[(TOPIC, 0)] = {400: emitted // 10**6 - 30_000}
    log.retention[TOPIC] = 3600_000
    first = checker.measure_staleness().regions["ap"]
    assert first.lag_offsets == 100
    assert first.feature_views["v"].lag_seconds == pytest.approx(30.0)
    assert first.catchup_seconds is None  # no rate yet
    clocks.mono += 10
    log.committed_offsets[group][(TOPIC, 0)] = 450  # 5 records/s
    log.times_ms[(TOPIC, 0)][450] = emitted // 10**6 - 20_000
    second = checker.measure_staleness().regions["ap"]
    assert second.lag_offsets == 50
    assert second.catchup_seconds == pytest.approx(10.0)
    assert second.retention_seconds == 3600
    assert second.retention_headroom_seconds == pytest.approx(3600 - 20 - 10)


def test_a_stalled_consumer_never_catches_up() -> None:
    checker, regions, log, clocks = make_world()
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    log.committed_offsets[f"replicator-{PROJECT}-eu"][(TOPIC, 1)] = 490
    checker.measure_staleness()
    clocks.mono += 5
    assert checker.measure_staleness().regions["eu"].catchup_seconds == math.inf


# Divergence ---------------------------------------------------------------------------------
def damage(regions: dict[str, MemoryRegion], log: MemoryLog) -> None:
    eu = regions["eu"]
    eu.hashes[key(1)][VIEW.fields[0]] = b"corrupted"  # same version, other bytes
    del eu.hashes[key(2)]  # missing
    eu.put(VIEW, key(999), [encode_timestamp(5), b"x", b"y"], None, 0)  # extra
    # key 3: the reference has a newer version the region already consumed (lost update)
    regions["us"].put(
        VIEW,
        key(3),
        [encode_timestamp(1_790_000_100), b"n", b"n"],
        Version(1_790_000_100, 0, 0, 0, 20, 1),
        partition_for(key(3), 2),
    )
    # key 4: newer at the reference, written at offset 900: not consumed by eu yet
    regions["us"].put(
        VIEW,
        key(4),
        [encode_timestamp(1_790_000_200), b"m", b"m"],
        Version(1_790_000_200, 0, 0, 0, 900, 1),
        partition_for(key(4), 2),
    )


def test_full_check_classifies_every_kind_of_difference() -> None:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    fill(regions, 200)
    damage(regions, log)
    findings = checker.measure_divergence("full")
    eu = findings[("eu", "v")].report
    assert (eu.missing, eu.extra, eu.conflicting, eu.behind, eu.in_flight) == (1, 1, 1, 1, 1)
    assert eu.ratio == pytest.approx(4 / 200)
    assert eu.reference_keys == 200
    assert 0 < eu.mismatched_buckets <= 5
    ap = findings[("ap", "v")].report
    assert (ap.behind, ap.in_flight, ap.diverged) == (1, 1, 1)  # keys 3 and 4 only
    assert findings[("eu", "v")].keys[key(1)].value == "conflicting"


def test_rows_still_queued_are_in_flight_even_past_the_staleness_bound() -> None:
    # A region that only lags (its worker has not consumed the newer rows) is not losing
    # updates: "behind" would invite a repair; the staleness bound reports the lag.
    checker, regions, log, _ = make_world()
    emitted = regions["us"].emitted[PROJECT].emitted_ns
    caught_up(regions, log, emitted)
    fill(regions, 50)
    damage(regions, log)
    for p in range(2):
        regions["eu"].heartbeats[(TOPIC, p)] = AppliedHeartbeat(1, emitted - 600 * S)
    report = checker.report(checker.measure_staleness())
    assert report.regions["eu"].status == "violated"  # staleness 600 s > 5 s
    eu = checker.measure_divergence("full")[("eu", "v")].report
    assert (eu.in_flight, eu.behind) == (1, 1)  # key 4 queued at offset 900; key 3 lost


def test_kafka_down_counts_every_difference() -> None:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    fill(regions, 50)
    damage(regions, log)
    log.down = True
    eu = checker.measure_divergence("full")[("eu", "v")].report
    assert eu.in_flight == 0 and eu.diverged == 5


def test_sampled_ratio_comes_with_an_interval_that_holds_the_true_ratio() -> None:
    settings = ConsistencySettings(sample={"size": 300, "confidence": 0.99, "seed": 7})
    checker, regions, log, _ = make_world(settings)
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    fill(regions, 2000)
    for i in range(0, 2000, 10):  # 10 % damaged
        regions["eu"].hashes[key(i)][VIEW.fields[1]] = b"bad"
    report = checker.measure_divergence("sampled")[("eu", "v")].report
    assert report.keys_checked == 300
    assert report.ratio_low is not None and report.ratio_high is not None
    assert report.ratio_low <= 0.10 <= report.ratio_high
    assert report.ratio_high - report.ratio_low < 0.1
    assert report.evaluated_ratio == report.ratio_low


def test_freshness_is_the_newest_event_seen_against_the_checkers_clock() -> None:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    fill(regions, 10)  # newest event: 1_790_000_009
    checker.measure_divergence("full")
    round_ = checker.measure_staleness()
    expected = NOW_NS / S - 1_790_000_009
    assert round_.regions["eu"].feature_views["v"].freshness_seconds == pytest.approx(expected)
    assert round_.regions["us"].feature_views["v"].freshness_seconds == pytest.approx(expected)


# Repair planning ----------------------------------------------------------------------------
def test_repair_batches_name_each_rows_original_index_and_offset() -> None:
    from consistency.ports import RawRow

    ts = encode_timestamp(1_790_000_000)
    rows = [
        RawRow(key(1), (ts, b"a", b"b"), Version(1_790_000_000, 0, 0, 0, 77, 3)),
        RawRow(key(4), (ts, b"f", b"g"), Version(1_790_000_000, 0, 0, 0, 77, 9)),
        RawRow(key(2), (ts, b"c", None), Version(1_790_000_000, 0, 0, 0, 77, 1)),
        RawRow(key(3), (None, b"d", b"e"), Version(1, 0, 0, 0, 5, 1)),
    ]
    batches, unrepairable = plan_batches(VIEW, rows, 1, lambda k, n: 0)
    assert unrepairable == [key(3)]
    by_fields = {}
    for batch in batches:
        assert (batch.offset, batch.partition, batch.feature_view) == (77, 0, "v")
        header = wire.RecordHeader(Kind.ROWS, "v", "", "", 0, 0, 0)
        decoded = wire.decode_rows(header, batch.payload)
        by_fields[decoded.fields] = (decoded, batch.row_indexes)
    full, indexes = by_fields[VIEW.fields]
    assert [r.key for r in full.rows] == [key(1), key(4)]  # no padding copies
    assert indexes == (3, 9)
    assert [r.values for r in full.rows] == [(b"a", b"b"), (b"f", b"g")]
    partial, indexes = by_fields[VIEW.fields[:1]]
    assert [r.key for r in partial.rows] == [key(2)]
    assert indexes == (1,)
