"""Timing the emitter's stall from when its last round was made (consistency.core.stall)."""

from __future__ import annotations

import pytest

from consistency.core.stall import EmissionClock, stalled
from replicator.core.staleness import NS, Emission

PRIMARY_AHEAD = 3_600.0  # the primary's wall clock runs an hour ahead of the checker's
INTERVAL = 1.0


def round_made_at(made: float, sequence: int) -> Emission:
    """Round ``sequence`` made at checker time ``made``, stamped by the primary's clock."""
    return Emission(sequence, int((made + PRIMARY_AHEAD) * NS), int(INTERVAL * NS))


class Primary:
    """An emitter making a round every second from checker time 0.05 until ``stop``."""

    def __init__(self, stop: float = float("inf")) -> None:
        self.stop = stop

    def newest(self, now: float) -> Emission:
        sequence = int(min(now, self.stop) - 0.05)
        return round_made_at(0.05 + sequence, sequence + 1)


def read(clock: EmissionClock, primary: Primary, now: float, delay: float = 0.002) -> float:
    """The stall one read reports."""
    return stall(clock, primary.newest(now), now, now + delay)


def stall(clock: EmissionClock, emission: Emission, started: float, ended: float) -> float:
    return stalled(clock.age(emission, started, ended), INTERVAL)


def test_a_healthy_emitter_never_reads_as_stalled() -> None:
    clock, primary = EmissionClock(), Primary()
    stalls = [read(clock, primary, 2.07 * k) for k in range(1, 200)]
    assert max(stalls) == 0.0


def test_a_late_round_counts_the_whole_age_of_the_last_one() -> None:
    clock = EmissionClock()
    last = round_made_at(10.0, 7)
    assert stall(clock, last, 10.0, 10.0) == 0.0
    assert stall(clock, last, 11.4, 11.4) == 0.0  # the next round is due, not late yet
    assert stall(clock, last, 11.6, 11.6) == pytest.approx(1.6)


def test_a_stall_counts_from_when_the_last_round_was_made_not_when_it_was_seen() -> None:
    clock = EmissionClock()
    primary = Primary(stop=80.1)  # round 81, made at 80.05, is the last
    reads = [2.07 * k for k in range(1, 40)]  # 2.07 s rounds drift through the emitter's phase
    for now in reads:
        assert read(clock, primary, now) == 0.0
    first_seen = 2.07 * 39  # 80.73: the last round was seen 0.68 s after it was made
    assert primary.newest(first_seen).sequence == 81
    later = first_seen + 6.0
    assert read(clock, primary, later) == pytest.approx(later - 80.05, abs=0.05)


def test_a_primary_clock_running_slow_cannot_make_a_round_look_older_than_the_reads_prove() -> None:
    clock = EmissionClock()
    assert stall(clock, round_made_at(0.9, 1), 1.0, 1.0) == 0.0
    # the primary's clock crawls: rounds made after each read are stamped 0.1 s apart
    assert stall(clock, round_made_at(1.0, 2), 1.5, 1.5) == 0.0
    # round 3 was made after the read at 1.5 (which saw round 2), whatever its stamp says
    assert stall(clock, round_made_at(1.1, 3), 5.0, 5.0) == pytest.approx(5.0 - 1.5)


@pytest.mark.parametrize("change", ["clock stepped back 30 s", "emitter restarted"])
def test_a_primary_clock_stepped_back_or_a_restarted_emitter_raises_no_false_stall(
    change: str,
) -> None:
    clock, primary = EmissionClock(), Primary()
    for k in range(1, 20):
        assert read(clock, primary, 2.07 * k) == 0.0
    for k in range(20, 60):
        now = 2.07 * k
        newest = primary.newest(now)
        if change == "emitter restarted":
            newest = Emission(newest.sequence - 19, newest.emitted_ns, newest.interval_ns)
        else:
            newest = Emission(newest.sequence, newest.emitted_ns - 30 * NS, newest.interval_ns)
        assert stall(clock, newest, now, now + 0.002) == 0.0
