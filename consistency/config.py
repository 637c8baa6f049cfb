"""The checker's settings: one YAML file plus ``CONSISTENCY_*`` environment overrides.

The file is found in this order: ``--config``, ``$CONSISTENCY_CONFIG``, then
``infra/consistency.yaml`` under the current directory (a missing default file means
defaults). Any field can be overridden from the environment with the prefix
``CONSISTENCY_`` and ``__`` between nested names, for example
``CONSISTENCY_BOUNDS__MAX_STALENESS_SECONDS=3``,
``CONSISTENCY_BOUNDS__MAX_VERSION_SKEW_SECONDS=1800``,
``CONSISTENCY_WEBHOOK__URL=https://alerts.example.com/hook``,
``CONSISTENCY_EGRESS__DEFAULT_USD_PER_GB=0.09`` or
``CONSISTENCY_BOUNDS__REGIONS__EU_WEST_1__MAX_DIVERGENCE_RATIO=0.01`` (region names match
with ``-`` and ``_`` alike, case-insensitively; the environment wins over the file).

The topology (regions, Kafka, Redis users) is the replicator's ``infra/topology.yaml``,
named by ``topology`` here or ``--topology``. This module is the only one of the checker
that reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from consistency.errors import SettingsError
from replicator.config import describe_invalid, read_yaml_mapping
from replicator.config_security import ServerTlsSettings

ENV_PREFIX = "CONSISTENCY_"
CONFIG_ENV_VAR = "CONSISTENCY_CONFIG"
DEFAULT_CONFIG_PATH = Path("infra/consistency.yaml")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BoundValues(_Section):
    """Bounds; a field left out inherits from the level above, ``null`` switches it off."""

    max_staleness_seconds: float | None = Field(default=None, gt=0)
    max_divergence_ratio: float | None = Field(default=None, ge=0)
    max_freshness_seconds: float | None = Field(default=None, gt=0)


class RegionBounds(BoundValues):
    max_version_skew_seconds: float | None = Field(default=None, gt=0)
    """Per region only: versions are per region, not per feature view."""
    feature_views: dict[str, BoundValues] = Field(default_factory=dict)


class ResolvedBounds(_Section):
    max_staleness_seconds: float | None
    max_divergence_ratio: float | None
    max_freshness_seconds: float | None


def _norm(name: str) -> str:
    return name.replace("-", "_").lower()


class Bounds(_Section):
    """Defaults, then per feature view, per region, per region x feature view (most specific
    wins)."""

    max_staleness_seconds: float | None = Field(default=5.0, gt=0)
    max_divergence_ratio: float | None = Field(default=0.001, ge=0)
    max_freshness_seconds: float | None = Field(default=None, gt=0)
    max_version_skew_seconds: float | None = Field(default=900.0, gt=0)
    """How long a region may run another registry or model version than the reference
    (per region, not per view); null switches it off."""
    feature_views: dict[str, BoundValues] = Field(default_factory=dict)
    regions: dict[str, RegionBounds] = Field(default_factory=dict)

    def resolve(self, region: str, feature_view: str) -> ResolvedBounds:
        values: dict[str, float | None] = {
            name: getattr(self, name) for name in ResolvedBounds.model_fields
        }
        layers: list[BoundValues] = []
        if feature_view in self.feature_views:
            layers.append(self.feature_views[feature_view])
        for region_bounds in self._region_layers(region):
            layers.append(region_bounds)
            if feature_view in region_bounds.feature_views:
                layers.append(region_bounds.feature_views[feature_view])
        for layer in layers:
            for name in layer.model_fields_set & set(values):
                values[name] = getattr(layer, name)
        return ResolvedBounds(**values)

    def max_version_skew(self, region: str) -> float | None:
        value = self.max_version_skew_seconds
        for layer in self._region_layers(region):
            if "max_version_skew_seconds" in layer.model_fields_set:
                value = layer.max_version_skew_seconds
        return value

    def _region_layers(self, region: str) -> list[RegionBounds]:
        # The file's spelling first, the environment's (underscores) last: it wins.
        names = sorted(self.regions, key=lambda n: (n != region, "-" not in n))
        return [self.regions[n] for n in names if _norm(n) == _norm(region)]


class HysteresisSettings(_Section):
    violate_after: int = Field(default=2, ge=1)
    """Evaluations in a row above the bound before VIOLATED."""
    recover_after: int = Field(default=3, ge=1)
    """Evaluations in a row at or below ``bound * recover_ratio`` before RECOVERED."""
    recover_ratio: float = Field(default=0.8, gt=0, le=1)


class ScheduleSettings(_Section):
    staleness_seconds: float = Field(default=2.0, gt=0)
    sampled_seconds: float = Field(default=60.0, gt=0)
    full_cron: str | None = "17 3 * * *"
    """Crontab expression (5 fields, checker's local time zone); null disables it."""
    read_timeout_seconds: float = Field(default=3.0, gt=0)
    """Each region's reads, and each Kafka call, of a staleness round must answer within
    this; a region that does not is unmeasurable this round (a violation), the others are
    measured all the same."""


class SampleSettings(_Section):
    size: int = Field(default=1000, ge=1)
    confidence: float = Field(default=0.95, gt=0, lt=1)
    seed: int | None = None


class FullSettings(_Section):
    bucket_hex_digits: int = Field(default=3, ge=1, le=5)
    """16 ** digits buckets per feature view (3: 4,096)."""
    scan_count: int = Field(default=1000, ge=10)
    """Keys per SCAN step inside Redis (one script call; bounds how long Redis is busy)."""


class WebhookSettings(_Section):
    url: str | None = None
    timeout_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    initial_backoff_seconds: float = Field(default=0.5, gt=0)
    max_backoff_seconds: float = Field(default=30.0, gt=0)
    queue_size: int = Field(default=1000, ge=1)


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)
    history_points: int = Field(default=900, ge=10)
    """Staleness samples kept for the status page (900 x 2 s = 30 minutes)."""
    tls: ServerTlsSettings = ServerTlsSettings()
    """HTTPS for every endpoint (cert_file, key_file; client_ca_file for mutual TLS), e.g.
    ``CONSISTENCY_SERVER__TLS__CERT_FILE``; plain HTTP unless set (docs/security.md)."""


