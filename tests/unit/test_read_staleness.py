"""Regional reads' pure rules: staleness of a region, hysteresis, choice under a bound."""

from __future__ import annotations

from replicator.core.staleness import (
    NS,
    AppliedHeartbeat,
    Emission,
    RegionState,
    StalenessGate,
    first_within,
    parse_applied,
    parse_emission,
    region_staleness,
    subscribed_positions,
)

FORGED = 2**63 - 1


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
    applied = {
        ("feast.p.view_a", 0): AppliedHeartbeat(6, 99 * NS),
        ("feast.p.view_a", 1): AppliedHeartbeat(4, 97 * NS),
    }
    # view_b never applied a heartbeat: as stale as its first heartbeat is old (5 s).
    assert region_staleness(emission, positions, applied) == 5.0
    only_a = subscribed_positions(emission, "feast", "p", ["view_a"])
    assert region_staleness(emission, only_a, applied) == 3.0


def test_a_forged_heartbeat_stamp_does_not_make_a_region_read_as_fresh() -> None:
    # Anyone who can produce into a feature topic can write a heartbeat stamped 2**63-1; the
    # region's worker has applied nothing else. Its hashes, as the reader's HMGETs return them:
    emission = _emission()
    positions = subscribed_positions(emission, "feast", "p", ["view_a"])
    forged = str(FORGED).encode()
    applied = parse_applied(positions, [[forged, forged], [b"6", str(99 * NS).encode()]])
    # Not believed: partition 0 counts as having applied no heartbeat, as stale as view_a's
    # first heartbeat is old (10 s), so the region fails a 5 s bound instead of reading 0 s.
    assert region_staleness(emission, positions, applied) == 10.0
    # A stamp of a round durable in Kafka but not recorded yet is still believed.
    in_flight = {("feast.p.view_a", p): AppliedHeartbeat(8, 101 * NS) for p in range(2)}
    assert region_staleness(emission, positions, in_flight) == 0.0


def test_applied_hashes_parse_to_heartbeats_and_missing_ones_are_left_out() -> None:
    positions = [("feast.p.view_a", 0), ("feast.p.view_a", 1)]
    replies = [[b"6", str(99 * NS).encode()], [None, None]]
    assert parse_applied(positions, replies) == {positions[0]: AppliedHeartbeat(6, 99 * NS)}


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
