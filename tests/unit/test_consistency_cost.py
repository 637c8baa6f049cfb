"""Cross-region egress: prices per region pair, the monthly estimate, what the levers save."""

from __future__ import annotations

import pytest
from test_consistency_checker import NOW_NS, PROJECT, TOPIC, S, caught_up, make_world

from consistency.cli import format_report
from consistency.config import ConsistencySettings, EgressSettings
from consistency.core.cost import GB, MONTH_SECONDS, add_subscription_savings, region_egress
from consistency.core.units import usd
from replicator.core.egress import OVERHEAD, EgressCounts, TopicBytes

HOUR = 3600 * S


def view_of(topic: str) -> str | None:
    prefix = f"feast.{PROJECT}."
    return topic.removeprefix(prefix) if topic.startswith(prefix) else None


def counts(since_ns: int, **views: TopicBytes) -> EgressCounts:
    return EgressCounts("g", since_ns, {f"feast.{PROJECT}.{v}": b for v, b in views.items()})


def test_one_gb_an_hour_costs_730_gb_a_month_at_the_pairs_price() -> None:
    report = region_egress(
        counts(NOW_NS - HOUR, v=TopicBytes(10, 4 * GB, GB)),
        NOW_NS,
        source_region="us",
        usd_per_gb=0.02,
        view_of=view_of,
    )
    assert report.observed_seconds == 3600
    assert report.monthly_wire_bytes == 730 * GB
    assert report.monthly_cost_usd == pytest.approx(14.60)
    # Without compression the region would carry the 4 GB of records an hour.
    assert report.compression_saves_usd == pytest.approx(4 * 14.60 - 14.60)
    assert report.feature_views["v"].monthly_cost_usd == pytest.approx(14.60)


def test_overhead_is_paid_for_and_other_projects_topics_are_left_out() -> None:
    fetched = EgressCounts(
        "g",
        NOW_NS - HOUR,
        {
            TOPIC: TopicBytes(1, 900, 300),
            OVERHEAD: TopicBytes(0, 0, 100),
            "feast.other_project.v": TopicBytes(1, 10**9, 10**9),
        },
    )
    report = region_egress(fetched, NOW_NS, source_region="us", usd_per_gb=1.0, view_of=view_of)
    assert (report.wire_bytes, report.record_bytes, report.overhead_wire_bytes) == (400, 900, 100)
    assert list(report.feature_views) == ["v"]
    assert report.monthly_wire_bytes == 400 * MONTH_SECONDS / 3600


def test_nothing_observed_yet_costs_nothing() -> None:
    report = region_egress(
        counts(NOW_NS, v=TopicBytes(1, 10, 10)),
        NOW_NS,
        source_region="us",
        usd_per_gb=1.0,
        view_of=view_of,
    )
    assert report.monthly_cost_usd == 0.0


def test_prices_per_region_pair() -> None:
    prices = EgressSettings(
        default_usd_per_gb=0.02,
        same_region_usd_per_gb=0.001,
        usd_per_gb={"us-east-1": {"ap-southeast-1": 0.09}, "US_EAST_1": {"sa_east_1": 0.15}},
    )
    assert prices.price("us-east-1", "ap-southeast-1") == 0.09
    assert prices.price("us-east-1", "sa-east-1") == 0.15  # environment spelling matches
    assert prices.price("us-east-1", "eu-west-1") == 0.02
    assert prices.price("us-east-1", "us-east-1") == 0.001
    assert prices.price("eu-west-1", "ap-southeast-1") == 0.02  # only us-east-1's row listed


def test_a_region_saves_what_the_views_it_skips_cost_where_they_are_fetched() -> None:
    full = region_egress(
        counts(NOW_NS - HOUR, a=TopicBytes(1, 1, GB), b=TopicBytes(1, 1, 3 * GB)),
        NOW_NS,
        source_region="us",
        usd_per_gb=0.02,
        view_of=view_of,
    )
    partial = region_egress(
        counts(NOW_NS - 2 * HOUR, a=TopicBytes(1, 1, 2 * GB)),
        NOW_NS,
        source_region="us",
        usd_per_gb=0.05,
        view_of=view_of,
    )
    subscriptions = {"eu": {"a", "b"}, "ap": {"a"}}
    reports = {"eu": full, "ap": partial}
    add_subscription_savings(
        reports, ["a", "b", "c"], lambda region, view: view in subscriptions[region]
    )
    # b: 3 GB an hour where it is fetched, priced at ap's 0.05 $/GB.
    assert partial.subscription_saves_usd == pytest.approx(3 * 730 * 0.05)
    assert partial.unpriced_views == ["c"]  # nobody fetches c: its saving is unknown
    assert full.subscription_saves_usd == 0.0 and full.unpriced_views == ["c"]


def test_usd_reads_small_amounts_without_rounding_them_to_zero() -> None:
    assert usd(1234.5) == "$1,234.50"
    assert usd(0.0123) == "$0.0123"
    assert usd(None) == "n/a"


def test_check_reports_bytes_and_cost_per_region() -> None:
    settings = ConsistencySettings(
        egress={"default_usd_per_gb": 0.02, "usd_per_gb": {"us": {"ap": 0.08}}}
    )
    checker, regions, log, _ = make_world(settings)
    caught_up(regions, log, regions["us"].emitted[PROJECT].emitted_ns)
    for name, wire in (("eu", GB), ("ap", 2 * GB)):
        regions[name].fetched[f"replicator-{PROJECT}-{name}"] = EgressCounts(
            "g", NOW_NS - HOUR, {TOPIC: TopicBytes(100, 3 * wire, wire)}
        )
    report = checker.report(checker.measure_staleness())
    out = report.to_dict()
    eu, ap = out["regions"]["eu"]["egress"], out["regions"]["ap"]["egress"]
    assert out["regions"]["us"]["egress"] is None  # nothing counted there
    assert (eu["wire_bytes"], eu["record_bytes"]) == (GB, 3 * GB)
    assert eu["source_region"] == "us" and eu["usd_per_gb"] == 0.02
    assert eu["monthly_cost_usd"] == pytest.approx(14.60)
    assert ap["monthly_cost_usd"] == pytest.approx(2 * 730 * 0.08)
    assert ap["feature_views"]["v"]["wire_bytes"] == 2 * GB
    assert out["egress"]["monthly_cost_usd"] == pytest.approx(14.60 + 116.80)
    text = format_report(report)
    assert "ap: " in text and "egress from us: 2.0 GiB in 60.0 min (6.0 GiB decompressed)" in text
    assert "$116.80/month" in text and "egress, all regions: $131.40/month" in text
