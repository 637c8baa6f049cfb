"""The primary's heartbeat emission record, and how long it has not advanced."""

from __future__ import annotations

from collections.abc import Callable

from consistency.core.report import HeartbeatInfo
from consistency.errors import SourceUnavailable
from consistency.ports import RegionData
from replicator.core.staleness import Emission

NO_EMITTER = (
    "no heartbeat round recorded at the primary: is `replicator heartbeats` running? "
    "(staleness cannot be measured without it)"
)


class HeartbeatMeter:
    def __init__(self, primary: RegionData, project: str, monotonic: Callable[[], float]) -> None:
        self._primary = primary
        self._project = project
        self._monotonic = monotonic
        self._seen: tuple[int, float] | None = None

    def read(self, errors: list[str]) -> tuple[Emission | None, HeartbeatInfo]:
        """The newest durable round (None when absent or unreadable: the reason is appended
        to ``errors``) and what the report says of the emitter."""
        emission: Emission | None = None
        try:
            emission = self._primary.emission(self._project)
        except SourceUnavailable as exc:
            errors.append(str(exc))
        info = HeartbeatInfo(emitter_up=emission is not None)
        if emission is None:
            if not errors:
                errors.append(NO_EMITTER)
            return None, info
        info.sequence = emission.sequence
        info.emitted_ns = emission.emitted_ns
        info.interval_seconds = emission.interval_seconds
        info.stalled_seconds = self._stall(emission)
        return emission, info

    def _stall(self, emission: Emission) -> float:
        """Seconds the emission record has not moved beyond its interval, timed on the
        checker's monotonic clock (a duration on one machine: skew-free). While the emitter
        stalls, the primary's clock runs on but its newest stamp does not: adding the stall
        keeps staleness from shrinking to zero as regions catch up with a frozen fence."""
        now = self._monotonic()
        if self._seen is None or self._seen[0] != emission.sequence:
            self._seen = (emission.sequence, now)
            return 0.0
        return max(0.0, now - self._seen[1] - emission.interval_seconds)
