"""The primary's heartbeat emission record, and how long it has not advanced."""

from __future__ import annotations

from collections.abc import Callable

from consistency.core.report import HeartbeatInfo
from consistency.core.stall import EmissionClock, stalled
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
        self._clock = EmissionClock()

    def read(self, errors: list[str]) -> tuple[Emission | None, HeartbeatInfo]:
        """The newest durable round (None when absent or unreadable: the reason is appended
        to ``errors``) and what the report says of the emitter."""
        emission: Emission | None = None
        started = self._monotonic()
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
        info.age_seconds = self._clock.age(emission, started, self._monotonic())
        info.stalled_seconds = stalled(info.age_seconds, emission.interval_seconds)
        return emission, info
