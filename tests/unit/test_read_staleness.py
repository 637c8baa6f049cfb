"""Regional reads' pure rules: staleness of a region, hysteresis, choice under a bound."""

from __future__ import annotations

from replicator.core.staleness import (
    NS,
    Emission,
    RegionState,
    StalenessGate,
    first_within,
    parse_emission,
    region_staleness,
    subscribed_positions,
)


def _emission() -> Emission:
    raw = {
        b"sequence": b"7",
        b"emitted_ns": str(100 * NS).encode(),
        b"interval_ns": str(NS).encode(),
        b"t:feast.p.view_a": f"2:{90 * NS}".encode(),
        b"t:feast.p.view_b": f"1:{95 * NS}".encode(),
        b"t:feast.other.view_a": f"1:{10 * NS}".encode(),
    }
    emission = parse_emission(raw)
    assert emission is not None
    return emission


def test_region_staleness_is_its_worst_subscribed_partition() -> None:
    emission = _emission()
    positions = subscribed_positions(emission, "feast", "p", ["*"])
    assert positions == [("feast.p.view_a", 0), ("feast.p.view_a", 1), ("feast.p.view_b", 0)]
    applied = {("feast.p.view_a", 0): 99 * NS, ("feast.p.view_a", 1): 97 * NS}
    # view_b never applied a heartbeat: as stale as its first heartbeat is old (5 s).
    assert region_staleness(emission, positions, applied) == 5.0
    only_a = subscribed_positions(emission, "feast", "p", ["view_a"])
    assert region_staleness(emission, only_a, applied) == 3.0


def test_no_emission_record_means_unmeasurable() -> None:
    assert parse_emission({}) is None


def test_gate_fails_above_the_bound_and_recovers_only_after_consecutive_good_checks() -> None:
    gate = StalenessGate(bound=2.0, recover_below=1.0, recover_checks=2)
    assert gate.observe(1.9) is True
    assert gate.observe(2.1) is False
    assert gate.observe(1.5) is False  # below the bound but above recover_below: still out
    assert gate.observe(0.5) is False
    assert gate.observe(1.5) is False  # the run of good checks restarts
    assert gate.observe(0.5) is False
    assert gate.observe(0.5) is True
    assert gate.observe(None) is True  # unmeasurable changes nothing


def test_first_within_keeps_read_order_and_skips_unreachable_and_unmeasured() -> None:
    states = [
        RegionState("local", False, None, 0.0),
        RegionState("near", True, None, 0.0),
        RegionState("far", True, 0.5, 0.0),
        RegionState("farther", True, 0.1, 0.0),
    ]
    chosen = first_within(states, 1.0)
    assert chosen is not None and chosen.region == "far"
    assert first_within(states, 0.05) is None
