"""The fault suite's checkers judge a history the way the fault table says (docs/chaos.md)."""

from __future__ import annotations

from chaos import checkers
from chaos.history import Event, History, Op, Sample


def _history(*ops: Op, samples: tuple[Sample, ...] = (), events: tuple[Event, ...] = ()) -> History:
    history = History("test", seed=1, commit="abc")
    history.ops.extend(ops)
    history.samples.extend(samples)
    history.events.extend(events)
    return history


def test_a_region_behind_an_acknowledged_write_is_a_lost_write() -> None:
    history = _history(
        Op(0, [1, 2], [1, 1], 0.0, 0.1, "ok"),
        Op(1, [1], [2], 0.2, 0.3, "ok"),
        Op(2, [2], [2], 0.4, 0.5, "fail"),
    )
    holds = checkers.lost_writes(history, {"eu": {1: 2, 2: 1}, "ap": {1: 2, 2: 2}})
    lost = checkers.lost_writes(history, {"eu": {1: 1, 2: 1}})
    assert holds.ok is True, holds.figure  # entity 2's failed write may or may not land
    assert lost.ok is False
    assert "eu: 1 entities behind" in lost.figure


def test_a_value_no_call_wrote_is_reported() -> None:
    history = _history(Op(0, [1], [1], 0.0, 0.1, "ok"))
    cell = checkers.lost_writes(history, {"eu": {1: 7}})
    assert cell.ok is False
    assert "never written" in cell.figure


def test_identical_names_the_regions_that_differ() -> None:
    assert checkers.identical({"eu": (0, 0, 0)}, 10).ok is True
    cell = checkers.identical({"eu": (0, 0, 0), "ap": (2, 0, 1)}, 10)
    assert cell.ok is False
    assert cell.figure.startswith("ap: 2 missing, 0 extra, 1 differ")


def test_a_flag_later_than_its_deadline_fails_and_recovery_counts_after_the_flag() -> None:
    ok, bad = {"eu": "ok"}, {"eu": "violated"}
    history = _history(
        samples=(Sample(1.0, ok), Sample(12.0, bad), Sample(20.0, bad), Sample(25.0, ok)),
        events=(Event(0.0, "fault-start"), Event(5.0, "fault-end")),
    )
    assert checkers.flagged(history, ["eu"], {"eu": 13.0}, 0.0).ok is True
    assert checkers.flagged(history, ["eu"], {"eu": 10.0}, 0.0).ok is False
    recovered = checkers.recovered(history, ["eu"], 5.0, 90.0, ["eu"])
    assert recovered.ok is True
    assert recovered.figure.startswith("20.0 s after heal")


def test_any_violation_in_the_control_run_is_a_false_alarm() -> None:
    history = _history(samples=(Sample(3.0, {"eu": "ok", "ap": "violated"}),))
    assert checkers.false_alarms(history, [], 0.0, control=True).ok is False
    assert checkers.false_alarms(history, ["ap"], 0.0, control=True).ok is True
    assert checkers.false_alarms(history, [], 0.0, control=False).ok is None


def test_dead_letters_are_expected_only_after_bad_input() -> None:
    assert checkers.dead_letters(0, hostile=False).ok is True
    assert checkers.dead_letters(2, hostile=False).ok is False
    assert checkers.dead_letters(0, hostile=True).ok is False
