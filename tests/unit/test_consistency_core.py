"""The checker's pure core: statistics, digests, classification, staleness, hysteresis."""

from __future__ import annotations

import math
import random

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from consistency.core.backoff import Backoff
from consistency.core.bounds import AlertBook, Hysteresis, Measure, State, Tracker, violates
from consistency.core.classify import Entry, KeyClass, Position, classify
from consistency.core.digest import (
    BucketDigests,
    bucket_of,
    diff_entries,
    digest_entries,
    entry_hash,
    mismatched_buckets,
)
from consistency.core.feast_bytes import (
    decode_timestamp,
    encode_timestamp,
    glob_escape,
    view_key_pattern,
)
from consistency.core.lag import Progress
from consistency.core.stats import wilson_interval
from replicator.core.staleness import (
    AppliedHeartbeat,
    Emission,
    TopicEmission,
    partition_staleness,
)
from replicator.core.topics import view_of_topic
from replicator.core.version import Version

S = 1_000_000_000


# Wilson interval ----------------------------------------------------------------------------
def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson_interval(10, 100, 0.95)
    assert low == pytest.approx(0.0552, abs=1e-4)
    assert high == pytest.approx(0.1744, abs=1e-4)


def test_wilson_interval_is_honest_at_zero_and_full() -> None:
    low, high = wilson_interval(0, 1000, 0.95)
    assert low == 0.0
    assert 0.003 < high < 0.004  # "0 of 1,000" still allows up to ~0.38 %
    assert wilson_interval(50, 50, 0.95)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_covers_the_true_ratio_at_its_confidence() -> None:
    rng = random.Random(3)
    true_ratio, n, runs = 0.07, 400, 2000
    covered = 0
    for _ in range(runs):
        hits = sum(rng.random() < true_ratio for _ in range(n))
        low, high = wilson_interval(hits, n, 0.95)
        covered += low <= true_ratio <= high
    assert 0.93 <= covered / runs <= 0.97


def test_wilson_interval_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError):
        wilson_interval(5, 3)
    with pytest.raises(ValueError):
        wilson_interval(1, 3, confidence=1.0)


# Backoff ------------------------------------------------------------------------------------
def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(initial_seconds=0.5, factor=2, max_seconds=3, jitter=0)
    assert list(backoff.delays(5)) == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_jitter_stays_within_its_band() -> None:
    backoff = Backoff(initial_seconds=1, factor=2, max_seconds=100, jitter=0.2)
    assert backoff.delay(3, rand=lambda: 0.0) == pytest.approx(3.2)
    assert backoff.delay(3, rand=lambda: 1.0) == pytest.approx(4.8)


# Feast bytes --------------------------------------------------------------------------------
@pytest.mark.parametrize("seconds,nanos", [(0, 0), (1_790_000_000, 0), (5, 123_456_789), (-3, 7)])
def test_timestamps_decode_like_protobuf(seconds: int, nanos: int) -> None:
    ts = Timestamp(seconds=seconds, nanos=nanos)
    assert decode_timestamp(ts.SerializeToString()) == (seconds, nanos)
    assert encode_timestamp(seconds, nanos) == ts.SerializeToString()


def test_garbage_is_not_a_timestamp() -> None:
    assert decode_timestamp(b"\x1a\x00") is None
    assert decode_timestamp(b"\x08\xff") is None
    assert decode_timestamp(None) is None


def test_scan_patterns_escape_glob_characters_in_binary_prefixes() -> None:
    assert glob_escape(b"a*b?c[d]e\\") == b"a\\*b\\?c\\[d\\]e\\\\"
    assert view_key_pattern(b"\x02*", "proj") == b"\x02\\**proj"


# Digests ------------------------------------------------------------------------------------
def _entries(n: int) -> list[tuple[bytes, list[bytes | None]]]:
    return [(b"key%d" % i, [b"ts%d" % i, b"v%d" % i, None if i % 3 else b"w"]) for i in range(n)]


