"""RegionalReader's last resort when every circuit is open (fakes for Redis and health)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

import replicator.regional_reads as regional_reads
from replicator.core.staleness import RegionState
from replicator.read_plan import ReadPlan, ReadRegion
from replicator.regional_reads import RegionalReader, RegionUnavailable, last_read

REGIONS = ["local-1", "eu-west-1", "us-east-1"]
COMMANDS = [(b"key", [b"field"])]


class FakeMonitor:
    """Last health checks found every region reachable (the local one has died since)."""

    def __init__(self, plan: ReadPlan, **_: Any) -> None:
        self._states = {r: RegionState(r, True, 3.0, 0.0) for r in REGIONS}

    def states(self) -> list[RegionState]:
        return list(self._states.values())

    def state(self, name: str) -> RegionState | None:
        return self._states.get(name)


class FakeRedis:
    """Every circuit open; the Redis of the regions in ``dead`` refuse connections."""

    dead: set[str] = set()

    def __init__(self, regions: Sequence[ReadRegion], *_: Any) -> None:
        self.tried: list[str] = []

    def hmget(self, commands: Any) -> tuple[str, list[Any]]:
        raise RegionUnavailable("no region answered the read: every circuit is open")

    def hmget_on(self, region: str, commands: Any) -> list[Any]:
        self.tried.append(region)
        if region in self.dead:
            raise RegionUnavailable(f"region {region} did not answer the read")
        return [[region.encode()]]


@pytest.fixture
def reader(monkeypatch: pytest.MonkeyPatch) -> RegionalReader:
    monkeypatch.setattr(regional_reads, "StalenessMonitor", FakeMonitor)
    monkeypatch.setattr(regional_reads, "FailoverRedis", FakeRedis)
    regions = [ReadRegion(name=r, host="h", port=1, username="u", password="p") for r in REGIONS]
    return RegionalReader(ReadPlan(project="p", regions=regions, primary=regions[-1]))


def test_a_region_dead_since_its_last_check_passes_the_read_to_the_next(
    reader: RegionalReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeRedis, "dead", {"local-1"})
    assert reader.hmget(COMMANDS) == [[b"eu-west-1"]]
    served = last_read()
    assert served is not None and served.region == "eu-west-1" and served.failed_over
    assert reader.redis.tried == ["local-1", "eu-west-1"]  # type: ignore[attr-defined]


def test_the_read_fails_only_when_no_region_answers(
    reader: RegionalReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeRedis, "dead", set(REGIONS))
    with pytest.raises(RegionUnavailable, match="us-east-1"):
        reader.hmget(COMMANDS)
    assert reader.redis.tried == REGIONS  # type: ignore[attr-defined]
