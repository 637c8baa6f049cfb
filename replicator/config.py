"""Topology configuration: one YAML file plus environment overrides.

The file is found in this order: the ``--config`` option, ``$REPLICATOR_CONFIG``, then
``infra/topology.yaml`` under the current directory. Any field can be overridden from the
environment with the prefix ``REPLICATOR_`` and ``__`` between nested names, for example
``REPLICATOR_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or
``REPLICATOR_REGIONS__EU_WEST_1__REDIS__PORT=6380`` (region names are matched with ``-``
and ``_`` treated alike, case-insensitively).

This is the only module that reads ``os.environ``; everything else receives a ``Topology``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from replicator.config_security import (
    Credentials,
    KafkaSecurity,
    KafkaUsers,
    TlsSettings,
    load_secret_files,
)
from replicator.core.topics import topic_name
from replicator.errors import ConfigError

ENV_PREFIX = "REPLICATOR_"
CONFIG_ENV_VAR = "REPLICATOR_CONFIG"
DEFAULT_CONFIG_PATH = Path("infra/topology.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RedisUser(Credentials):
    """A Redis ACL user: ``password`` or ``password_file`` (mode 0600)."""


class RedisEndpoint(_Section):
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    tls: TlsSettings = TlsSettings()
    """TLS towards this Redis (its ``tls-port``); the client certificate is optional."""
    writer: RedisUser
    """The region's replicator: the only user allowed to write Feast keys."""
    reader: RedisUser
    """Inference services: read commands only."""
    admin: RedisUser
    """Operators and the local stack (the 'default' user is disabled)."""


class S3Location(_Section):
    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: SecretStr
    secret_access_key_file: Path | None = None
    region_name: str = "us-east-1"
    ca_file: Path | None = None
    """PEM CA bundle for an ``https://`` endpoint signed by a private CA (S3-compatible
    servers); the system's trust store when unset."""

    @model_validator(mode="before")
    @classmethod
    def _files(cls, data: Any) -> Any:
        return load_secret_files(data, ("secret_access_key",))


Compression = Literal["zstd", "lz4", "snappy", "gzip", "none"]
DEFAULT_COMPRESSION: Compression = "zstd"
"""The primary's Kafka compression unless the topology says otherwise: the smallest records
per row in ``benchmarks/egress.py`` at a publish cost below the other codecs' noise
(BENCHMARKS.md, "egress")."""


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:19092"
    topic_prefix: str = "feast"
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    dead_letter_topic: str = "feast.dead-letter"
    retention_hours: float | None = Field(default=168.0, gt=0)
    """How long the topics the replicator creates keep records (7 days; null: forever).
    Snapshots (``snapshots.interval_seconds``) must be taken well inside it."""
    heartbeat_topic_suffix: str = "_heartbeats"
    security: KafkaSecurity = KafkaSecurity()
    users: KafkaUsers = KafkaUsers()
    compression: Compression = DEFAULT_COMPRESSION
    """``compression.type`` of the primary's producer: record batches stay compressed in the
    log and on the wire to every region, and are decompressed by each region's worker."""

    @property
    def retention_ms(self) -> int:
        """``retention.ms`` of the topics created (-1: unlimited)."""
        return -1 if self.retention_hours is None else int(self.retention_hours * 3600 * 1000)


class RegionConfig(_Section):
    redis: RedisEndpoint
    s3: S3Location
    kafka_bootstrap_servers: str | None = None
    """Brokers as seen from this region; defaults to ``kafka.bootstrap_servers``."""
    kafka_user: Credentials | None = None
    """This region's worker principal (SASL): reads its views' topics, writes dead letters."""
    kafka_tls: TlsSettings | None = None
    """TLS towards Kafka from this region; defaults to ``kafka.security.tls``."""
    feature_views: list[str] = Field(default_factory=lambda: ["*"])
    """Feature views this region subscribes to; ``*`` means all."""
    read_fallbacks: list[str] | None = None
    """Regions inference reads here fail over to, nearest first (default: every other
    region, in the file's order). See docs/regional-reads.md."""

    def subscribes_to(self, feature_view: str) -> bool:
        return "*" in self.feature_views or feature_view in self.feature_views