class EgressSettings(_Section):
    """Prices of cross-region transfer, for the monthly cost estimate (docs/consistency.md,
    "Egress and cost"). Prices are per GB as clouds bill them (2**30 bytes)."""

    source_region: str | None = None
    """Where the Kafka brokers run, so where every region fetches from (default: the
    primary region)."""
    default_usd_per_gb: float = Field(default=0.02, ge=0)
    """Any pair of regions not listed in ``usd_per_gb`` (AWS inter-region list price)."""
    same_region_usd_per_gb: float = Field(default=0.0, ge=0)
    """A region fetching from brokers in its own region."""
    usd_per_gb: dict[str, dict[str, float]] = Field(default_factory=dict)
    """From region -> to region -> USD per GB, e.g. ``us-east-1: {ap-southeast-1: 0.02}``."""

    def price(self, source: str, region: str) -> float:
        """USD per GB carried from ``source`` to ``region`` (names match with ``-`` and
        ``_`` alike, case-insensitively)."""
        for src, prices in self.usd_per_gb.items():
            if _norm(src) != _norm(source):
                continue
            for dst, price in prices.items():
                if _norm(dst) == _norm(region):
                    return price
        if _norm(source) == _norm(region):
            return self.same_region_usd_per_gb
        return self.default_usd_per_gb


class ConsistencySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        env_parse_none_str="null",
    )

    topology: Path | None = None
    """The replicator's topology file (default: $REPLICATOR_CONFIG, else infra/topology.yaml)."""
    reference_region: str | None = None
    """Region every other region is compared with (default: the primary region)."""
    bounds: Bounds = Bounds()
    hysteresis: HysteresisSettings = HysteresisSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    sample: SampleSettings = SampleSettings()
    full: FullSettings = FullSettings()
    webhook: WebhookSettings = WebhookSettings()
    server: ServerSettings = ServerSettings()
    egress: EgressSettings = EgressSettings()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, schedule: ScheduleSettings) -> ScheduleSettings:
        if schedule.full_cron is not None and len(schedule.full_cron.split()) != 5:
            raise ValueError(f"full_cron must have 5 fields, got {schedule.full_cron!r}")
        return schedule

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)  # the YAML arrives as init kwargs; env wins


def resolve_settings_path(
    path: str | Path | None, environ: Mapping[str, str] | None = None
) -> tuple[Path, bool]:
    """(path, explicit): an explicit path must exist, the default may be absent."""
    environ = os.environ if environ is None else environ
    if path:
        return Path(path), True
    if environ.get(CONFIG_ENV_VAR):
        return Path(environ[CONFIG_ENV_VAR]), True
    return DEFAULT_CONFIG_PATH, False


def topology_path(settings: ConsistencySettings, override: str | Path | None) -> Path | None:
    """The topology file to load: ``--topology``, else the settings' ``topology``; None lets
    the replicator's own lookup ($REPLICATOR_CONFIG, infra/topology.yaml) decide."""
    if override:
        return Path(override)
    return settings.topology


def load_settings(path: str | Path | None = None) -> ConsistencySettings:
    """Read the settings file, apply environment overrides, validate.

    Raises ``SettingsError`` naming the file, the field and what is wrong.
    """
    config_path, explicit = resolve_settings_path(path)
    data = _read_yaml(config_path, required=explicit)
    try:
        return ConsistencySettings(**data)
    except ValidationError as exc:
        raise SettingsError(
            describe_invalid(config_path, exc, what="consistency settings", env_prefix=ENV_PREFIX)
        ) from None


def _read_yaml(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        data = read_yaml_mapping(path, SettingsError)
    except FileNotFoundError:
        if not required:
            return {}
        raise SettingsError(
            f"{path}: settings file not found (pass --config PATH or set {CONFIG_ENV_VAR})"
        ) from None
    section = data.get("consistency", data)
    if not isinstance(section, dict):
        raise SettingsError(f"{path}: 'consistency' must be a mapping")
    return section
