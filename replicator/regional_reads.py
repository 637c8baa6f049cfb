"""Reads that know their region: routing on health and staleness, and the side API.

``RegionalReader.hmget`` serves one pipeline of HMGETs (one Feast ``get_online_features``
call) from the best region and records how it was served:

- without a ``max_staleness``: the active region of ``FailoverRedis`` (the local region unless
  it is unreachable or above ``reads.max_staleness_seconds``, then its fallbacks nearest
  first); when every region is failed over from, the nearest reachable one, stale or not;
- with one (per call with ``read_scope(max_staleness=...)``, or per feature service): the
  active region if its last measured staleness is within it, else the first region in read
  order that is; when none is, ``StaleRead`` is raised (``on_stale: refuse``) or the active
  region serves and the read is marked ``within_bound=False`` (``on_stale: mark``).

The side API (documented in docs/regional-reads.md)::

    from replicator.regional_reads import read_scope, last_read

    with read_scope(max_staleness=2.0) as scope:
        response = store.get_online_features(...)
    scope.last.region, scope.last.staleness_seconds, scope.last.within_bound

    last_read()   # the newest ServedRead of this thread / asyncio task, outside any scope

Staleness reported with a read is the one measured at the region's last health check,
``measured_seconds_ago`` before the read (at most about one health interval).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal

from replicator.adapters.multidb import FailoverRedis, HmgetCommands, RegionUnavailable
from replicator.core.staleness import RegionState, StalenessGate, first_within
from replicator.errors import ReplicatorError
from replicator.read_health import StalenessMonitor
from replicator.read_plan import ReadPlan

log = logging.getLogger(__name__)

__all__ = ["RegionUnavailable", "RegionalReader", "ServedRead", "StaleRead", "last_read"]


class StaleRead(ReplicatorError):
    """No reachable region is within the read's ``max_staleness`` (``on_stale: refuse``).
    ``states`` holds what each region's last health check found."""

    def __init__(self, message: str, *, max_staleness: float, states: list[RegionState]):
        super().__init__(message)
        self.max_staleness = max_staleness
        self.states = states


@dataclass(frozen=True, slots=True)
class ServedRead:
    region: str
    """The region whose Redis answered."""
    failed_over: bool
    """True when it is not the local region."""
    staleness_seconds: float | None
    """Replication staleness of that region at its last health check; None: unmeasurable."""
    measured_seconds_ago: float | None
    max_staleness: float | None
    """The bound the read had to meet (None: none)."""
    within_bound: bool | None
    """None without a bound; False only for reads served and marked (``on_stale: mark``)."""


@dataclass
class ReadScope:
    max_staleness: float | None = None
    on_stale: Literal["refuse", "mark"] | None = None
    reads: list[ServedRead] = field(default_factory=list)

    @property
    def last(self) -> ServedRead | None:
        return self.reads[-1] if self.reads else None


_scope: ContextVar[ReadScope | None] = ContextVar("replicator_read_scope", default=None)
_last: ContextVar[ServedRead | None] = ContextVar("replicator_last_read", default=None)


@contextmanager
def read_scope(
    max_staleness: float | None = None, on_stale: Literal["refuse", "mark"] | None = None
) -> Iterator[ReadScope]:
    """Reads inside get ``max_staleness`` (seconds; nested scopes keep the stricter bound)
    and are collected in the scope's ``reads``."""
    outer = _scope.get()
    if outer is not None:
        if outer.max_staleness is not None:
            bounds = [b for b in (max_staleness, outer.max_staleness) if b is not None]
            max_staleness = min(bounds)
        on_stale = on_stale or outer.on_stale
    scope = ReadScope(max_staleness, on_stale)
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)
        if outer is not None:
            outer.reads.extend(scope.reads)


def last_read() -> ServedRead | None:
    """The newest read served in this thread or asyncio task."""
    return _last.get()