RENAMED_FIELDS: dict[str, dict[str, str]] = {
    "worker": {
        "max_batch_rows": (
            "renamed to max_records_per_poll, which counts Kafka records per poll (each holds "
            "up to the publisher's max_batch_rows rows); the old value divided by 100 keeps "
            "the old behaviour (5000 -> 50)"
        ),
        "key_ttl_seconds": (
            "removed: regions now expire keys by the primary's Feast setting, carried on every "
            "record; set online_store.key_ttl_seconds in the primary's feature_store.yaml "
            "(docs/replication.md) and delete worker.key_ttl_seconds here"
        ),
    },
}
"""Section -> old field -> what to do: a renamed field is an error, never silently ignored."""


def _refuse_renamed(section: str, data: Any) -> Any:
    if isinstance(data, dict):
        for old, advice in RENAMED_FIELDS.get(section, {}).items():
            if old in data:
                raise ValueError(f"{section}.{old} was {advice}")
    return data


class WorkerSettings(_Section):
    consumer_group_prefix: str = "replicator"
    max_records_per_poll: int = Field(default=50, ge=1)
    """Kafka records a worker takes per poll and applies in one Redis round trip."""
    poll_timeout_seconds: float = Field(default=0.05, gt=0)
    commit_interval_seconds: float = Field(default=0.1, ge=0)
    """Offsets of applied records are committed at most this often (0: after every apply)."""
    max_future_skew_seconds: float = Field(default=300.0, ge=0)
    """Rows whose event time is further than this ahead of their publish time (the primary's
    stamp on the record; the worker's clock for a record without one) go to the DLQ."""
    schema_wait_seconds: float = Field(default=600.0, ge=0)
    """Rows of a schema the region's registry does not list wait this long for it (their
    partition paused), then go to the dead-letter topic."""
    metrics_port: int | None = None
    session_timeout_seconds: float = Field(default=3.0, ge=1)
    """How long a worker that died without leaving (kill -9, lost host) holds its partitions
    before the group hands them to the region's other workers. Kafka's consumer default is
    45 s. The broker must accept it: its ``group.min.session.timeout.ms`` is 6 s on a stock
    broker, 1 s in the local stack and docker-compose.yml (a worker refused says so and
    exits 2). Heartbeats go every sixth of it."""
    on_data_loss: Literal["replay", "alert"] = "replay"
    """When the region's Redis lost rows the group had committed (restart from an old
    snapshot, failover to an empty replica, FLUSHALL): ``replay`` them from the log at once,
    or ``alert`` and stop committing until ``replicator region rebuild`` (docs/replication.md)."""
    data_loss_check_seconds: float = Field(default=1.0, gt=0)
    """How often idle partitions' applied marks are checked (busy ones: on every poll)."""
    max_heartbeat_lead_seconds: float = Field(default=60.0, gt=0)
    """A heartbeat stamped further than this ahead of its record's broker timestamp is
    dead-lettered as ``implausible_heartbeat`` (forged), never stored."""
    metrics_host: str = "127.0.0.1"
    """Address /metrics binds to; ``0.0.0.0`` in a pod so Prometheus can scrape it."""
    clock_offset_seconds: float = 0.0
    """Fault injection only (docs/chaos.md): shifts the worker's clock by this many seconds,
    as a region whose host clock is skewed. Keep 0 in production."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _refuse_renamed("worker", data)


class ReadSettings(_Section):
    """Regional reads (``replicator.feast_reader``, ``replicator region health``)."""

    max_staleness_seconds: float = Field(default=5.0, gt=0)
    """A region whose replication staleness is above this is failed over from."""
    recover_staleness_seconds: float | None = Field(default=None, gt=0)
    """Hysteresis: a region failed over from for staleness counts as healthy again only at or
    below this (default: half of ``max_staleness_seconds``)..."""
    recover_checks: int = Field(default=3, ge=1)
    """...for this many health checks in a row."""
    health_interval_seconds: float = Field(default=1.0, gt=0)
    failback_seconds: float = Field(default=10.0, gt=0)
    """How often reads try to return to a healthier, nearer region."""
    failures_to_failover: int = Field(default=2, ge=1)
    """Failed commands on the active region that open its circuit (then reads fail over)."""
    socket_timeout_seconds: float = Field(default=0.5, gt=0)
    on_stale: Literal["refuse", "mark"] = "refuse"
    """When no region meets a read's ``max_staleness``: raise ``StaleRead``, or serve the
    nearest reachable region and mark the read (``within_bound: false``)."""

    @property
    def recover_below(self) -> float:
        return self.recover_staleness_seconds or self.max_staleness_seconds / 2


class SnapshotSettings(_Section):
    """Region snapshots in object storage (``replicator region snapshot R``)."""

    interval_seconds: float = Field(default=6 * 3600.0, gt=0)
    """Time between snapshots of ``replicator region snapshot R --schedule``."""
    keep: int = Field(default=4, ge=1)
    """Finished snapshots kept per region; older ones are deleted after each snapshot."""


class KafkaListener(_Section):
    """An extra Kafka listener of the local stack, e.g. one per region behind a WAN proxy.

    Broker ``i`` (1-based) listens on ``port + i - 1`` and advertises
    ``advertised_port + i - 1`` (a proxy in front of it), both on 127.0.0.1.
    """

    port: int = Field(ge=1, le=65535)
    advertised_port: int = Field(ge=1, le=65535)


class StackSettings(_Section):
    """Only for the local stack (``replicator stack``)."""

    state_dir: Path = Path(".stack")
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    """Brokers of the local KRaft cluster. With 3 or more: replication factor 3,
    ``min.insync.replicas=2``, no unclean leader election. ``kafka.bootstrap_servers`` then
    lists one 127.0.0.1 port per broker; controller ports count up from
    ``kafka_controller_port``."""
    kafka_listeners: dict[str, KafkaListener] = Field(default_factory=dict)
    """Extra listeners by name (upper case, e.g. ``EU_WEST_1``), for clients that reach the
    brokers through a proxy: Kafka clients follow the advertised addresses."""
    kafka_controller_port: int = 19093
    kafka_heap_mb: int = 384
    s3_port: int = 19000
    s3_heap_mb: int = 192
    prometheus_port: int = 19090
    """Optional local Prometheus (``replicator demo`` starts it; docs/local-stack.md)."""
    worker_metrics_port: int = 19101
    """The first region's worker /metrics port in the local stack; the next regions count up."""
    checker_metrics_address: str = "127.0.0.1:9108"
    """Where the local Prometheus scrapes ``consistency serve`` (its ``server`` setting)."""


