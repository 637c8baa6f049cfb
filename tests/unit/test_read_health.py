"""What a regional reader's health check finds about a region's staleness (in-memory Redis
clients in place of the regions' and the primary's reader connections)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import replicator.read_health as read_health
from replicator.config import ReadSettings
from replicator.core.keys import TOPIC_FIELD_PREFIX, applied_heartbeat_key, emission_key
from replicator.core.staleness import NS
from replicator.read_health import StalenessMonitor
from replicator.read_plan import ReadPlan, ReadRegion

TOPIC = "feast.p.view_a"
FORGED = 2**63 - 1


class Hashes:
    """One region's Redis hashes, as its reader user's redis-py client returns them."""

    def __init__(self) -> None:
        self.data: dict[str, dict[bytes, bytes]] = {}

    def set(self, key: str, fields: dict[str, int | str]) -> None:
        self.data[key] = {k.encode(): str(v).encode() for k, v in fields.items()}

    def ping(self) -> bool:
        return True

    def hgetall(self, key: str) -> dict[bytes, bytes]:
        return dict(self.data.get(key, {}))

    @contextmanager
    def pipeline(self, transaction: bool = True) -> Iterator[Pipeline]:
        yield Pipeline(self)

    def close(self) -> None:
        pass


class Pipeline:
    def __init__(self, hashes: Hashes) -> None:
        self._hashes = hashes
        self._replies: list[Any] = []

    def hget(self, key: str, name: str) -> None:
        self._replies.append(self._hashes.data.get(key, {}).get(name.encode()))

    def hmget(self, key: str, names: list[str]) -> None:
        stored = self._hashes.data.get(key, {})
        self._replies.append([stored.get(n.encode()) for n in names])

    def execute(self) -> list[Any]:
        return self._replies


class World:
    """The primary region's emission record and eu-west-1's applied heartbeat (one partition)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 0.0
        self.clients = {"us-east-1": Hashes(), "eu-west-1": Hashes()}
        monkeypatch.setattr(read_health, "reader_client", lambda r, _: self.clients[r.name])

    def monitor(self, reads: ReadSettings) -> StalenessMonitor:
        eu, primary = (
            ReadRegion(name=n, host="h", port=1, username="reader", password="p")
            for n in ("eu-west-1", "us-east-1")
        )
        plan = ReadPlan(project="p", regions=[eu], primary=primary, reads=reads)
        return StalenessMonitor(plan, monotonic=lambda: self.now)

    def emitted(self, seconds: int) -> None:
        self.clients["us-east-1"].set(
            emission_key("p"),
            {
                "sequence": seconds,
                "emitted_ns": seconds * NS,
                "interval_ns": NS,
                f"{TOPIC_FIELD_PREFIX}{TOPIC}": f"1:{90 * NS}",
            },
        )

    def applied(self, sequence: int, emitted_ns: int) -> None:
        self.clients["eu-west-1"].set(
            applied_heartbeat_key(TOPIC, 0),
            {"sequence": sequence, "emitted_ns": emitted_ns, "applied_ns": 0},
        )


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


def test_a_forged_heartbeat_stamp_keeps_a_region_stale_for_readers(world: World) -> None:
    reads = ReadSettings(max_staleness_seconds=5.0)
    world.emitted(100)
    world.applied(FORGED, FORGED)  # produced by anyone who can write into the feature topic
    state = world.monitor(reads).measure("eu-west-1")
    # Counted as no heartbeat: as stale as the topic's first heartbeat is old, not 0 s.
    assert state.reachable and state.staleness_seconds == 10.0
    assert state.staleness_seconds > reads.max_staleness_seconds


def test_a_long_health_interval_never_takes_new_stamps_for_forged_ones(world: World) -> None:
    monitor = world.monitor(ReadSettings(health_interval_seconds=60.0))
    world.emitted(100)
    world.applied(100, 100 * NS)
    assert monitor.measure("eu-west-1").staleness_seconds == 0.0
    # 20 s later, the region applied the newest round: it is fresh, whatever was read before.
    world.now += 20.0
    world.emitted(120)
    world.applied(120, 120 * NS)
    assert monitor.measure("eu-west-1").staleness_seconds == 0.0


def test_an_unreadable_applied_heartbeat_counts_as_stale_not_as_a_crash(world: World) -> None:
    world.emitted(100)
    world.clients["eu-west-1"].set(
        applied_heartbeat_key(TOPIC, 0), {"sequence": "x", "emitted_ns": "not a number"}
    )
    state = world.monitor(ReadSettings()).measure("eu-west-1")
    assert state.reachable and state.staleness_seconds == float("inf")


def test_an_unreadable_emission_record_leaves_staleness_unmeasurable(world: World) -> None:
    world.clients["us-east-1"].set(emission_key("p"), {"emitted_ns": "garbage"})
    world.applied(100, 100 * NS)
    state = world.monitor(ReadSettings()).measure("eu-west-1")
    assert state.reachable and state.staleness_seconds is None