class RegionalReader:
    """Thread-safe; one per process and read plan (``close()`` stops its health checks)."""

    def __init__(self, plan: ReadPlan, *, monotonic: Callable[[], float] = time.monotonic):
        self.plan = plan
        self._monotonic = monotonic
        settings = plan.reads
        self.monitor = StalenessMonitor(plan, monotonic=monotonic)
        self._gates = {
            r.name: StalenessGate(
                settings.max_staleness_seconds, settings.recover_below, settings.recover_checks
            )
            for r in plan.regions
        }
        self.redis = FailoverRedis(plan.regions, settings, self._healthy)

    def _healthy(self, region: str) -> bool:
        """The health check redis-py runs every interval per region (on its own thread)."""
        state = self.monitor.measure(region)
        if not state.reachable:
            raise RegionUnavailable(f"region {region} is unreachable")
        was = self._gates[region].healthy
        healthy = self._gates[region].observe(state.staleness_seconds)
        if healthy != was:
            log.warning(
                "region %s %s (staleness %s s)",
                region,
                "recovered" if healthy else "is stale: failing over",
                state.staleness_seconds,
                extra={"event": "read_region_health", "region": region, "healthy": healthy},
            )
        return healthy

    def healthy(self, region: str) -> bool:
        """Whether ``region`` is a failover target now: its last health check reached it and
        its staleness gate is closed (fresh, with the recovery hysteresis passed)."""
        state = self.monitor.state(region)
        return state is not None and state.reachable and self._gates[region].healthy

    def hmget(self, commands: HmgetCommands) -> list[Any]:
        """Replies of one HMGET per (key, fields), from the region chosen as described in the
        module docstring. Raises ``StaleRead`` or ``RegionUnavailable``."""
        scope = _scope.get()
        bound = scope.max_staleness if scope else None
        within: bool | None = None
        chosen: str | None = None
        if bound is not None:
            self.redis.start()
            states = self.monitor.states()
            active = self.redis.active_region()
            best = first_within([s for s in states if s.region == active], bound)
            best = best or first_within(states, bound)
            within = best is not None
            if best is None:
                on_stale = (scope.on_stale if scope else None) or self.plan.reads.on_stale
                if on_stale == "refuse":
                    message = _stale_message(states, bound)
                    raise StaleRead(message, max_staleness=bound, states=states)
            elif best.region != active:
                chosen = best.region
        region, replies = self._serve(commands, chosen)
        self._record(region, bound, within, scope)
        return replies

    def _serve(self, commands: HmgetCommands, region: str | None) -> tuple[str, list[Any]]:
        if region is not None:
            return region, self.redis.hmget_on(region, commands)
        try:
            return self.redis.hmget(commands)
        except RegionUnavailable as exc:
            # Every circuit is open. Stale data beats no data: the nearest region that
            # answered its last health check and answers now serves (the read reports its
            # staleness). A region can have died since its last check (a killed Redis): the
            # next one is tried, not the read failed.
            last: RegionUnavailable | None = None
            for state in self.monitor.states():
                if state.reachable:
                    try:
                        return state.region, self.redis.hmget_on(state.region, commands)
                    except RegionUnavailable as unreachable:
                        last = unreachable
            if last is None:
                raise
            raise RegionUnavailable(f"{exc}; last resort: {last}") from last

    def _record(
        self, region: str, bound: float | None, within: bool | None, scope: ReadScope | None
    ) -> None:
        state = self.monitor.state(region)
        served = ServedRead(
            region=region,
            failed_over=region != self.plan.local,
            staleness_seconds=state.staleness_seconds if state else None,
            measured_seconds_ago=self._monotonic() - state.measured_at if state else None,
            max_staleness=bound,
            within_bound=within,
        )
        _last.set(served)
        if scope is not None:
            scope.reads.append(served)

    def close(self) -> None:
        self.redis.close()
        self.monitor.close()


def _stale_message(states: list[RegionState], bound: float) -> str:
    seen = ", ".join(
        f"{s.region}: {'unreachable' if not s.reachable else _seconds(s.staleness_seconds)}"
        for s in states
    )
    return f"no region is within max_staleness {bound:g} s ({seen or 'no region measured yet'})"


def _seconds(value: float | None) -> str:
    return "unmeasurable" if value is None else f"{value:.3f} s"
