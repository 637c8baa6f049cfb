"""Everything an inference reader in one region needs, written into its ``feature_store.yaml``.

``replicator region feast-config R`` writes a ``ReadPlan`` (so inference hosts need no topology
file): the regions in read order (R first, then its ``read_fallbacks`` nearest first), the
primary region's Redis (which holds the heartbeat emission record; see docs/consistency.md)
and the knobs (``reads:`` in the topology, docs/regional-reads.md). Reader users only.

Each region's Redis TLS (``regions.R.redis.tls``) travels with it, file paths made absolute
(they are read on the inference host: the CA, client certificate and key must be there at
those paths); the server name checked is the ``host`` dialled. A TLS setting the plan cannot
carry is refused (``ConfigError``), never dropped: a reader must not fall back to plaintext
or to weaker checks than the topology asks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from replicator.config import ReadSettings, Topology
from replicator.config_security import TlsSettings
from replicator.errors import ConfigError

CARRIED_TLS_FIELDS = frozenset({"enabled", "ca_file", "cert_file", "key_file", "check_hostname"})
"""The ``TlsSettings`` a regional reader applies (``redis_store.tls_options``)."""


class ReadRegion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    host: str
    port: int
    username: str
    password: SecretStr
    feature_views: list[str] = ["*"]
    tls: TlsSettings = TlsSettings()
    """TLS towards this Redis, as in the topology (paths absolute)."""


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
        tls=_reader_tls(config.redis.tls, f"regions.{name}.redis.tls"),
    )


def _reader_tls(tls: TlsSettings, where: str) -> TlsSettings:
    """``tls`` as readers will apply it. Raises ``ConfigError`` for a setting they cannot."""
    if not tls.enabled:
        return TlsSettings()
    default = TlsSettings()
    dropped = [
        name
        for name in type(tls).model_fields
        if name not in CARRIED_TLS_FIELDS and getattr(tls, name) != getattr(default, name)
    ]
    if dropped:
        raise ConfigError(
            f"{where}: {', '.join(dropped)} cannot be expressed in a regional read plan "
            "(replicator region feast-config): remove it, or read that region another way"
        )
    paths = {
        name: Path(value).absolute()
        for name in ("ca_file", "cert_file", "key_file")
        if (value := getattr(tls, name)) is not None
    }
    return tls.model_copy(update=paths)


def read_plan(topology: Topology, region: str) -> ReadPlan:
    """The read plan of inference services in ``region``. Raises ``ConfigError`` for an
    unknown region, or a Redis TLS setting the plan cannot carry."""
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
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {k: _reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_reveal(v) for v in value]
    return value
