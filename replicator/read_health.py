"""What a regional reader knows about each region: reachable as its reader user, and how stale.

``StalenessMonitor.measure(region)`` pings the region's Redis as its reader user, reads the
applied heartbeat stamps of every partition it subscribes to, and computes the staleness
against the primary's newest emission (``replicator.core.staleness``, the checker's rule). The
emission record is read at most once per half health interval, whichever region asks, and at
least every ``BELIEVED_LEAD_NS / 2`` (5 s): a record kept longer would make stamps applied since
look forged. Readers are read-only: the reader ACL allows every command used here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

import redis

from replicator.adapters.redis_store import read_applied_heartbeats, read_emission, tls_options
from replicator.config import ReadSettings
from replicator.core.staleness import (
    BELIEVED_LEAD_NS,
    NS,
    Emission,
    RegionState,
    region_staleness,
    subscribed_positions,
)
from replicator.read_plan import ReadPlan, ReadRegion

log = logging.getLogger(__name__)


def reader_client(region: ReadRegion, settings: ReadSettings) -> redis.Redis:
    timeout = settings.socket_timeout_seconds
    return redis.Redis(
        host=region.host,
        port=region.port,
        username=region.username,
        password=region.password.get_secret_value(),
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        **tls_options(region.tls),
    )


class StalenessMonitor:
    """Measures regions and keeps the last ``RegionState`` of each (thread-safe)."""

    def __init__(self, plan: ReadPlan, *, monotonic: Callable[[], float] = time.monotonic):
        self._plan = plan
        self._monotonic = monotonic
        self._clients = {r.name: reader_client(r, plan.reads) for r in plan.regions}
        self._primary = reader_client(plan.primary, plan.reads)
        self._lock = threading.Lock()
        self._states: dict[str, RegionState] = {}
        self._emission: tuple[float, Emission | None] | None = None
        self._emission_ttl = min(plan.reads.health_interval_seconds, BELIEVED_LEAD_NS / NS) / 2

    def measure(self, name: str) -> RegionState:
        """One measurement of one region; never raises (unreachable is a state). An applied
        heartbeat hash that does not parse leaves the region unjudgeable: it counts as stale
        without bound (``inf`` seconds), so reads move away from it rather than trust it."""
        region = self._plan.region(name)
        client = self._clients[name]
        try:
            client.ping()
            emission = self._newest_emission()
            staleness = None
            if emission is not None:
                positions = subscribed_positions(
                    emission, self._plan.topic_prefix, self._plan.project, region.feature_views
                )
                try:
                    applied = read_applied_heartbeats(client, positions)
                except ValueError as exc:
                    log.warning(
                        "region %s: unreadable applied heartbeat (%s): counted as stale",
                        name,
                        exc,
                        extra={"event": "read_heartbeat_corrupt", "region": name},
                    )
                    staleness = math.inf
                else:
                    staleness = region_staleness(emission, positions, applied)
            state = RegionState(name, True, staleness, self._monotonic())
        except redis.RedisError:
            state = RegionState(name, False, None, self._monotonic())
        with self._lock:
            self._states[name] = state
        return state

    def state(self, name: str) -> RegionState | None:
        with self._lock:
            return self._states.get(name)

    def states(self) -> list[RegionState]:
        """Last states in read order; regions never measured are left out."""
        with self._lock:
            return [self._states[r.name] for r in self._plan.regions if r.name in self._states]

    def _newest_emission(self) -> Emission | None:
        """The primary's emission record; None when it is absent or the primary's Redis
        cannot be read (staleness is then unmeasurable, not zero)."""
        now = self._monotonic()
        with self._lock:
            cached = self._emission
        if cached is not None and now - cached[0] < self._emission_ttl:
            return cached[1]
        try:
            emission = read_emission(self._primary, self._plan.project)
        except redis.RedisError:
            emission = None
        except ValueError as exc:  # not what the emitter writes: unmeasurable, and said so
            log.warning(
                "unreadable emission record of project %s (%s): staleness unmeasurable",
                self._plan.project,
                exc,
                extra={"event": "read_emission_corrupt"},
            )
            emission = None
        with self._lock:
            self._emission = (now, emission)
        return emission

    def close(self) -> None:
        for client in [*self._clients.values(), self._primary]:
            client.close()
