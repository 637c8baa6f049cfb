"""Topology configuration: one YAML file plus environment overrides.

The file is found in this order: the ``--config`` option, ``$REPLICATOR_CONFIG``, then
``infra/topology.yaml`` under the current directory. A file may start from another with
``extends: PATH`` (relative to the file): its mappings are merged key by key over that one's,
so a variant such as ``infra/insecure/topology.yaml`` holds only what differs. Relative paths
of files (every ``*_file`` setting: CA bundles, certificates, keys, secrets) are relative to
the directory of the file that names them, as in a kubeconfig, so every process (Feast's CLI
changes into its repo) finds the same files. Any field can be overridden from the
environment with the prefix ``REPLICATOR_`` and ``__`` between nested names, for example
``REPLICATOR_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or
``REPLICATOR_REGIONS__EU_WEST_1__REDIS__PORT=6380`` (region names are matched with ``-``
and ``_`` treated alike, case-insensitively).

This is the only module that reads ``os.environ``; everything else receives a ``Topology``.
Sections: the regions, Redis, S3 and Kafka here; the worker, reads, snapshots and local stack
in ``replicator.config_sections``; TLS, SASL and secrets in ``replicator.config_security``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from replicator.config_sections import (
    ReadSettings,
    Section,
    SnapshotSettings,
    StackSettings,
    WorkerSettings,
)
from replicator.config_security import (
    Credentials,
    KafkaSecurity,
    KafkaUsers,
    ServerTlsSettings,
    TlsSettings,
    load_secret_files,
)
from replicator.core.topics import topic_name
from replicator.errors import ConfigError

ENV_PREFIX = "REPLICATOR_"
CONFIG_ENV_VAR = "REPLICATOR_CONFIG"
DEFAULT_CONFIG_PATH = Path("infra/topology.yaml")
INSECURE_CONFIG_PATH = Path("infra/insecure/topology.yaml")
"""The local stack in plaintext, for debugging only (``--insecure``; docs/local-stack.md)."""
EXTENDS_KEY = "extends"


class RedisUser(Credentials):
    """A Redis ACL user: ``password`` or ``password_file`` (mode 0600)."""


class RedisEndpoint(Section):
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
    checker: RedisUser | None = None
    """The consistency checker: read commands and its read-only digest script (EVALSHA_RO),
    no write. Unset: the checker logs in as ``writer`` and warns (docs/security.md)."""

    def users(self) -> dict[str, RedisUser]:
        """The configured users by role (``writer``, ``reader``, ``admin``, ``checker``)."""
        roles = {"writer": self.writer, "reader": self.reader, "admin": self.admin}
        return roles | ({"checker": self.checker} if self.checker is not None else {})

    @model_validator(mode="after")
    def _own_checker(self) -> RedisEndpoint:
        if self.checker is None:
            return self
        for role, user in self.users().items():
            if role != "checker" and user.username == self.checker.username:
                raise ValueError(
                    f"checker: user {user.username!r} is already the {role}; the checker "
                    "needs a user of its own (its ACL differs, docs/security.md)"
                )
        return self


class S3Location(Section):
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


class KafkaSettings(Section):
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


class RegionConfig(Section):
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
    health_tls: ServerTlsSettings = ServerTlsSettings()
    """TLS of ``replicator region health R`` (plain HTTP unless set; docs/security.md)."""

    def subscribes_to(self, feature_view: str) -> bool:
        return "*" in self.feature_views or feature_view in self.feature_views


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
    data = read_topology_document(config_path)
    try:
        return Topology(**_normalise_region_env(data))
    except ValidationError as exc:
        raise ConfigError(describe_invalid(config_path, exc)) from None


def read_topology_document(path: Path, extended_by: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The topology file's mapping as ``load_topology`` reads it, before the environment:
    merged over the file it ``extends`` (recursively), relative ``*_file`` paths made absolute.
    What to write elsewhere for a copy that finds the same files. Raises ``ConfigError``."""
    try:
        data = read_yaml_mapping(path, ConfigError)
    except FileNotFoundError:
        where = f" (extended by {extended_by[-1]})" if extended_by else ""
        raise ConfigError(
            f"{path}: config file not found{where} (pass --config PATH or set {CONFIG_ENV_VAR})"
        ) from None
    data = _anchor_file_paths(data, path.parent.resolve())
    base = data.pop(EXTENDS_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: {EXTENDS_KEY} must be a file path (got {base!r})")
    base_path = path.parent / base
    chain = (*extended_by, path)
    if base_path.resolve() in {p.resolve() for p in chain}:
        raise ConfigError(f"{path}: {EXTENDS_KEY} {base!r} makes a cycle")
    return _deep_merge(read_topology_document(base_path, chain), data)


def _anchor_file_paths(node: Any, directory: Path) -> Any:
    """``node`` with every relative ``*_file`` string value made absolute under ``directory``."""
    if isinstance(node, list):
        return [_anchor_file_paths(item, directory) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[Any, Any] = {}
    for key, value in node.items():
        if isinstance(key, str) and key.endswith("_file") and isinstance(value, str) and value:
            out[key] = value if Path(value).is_absolute() else os.path.normpath(directory / value)
        else:
            out[key] = _anchor_file_paths(value, directory)
    return out


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


def describe_invalid(
    path: Path, exc: ValidationError, *, what: str = "configuration", env_prefix: str = ENV_PREFIX
) -> str:
    """One line per invalid field of the file at ``path`` (its value shown unless it is a
    mapping, missing, or a password or secret), then where else fields may come from."""
    lines = [f"{path}: invalid {what}"]
    for err in exc.errors():
        field = ".".join(str(part) for part in err["loc"]) or "(top level)"
        got = err.get("input")
        secret = any(word in field for word in ("password", "secret"))
        hide = secret or isinstance(got, dict) or err["type"] == "missing"
        shown = "" if hide else f" (got {got!r})"
        lines.append(f"  {field}: {err['msg']}{shown}")
    lines.append(f"  (fields may also come from {env_prefix}* environment variables)")
    return "\n".join(lines)