class Topology(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        env_parse_none_str="null",
    )

    project: str = "global_fraud"
    primary_region: str
    kafka: KafkaSettings = KafkaSettings()
    regions: dict[str, RegionConfig]
    worker: WorkerSettings = WorkerSettings()
    reads: ReadSettings = ReadSettings()
    snapshots: SnapshotSettings = SnapshotSettings()
    stack: StackSettings = StackSettings()

    @model_validator(mode="after")
    def _check(self) -> Topology:
        retention = self.kafka.retention_hours
        if retention is not None and self.snapshots.interval_seconds > retention * 3600 / 4:
            raise ValueError(
                f"snapshots.interval_seconds ({self.snapshots.interval_seconds:g}) must be at "
                f"most a quarter of kafka.retention_hours ({retention:g} h), so that a "
                "bootstrap always finds a snapshot whose log tail is still retained"
            )
        if self.primary_region not in self.regions:
            raise ValueError(
                f"primary_region {self.primary_region!r} is not one of the regions "
                f"({', '.join(sorted(self.regions))})"
            )
        seen: dict[tuple[str, int], str] = {}
        for name, region in self.regions.items():
            endpoint = (region.redis.host, region.redis.port)
            if endpoint in seen:
                raise ValueError(
                    f"regions {seen[endpoint]!r} and {name!r} use the same Redis "
                    f"{endpoint[0]}:{endpoint[1]}"
                )
            seen[endpoint] = name
            for fallback in region.read_fallbacks or []:
                if fallback not in self.regions or fallback == name:
                    raise ValueError(
                        f"regions.{name}.read_fallbacks: {fallback!r} is not another region"
                    )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Keyword arguments carry the YAML file (see load_topology); the environment wins.
        # Region overrides are merged by load_topology, which knows the regions' spelling.
        return (_EnvWithoutRegions(settings_cls), init_settings)

    # Convenience accessors -------------------------------------------------------------
    @property
    def replica_regions(self) -> list[str]:
        return [r for r in self.regions if r != self.primary_region]

    def region(self, name: str) -> RegionConfig:
        try:
            return self.regions[name]
        except KeyError:
            raise ConfigError(
                f"unknown region {name!r}; configured regions: {', '.join(sorted(self.regions))}"
            ) from None

    def read_order(self, region: str) -> list[str]:
        """The region, then its read fallbacks nearest first."""
        fallbacks = self.region(region).read_fallbacks
        if fallbacks is None:
            fallbacks = [r for r in self.regions if r != region]
        return [region, *fallbacks]

    def bootstrap_servers_for(self, region: str) -> str:
        return self.region(region).kafka_bootstrap_servers or self.kafka.bootstrap_servers

    def consumer_group(self, region: str) -> str:
        """The Kafka consumer group of a region's workers (one per project and region)."""
        return f"{self.worker.consumer_group_prefix}-{self.project}-{region}"

    def topic_for(self, feature_view: str) -> str:
        """The view's Kafka topic (``replicator.core.topics``; ConfigError if too long)."""
        return topic_name(self.kafka.topic_prefix, self.project, feature_view)