def test_bucket_digests_do_not_depend_on_scan_order() -> None:
    entries = _entries(500)
    shuffled = entries[:]
    random.Random(1).shuffle(shuffled)
    a, b = digest_entries(entries, 2), digest_entries(shuffled, 2)
    assert mismatched_buckets(a, b) == []
    assert a.entries == 500


def test_partial_digests_add_up_to_the_whole() -> None:
    entries = _entries(300)
    whole = digest_entries(entries, 2)
    merged = BucketDigests.empty(2)
    for chunk in (entries[:100], entries[100:]):
        part = digest_entries(chunk, 2)
        for bucket, lanes in part.buckets.items():
            merged.add_partial(bucket, lanes)
    assert merged.buckets == whole.buckets


def test_one_changed_byte_is_found_in_exactly_its_bucket() -> None:
    entries = _entries(2000)
    damaged = [(k, list(v)) for k, v in entries]
    damaged[1234][1][1] = b"v1234!"
    buckets = mismatched_buckets(digest_entries(entries, 3), digest_entries(damaged, 3))
    assert buckets == [bucket_of(b"key1234", 3)]


def test_a_missing_key_and_an_extra_key_both_show() -> None:
    entries = _entries(100)
    fewer = entries[1:]
    more = [*entries, (b"intruder", [b"ts", b"x", None])]
    base = digest_entries(entries, 2)
    assert mismatched_buckets(base, digest_entries(fewer, 2)) == [bucket_of(b"key0", 2)]
    assert mismatched_buckets(base, digest_entries(more, 2)) == [bucket_of(b"intruder", 2)]


def test_an_entry_hash_tells_a_missing_field_from_an_empty_one() -> None:
    assert entry_hash(b"k", [b"ts", None]) != entry_hash(b"k", [b"ts", b""])
    assert entry_hash(b"k", [b"ab", b"c"]) != entry_hash(b"k", [b"a", b"bc"])


def test_entries_without_any_field_of_the_view_are_not_in_it() -> None:
    assert digest_entries([(b"k", [None, None])], 2).entries == 0


def test_diff_entries_names_each_side() -> None:
    found = list(diff_entries({b"a": "1", b"b": "2"}, {b"b": "3", b"c": "4"}))
    assert found == [(b"a", "1", None), (b"b", "2", "3"), (b"c", None, "4")]


# Classification ---------------------------------------------------------------------------
V = Version(100, 0, 100, 0, 50, 1)  # reference version: written at offset 50
OLDER = Version(90, 0, 90, 0, 40, 1)
NEWER = Version(110, 0, 110, 0, 60, 1)
CAUGHT_UP = Position(committed=70)
QUEUED = Position(committed=45)
UNKNOWN = Position(committed=None, known=False)


@pytest.mark.parametrize(
    "ref,region,ref_pos,region_pos,expected",
    [
        (Entry("a", V), Entry("a", V), CAUGHT_UP, CAUGHT_UP, None),
        (Entry(None), Entry(None), CAUGHT_UP, CAUGHT_UP, None),
        (Entry("a", V), Entry(None), CAUGHT_UP, CAUGHT_UP, KeyClass.MISSING),
        (Entry("a", V), Entry(None), CAUGHT_UP, QUEUED, KeyClass.IN_FLIGHT),
        (Entry("a", V), Entry(None), CAUGHT_UP, UNKNOWN, KeyClass.MISSING),
        (Entry("a", V), Entry("b", OLDER), CAUGHT_UP, UNKNOWN, KeyClass.BEHIND),
        (Entry(None), Entry("b", V), CAUGHT_UP, CAUGHT_UP, KeyClass.EXTRA),
        (Entry(None), Entry("b", V), QUEUED, CAUGHT_UP, KeyClass.IN_FLIGHT),
        (Entry("a", V), Entry("b", V), CAUGHT_UP, CAUGHT_UP, KeyClass.CONFLICTING),
        (Entry("a", V), Entry("b", V), CAUGHT_UP, QUEUED, KeyClass.CONFLICTING),
        (Entry("a", V), Entry("b", OLDER), CAUGHT_UP, QUEUED, KeyClass.IN_FLIGHT),
        (Entry("a", V), Entry("b", OLDER), CAUGHT_UP, CAUGHT_UP, KeyClass.BEHIND),
        (Entry("a", V), Entry("b", NEWER), CAUGHT_UP, CAUGHT_UP, KeyClass.CONFLICTING),
        (Entry("a", OLDER), Entry("b", V), QUEUED, CAUGHT_UP, KeyClass.IN_FLIGHT),
        (
            Entry("a", None, (100, 0)),
            Entry("b", None, (100, 0)),
            CAUGHT_UP,
            CAUGHT_UP,
            KeyClass.CONFLICTING,
        ),
        (Entry("a", V), Entry("b", None, (120, 0)), CAUGHT_UP, CAUGHT_UP, KeyClass.CONFLICTING),
    ],
)
def test_classification(
    ref: Entry, region: Entry, ref_pos: Position, region_pos: Position, expected: KeyClass | None
) -> None:
    assert classify(ref, region, ref_pos, region_pos) is expected


