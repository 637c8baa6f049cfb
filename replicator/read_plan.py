"""Everything an inference reader in one region needs, written into its ``feature_store.yaml``.

``replicator region feast-config R`` writes a ``ReadPlan`` (so inference hosts need no topology
file): the regions in read order (R first, then its ``read_fallbacks`` nearest first), the
primary region's Redis (which holds the heartbeat emission record; see docs/consistency.md)
and the knobs (``reads:`` in the topology, docs/regional-reads.md). Reader users only.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from replicator.config import ReadSettings, Topology


class ReadRegion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    host: str
    port: int
    username: str
    password: SecretStr
    feature_views: list[str] = ["*"]


class ReadPlan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    project: str
    topic_prefix: str = "feast"
    regions: list[ReadRegion]
    """The local region first, then its fallbacks nearest first."""
    primary: ReadRegion
    """The primary region's Redis (reader user): where the heartbeat emission record lives."""
    reads: ReadSettings = ReadSettings()

    @property
    def local(self) -> str:
        return self.regions[0].name

    def region(self, name: str) -> ReadRegion:
        return next(r for r in self.regions if r.name == name)


def _read_region(topology: Topology, name: str) -> ReadRegion:
    config = topology.region(name)
    return ReadRegion(
        name=name,
        host=config.redis.host,
        port=config.redis.port,
        username=config.redis.reader.username,
        password=config.redis.reader.password,
        feature_views=list(config.feature_views),
    )


def read_plan(topology: Topology, region: str) -> ReadPlan:
    """The read plan of inference services in ``region``. Raises ``ConfigError`` for an
    unknown region."""
    return ReadPlan(
        project=topology.project,
        topic_prefix=topology.kafka.topic_prefix,
        regions=[_read_region(topology, r) for r in topology.read_order(region)],
        primary=_read_region(topology, topology.primary_region),
        reads=topology.reads,
    )


def plan_document(plan: ReadPlan) -> dict[str, Any]:
    """The plan as plain YAML/JSON data, passwords included (the file it goes to is 0600)."""
    return _reveal(plan.model_dump(mode="python"))


def _reveal(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value