class _EnvWithoutRegions(EnvSettingsSource):
    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        values.pop("regions", None)
        return values


def resolve_config_path(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    if path:
        return Path(path)
    if environ.get(CONFIG_ENV_VAR):
        return Path(environ[CONFIG_ENV_VAR])
    return DEFAULT_CONFIG_PATH


def find_config_path(explicit: str | Path | None = None) -> Path:
    """Like ``resolve_config_path``, but the default is looked for in the current directory
    and then in each parent, so Feast commands run inside a repo find the topology."""
    path = resolve_config_path(explicit)
    if explicit or path != DEFAULT_CONFIG_PATH or path.exists():
        return path
    for parent in Path.cwd().parents:
        if (parent / DEFAULT_CONFIG_PATH).exists():
            return parent / DEFAULT_CONFIG_PATH
    return path


def load_topology(path: str | Path | None = None) -> Topology:
    """Read the topology file, apply environment overrides, validate.

    Raises ``ConfigError`` naming the file, the field and what is wrong.
    """
    config_path = resolve_config_path(path)
    data = _read_yaml(config_path)
    try:
        return Topology(**_normalise_region_env(data))
    except ValidationError as exc:
        raise ConfigError(_describe(config_path, exc)) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        return read_yaml_mapping(path, ConfigError)
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found (pass --config PATH or set {CONFIG_ENV_VAR})"
        ) from None


def read_yaml_mapping(path: Path, error: type[Exception]) -> dict[str, Any]:
    """A YAML file's top-level mapping (empty file: ``{}``). Raises ``FileNotFoundError``
    when it is missing, and ``error`` with the line and column when it is not valid YAML."""
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}: invalid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def _normalise_region_env(data: dict[str, Any]) -> dict[str, Any]:
    """Let ``REPLICATOR_REGIONS__EU_WEST_1__...`` reach region ``eu-west-1``.

    Environment variable names cannot hold ``-``, so pydantic-settings would create a new
    region ``eu_west_1``. We rewrite such variables' region part to the file's spelling.
    """
    regions = data.get("regions")
    if not isinstance(regions, dict):
        return data
    by_env_name = {name.replace("-", "_").upper(): name for name in regions}
    prefix = f"{ENV_PREFIX}REGIONS__"
    overrides: dict[str, Any] = {}
    for key, value in os.environ.items():
        if not key.upper().startswith(prefix):
            continue
        region_part, _, rest = key[len(prefix) :].partition("__")
        region = by_env_name.get(region_part.upper())
        if region is None or not rest:
            continue
        node = overrides.setdefault(region, {})
        parts = rest.lower().split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    if not overrides:
        return data
    merged = dict(data)
    merged["regions"] = {
        name: _deep_merge(cfg, overrides.get(name, {})) for name, cfg in regions.items()
    }
    return merged


def _deep_merge(base: Any, override: dict[str, Any]) -> Any:
    if not isinstance(base, dict):
        return override or base
    out = dict(base)
    for key, value in override.items():
        out[key] = _deep_merge(out.get(key), value) if isinstance(value, dict) else value
    return out


def _describe(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        got = err.get("input")
        secret = any(word in field for word in ("password", "secret"))
        hide = secret or isinstance(got, dict) or err["type"] == "missing"
        shown = "" if hide else f" (got {got!r})"
        lines.append(f"  {field}: {err['msg']}{shown}")
    lines.append(f"  (fields may also come from {ENV_PREFIX}* environment variables)")
    return "\n".join(lines)