def test_a_group_that_never_committed_has_everything_in_flight() -> None:
    never = Position(committed=None)
    assert classify(Entry("a", V), Entry(None), CAUGHT_UP, never) is KeyClass.IN_FLIGHT


def test_only_in_flight_is_not_divergence() -> None:
    assert [c for c in KeyClass if not c.counts_as_divergence] == [KeyClass.IN_FLIGHT]


# Staleness ----------------------------------------------------------------------------------
EMISSION = Emission(
    sequence=50,
    emitted_ns=1_000 * S,
    interval_ns=S,
    topics={"feast.p.v": TopicEmission(partitions=3, first_emitted_ns=900 * S)},
)


def test_staleness_is_the_distance_between_two_primary_clock_readings() -> None:
    assert partition_staleness(EMISSION, "feast.p.v", AppliedHeartbeat(50, 1_000 * S)) == 0.0
    assert partition_staleness(EMISSION, "feast.p.v", AppliedHeartbeat(43, 993 * S)) == 7.0


def test_a_partition_without_heartbeats_is_as_stale_as_the_topics_first_heartbeat() -> None:
    assert partition_staleness(EMISSION, "feast.p.v", None) == 100.0
    assert partition_staleness(EMISSION, "feast.p.unknown", None) == 0.0


def test_a_primary_clock_stepping_back_never_gives_negative_staleness() -> None:
    assert partition_staleness(EMISSION, "feast.p.v", AppliedHeartbeat(51, 1_005 * S)) == 0.0


def test_topic_names_map_back_to_views_of_this_project_only() -> None:
    assert view_of_topic("feast.p.card_stats", "feast", "p") == "card_stats"
    assert view_of_topic("feast.other.card_stats", "feast", "p") is None
    assert view_of_topic("feast.p.", "feast", "p") is None


# Bounds and hysteresis --------------------------------------------------------------------
def test_one_shot_evaluation() -> None:
    assert violates(6.0, 5.0)
    assert not violates(5.0, 5.0)
    assert not violates(6.0, None)
    assert not violates(None, 5.0)
    assert violates(float("inf"), 5.0)


def test_a_flapping_metric_raises_one_alert_not_fifty() -> None:
    tracker = Tracker(Hysteresis(violate_after=1, recover_after=3, recover_ratio=0.8))
    changes = [tracker.observe(v, 10.0) for v in [11, 9, 11, 9.5, 12, 9, 10.5] * 7]
    assert [c for c in changes if c is not None] == [State.VIOLATED]
    for _ in range(3):
        change = tracker.observe(7.0, 10.0)
    assert change is State.RECOVERED


def test_violation_needs_consecutive_evaluations_above_the_bound() -> None:
    tracker = Tracker(Hysteresis(violate_after=2))
    assert tracker.observe(11, 10) is None
    assert tracker.observe(9, 10) is None  # the count restarts
    assert tracker.observe(11, 10) is None
    assert tracker.observe(11, 10) is State.VIOLATED


