"""How old the primary's newest heartbeat round is, on the checker's clock: no I/O.

The emitter stamps each round with the primary's wall clock (``emitted_ns``); the checker
reads the emission record once per round and times everything on its own monotonic clock.
The two clocks are never compared directly (they may be hours apart). Instead each read
gives an upper bound on the offset between them: a round stamped ``e`` that a read returned
at ``t`` existed by ``t``, so ``offset <= t - e``. The smallest bound over recent reads is the
read that came soonest after its round, so ``e + min(t_k - e_k)`` places a new round on the
checker's clock within that read's delay (near zero once reads and rounds have drifted
through each other's phase), where the moment it was first seen can be a whole checker
round late. The estimate is kept inside what the reads prove: no later than the read that
returned it, no earlier than the start of the last read that still saw an older round.

Staleness then counts the newest round's age from when it was made, not from when the
checker happened to see it (``added_staleness``): a stopped worker or a Kafka outage reads as
stale up to one checker round plus one interval sooner (BENCHMARKS.md, ``detection``).

Assumptions, and what breaks them: the primary's clock may be any distance off but steady
over ``WINDOW`` reads (NTP slewing, at most 500 ppm, moves it about 0.1 s in 64 reads of 2 s).
A stamp or sequence that goes backwards (an emitter restart, a clock stepped back) clears
the bounds; a smaller step back makes the stall read at most that step long too soon, never
longer than one checker round.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from replicator.core.staleness import NS, Emission

WINDOW = 64
"""Reads whose offset bounds are kept (about 2 minutes at the default 2 s rounds)."""
LATE = 1.5
"""A round is late once the newest is this many intervals old: half an interval of slack for
the emitter's own round trip to Kafka and the checker's read."""


@dataclass(frozen=True, slots=True)
class _Read:
    sequence: int
    emitted_ns: int
    started: float


class EmissionClock:
    """The age of the newest round, in seconds on the checker's monotonic clock."""

    def __init__(self, window: int = WINDOW) -> None:
        self._bounds: deque[float] = deque(maxlen=window)
        self._round: tuple[int, float] | None = None  # sequence, made at (checker's clock)
        self._last: _Read | None = None

    def age(self, emission: Emission, started: float, ended: float) -> float:
        """Seconds since the newest round (``emission``) was made, as of ``ended``, given one
        read of the record: ``started``/``ended`` are the checker's monotonic seconds just
        before the read and just after it returned."""
        sequence, emitted_ns = emission.sequence, emission.emitted_ns
        last = self._last
        if last is not None and (sequence < last.sequence or emitted_ns < last.emitted_ns):
            self._bounds.clear()
            self._round = None
            last = None
        self._bounds.append(ended - emitted_ns / NS)
        if self._round is None or self._round[0] != sequence:
            earliest = last.started if last is not None and last.sequence < sequence else -math.inf
            made = min(ended, max(earliest, emitted_ns / NS + min(self._bounds)))
            self._round = (sequence, made)
        self._last = _Read(sequence, emitted_ns, started)
        return ended - self._round[1]


def stalled(age: float, interval_seconds: float) -> float:
    """The emitter's stall: the newest round's whole ``age`` once the next is late (``LATE``
    intervals), else 0.0. The whole age, not what exceeds an interval: a write acknowledged
    just after the newest round may be missing in every region for that long."""
    return age if age > LATE * interval_seconds else 0.0


def added_staleness(behind_seconds: float, age: float, interval_seconds: float) -> float:
    """What the newest round's ``age`` adds to a partition ``behind_seconds`` behind it
    (primary-clock seconds between that round and the newest the partition applied).

    A partition behind has lacked everything since the round it applied, for ``behind +
    age`` seconds of the primary's time: the whole age counts, so a stopped worker's
    staleness grows with the clock rather than in steps of rounds. A caught-up partition is
    as fresh as the emitter can vouch: only a stall counts.
    """
    return age if behind_seconds > 0 else stalled(age, interval_seconds)