def test_unmeasured_rounds_change_nothing_and_unmeasurable_counts_as_above() -> None:
    tracker = Tracker(Hysteresis(violate_after=2))
    assert tracker.observe(None, 10) is None
    assert tracker.observe(float("inf"), 10) is None
    assert tracker.observe(float("inf"), 10) is State.VIOLATED


def test_switching_a_bound_off_recovers() -> None:
    tracker = Tracker(Hysteresis(violate_after=1))
    tracker.observe(20, 10)
    assert tracker.observe(20, None) is State.RECOVERED


def test_alerts_are_per_region_and_measure_not_per_view() -> None:
    book = AlertBook(Hysteresis(violate_after=1, recover_after=1))
    views = ["a", "b", "c"]
    first = book.observe(
        Measure.STALENESS, [("eu", v, 30.0, 5.0) for v in views[:1]] + [("us", "a", 0.0, 5.0)]
    )
    later = book.observe(Measure.STALENESS, [("eu", v, 40.0, 5.0) for v in views])
    assert [(a.region, a.state) for a in first] == [("eu", State.VIOLATED)]
    assert later == []  # more views of the same region: still the same incident
    partly = book.observe(Measure.STALENESS, [("eu", "a", 0.0, 5.0), ("eu", "b", 40.0, 5.0)])
    assert partly == []
    done = book.observe(Measure.STALENESS, [("eu", v, 0.0, 5.0) for v in views])
    assert [(a.region, a.state) for a in done] == [("eu", State.RECOVERED)]
    assert book.state_of("eu", "b", Measure.STALENESS) is State.RECOVERED


def test_measures_alert_independently() -> None:
    book = AlertBook(Hysteresis(violate_after=1))
    a = book.observe(Measure.STALENESS, [("eu", "v", 30.0, 5.0)])
    b = book.observe(Measure.DIVERGENCE, [("eu", "v", 0.5, 0.01)])
    assert [x.measure for x in a + b] == [Measure.STALENESS, Measure.DIVERGENCE]
    assert b[0].to_dict()["state"] == "VIOLATED"
    assert b[0].to_dict()["feature_views"] == {"v": {"value": 0.5, "bound": 0.01}}


# Lag and evaluation (pure) -----------------------------------------------------------------
def test_catch_up_needs_two_readings_and_is_infinite_when_consumption_stops() -> None:
    from consistency.core.lag import catch_up

    first, seconds = catch_up(None, 1000, now=10.0, lag=50)
    assert seconds is None
    second, seconds = catch_up(first, 1050, now=20.0, lag=50)
    assert second.rate == 5.0 and seconds == 10.0
    _, seconds = catch_up(Progress(20.0, 1050, None), 1050, now=30.0, lag=50)
    assert seconds == math.inf
    _, seconds = catch_up(second, 1100, now=30.0, lag=0)
    assert seconds == 0.0


def test_retention_headroom_is_the_shortest_retention_minus_how_far_behind() -> None:
    from consistency.core.lag import retention_headroom

    assert retention_headroom([None, None], 5.0, 1.0) is None
    assert retention_headroom([3_600_000, None, 7_200_000], 20.0, 10.0) == (3600.0, 3570.0)


def test_one_shot_violations_per_view_then_version_skew() -> None:
    from consistency.config import Bounds
    from consistency.core.evaluate import one_shot_violations
    from consistency.core.report import RegionReport, ViewReport

    eu = RegionReport(feature_views={"v": ViewReport(staleness_seconds=6.0)})
    ok = RegionReport(feature_views={"v": ViewReport(staleness_seconds=1.0)})
    found = one_shot_violations({"eu": eu, "us": ok}, Bounds(max_staleness_seconds=5))
    assert [(v.region, v.feature_view, v.measure.value, v.value) for v in found] == [
        ("eu", "v", "staleness", 6.0)
    ]
