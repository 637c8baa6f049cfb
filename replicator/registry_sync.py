"""Feast registry versions to every region's bucket: immutable objects, manifest last.

Layout in every bucket (``<p>`` is the Feast project):

    feast/<p>/registry/<version>.db   immutable registry versions (version = sha256[:16])
    feast/<p>/manifest.json           the version live in this region, its sha256, the schema
                                      fingerprint and field keys of every view, the fingerprints
                                      of each view's recent schema versions (admitted), the
                                      previous version
    feast/<p>/primary/registry.db     (primary bucket only) the registry the primary Feast writes

A release writes the version object, reads it back and checks its SHA-256, and only then
replaces the manifest: a reader that follows the manifest never sees a half-written or
corrupted version. Versions stay in the primary bucket, so any earlier one can be released
again (rollback). The copy regions get marks every view servable: what a region serves is
decided by what replication put in its Redis, not by the primary's materialization state.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feast import FeatureView, OnDemandFeatureView, StreamFeatureView
from feast.feature_view import FeatureViewState
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

from replicator import feast_layout
from replicator.adapters.s3 import region_stores
from replicator.config import Topology
from replicator.core import schema_history
from replicator.core.feast_settings import MANIFEST_FIELD, FeastSettings
from replicator.core.keys import manifest_key, primary_registry_key, registry_version_key
from replicator.core.ports import ObjectStore
from replicator.errors import ConfigError, RolloutInProgress

log = logging.getLogger(__name__)

_NOT_SERVABLE = {
    FeatureViewState.CREATED.value,
    FeatureViewState.GENERATED.value,
    FeatureViewState.MATERIALIZING.value,
}


@dataclass(frozen=True)
class RegistryVersion:
    version: str
    body: bytes
    manifest: dict[str, Any]


@dataclass(frozen=True)
class SyncResult:
    version: str
    regions_updated: list[str]
    regions_current: list[str]


def regional_form(registry_bytes: bytes) -> bytes:
    """The registry as regions serve it: every feature view in a servable state."""
    registry = RegistryProto()
    registry.ParseFromString(registry_bytes)
    for view in registry.feature_views:
        if view.meta.state in _NOT_SERVABLE:
            view.meta.state = FeatureViewState.AVAILABLE_ONLINE.value
    return registry.SerializeToString(deterministic=True)


def build_manifest(registry_bytes: bytes, project: str, settings: FeastSettings) -> dict[str, Any]:
    """What a region needs of a registry version; ``settings``: the primary's Feast settings
    (view names are versioned when it says so)."""
    versioning = settings.enable_online_feature_view_versioning
    registry = RegistryProto()
    registry.ParseFromString(registry_bytes)
    views = online_views(registry, project)
    digest = hashlib.sha256(registry_bytes).hexdigest()
    schemas = feast_layout.view_schemas(views, versioning)
    live = {name: schema["fingerprint"] for name, schema in schemas.items()}
    return {
        "project": project,
        "version": digest[:16],
        "sha256": digest,
        "registry_key": registry_version_key(project, digest[:16]),
        # view -> schema fingerprint of this version.
        schema_history.LIVE_FIELD: live,
        # view -> fingerprints workers admit, newest first: a release adds those the region
        # admitted before (core/schema_history.py).
        schema_history.MANIFEST_FIELD: schema_history.carried(live, None),
        # view -> join keys, Redis key prefix (hex), feature -> field key (hex).
        "views": schemas,
        # The primary's Feast settings that shape Redis bytes (region feast-config reads them).
        MANIFEST_FIELD: settings.as_manifest(),
    }


def admitted_fingerprints(manifest: dict[str, Any] | None, view: str) -> frozenset[str]:
    """The schema fingerprints of ``view`` (its Redis name, ``_v<N>`` when versioned) whose
    rows a region with ``manifest`` applies (its recent schema versions,
    ``core.schema_history``); empty for no manifest, no such view or an unreadable one."""
    try:
        return frozenset(schema_history.admitted(manifest or {}).get(view, ()))
    except (TypeError, AttributeError, ValueError):
        return frozenset()


def online_views(registry: RegistryProto, project: str) -> list[Any]:
    """Every view of ``project`` whose rows Feast writes to the online store: feature views,
    stream feature views (``store.push``) and on-demand feature views with
    ``write_to_online_store`` (their transformations are not loaded)."""
    views: list[Any] = [
        FeatureView.from_proto(p) for p in registry.feature_views if p.spec.project == project
    ]
    views += [
        StreamFeatureView.from_proto(p, skip_udf=True)
        for p in registry.stream_feature_views
        if p.spec.project == project
    ]
    views += [
        OnDemandFeatureView.from_proto(p, skip_udf=True)
        for p in registry.on_demand_feature_views
        if p.spec.project == project and p.spec.write_to_online_store
    ]
    return views


class RegistryReleaser:
    """Snapshots the primary's registry into versions and releases versions to regions.

    Every method may raise ``ObjectStoreUnavailable`` (S3 unreachable: retry) or
    ``ObjectStoreRefused`` (S3 refused: fix the bucket or credentials).
    """

    def __init__(
        self,
        topology: Topology,
        *,
        settings: FeastSettings | None = None,
        stores: Callable[[str], ObjectStore] | None = None,
    ) -> None:
        """``settings``: the primary's Feast settings (``primary_repo``); None keeps those
        of the primary region's live manifest (a rollout, a rollback), else Feast's
        defaults."""
        self.topology = topology
        self.project = topology.project
        self._settings = settings
        self.store = stores or region_stores(topology)
        """``store(region)``: the region's bucket."""

    def bucket(self, region: str) -> str:
        return self.store(region).bucket

    # Snapshots ------------------------------------------------------------------------------
    def snapshot(self, source: Path | None = None) -> RegistryVersion:
        """Turn the primary's current registry into a version kept in the primary bucket."""
        primary = self.topology.primary_region
        if source is None:
            raw = self._get(primary, primary_registry_key(self.project))
            if raw is None:
                raise ConfigError(
                    f"no registry at s3://{self.bucket(primary)}/"
                    f"{primary_registry_key(self.project)}: run `feast apply` at the primary first"
                )
        else:
            try:
                raw = source.read_bytes()
            except FileNotFoundError:
                raise ConfigError(
                    f"{source}: no registry yet: run `feast apply` in the feature repo first"
                ) from None
        body = regional_form(raw)
        manifest = build_manifest(body, self.project, self.settings())
        version = RegistryVersion(manifest["version"], body, manifest)
        key = registry_version_key(self.project, version.version)
        if self._get(primary, key) is None:
            self.store(primary).put(key, body)
        return version

    def load(self, version: str) -> RegistryVersion:
        """A version kept in the primary bucket, for a rollout or a rollback."""
        body = self._get(self.topology.primary_region, registry_version_key(self.project, version))
        if body is None:
            raise ConfigError(f"registry version {version} is not in the primary bucket")
        return RegistryVersion(version, body, build_manifest(body, self.project, self.settings()))

    def settings(self) -> FeastSettings:
        """The primary's Feast settings this releaser writes into manifests."""
        if self._settings is None:
            live = self.live(self.topology.primary_region)
            self._settings = FeastSettings.from_manifest(live) or FeastSettings()
        return self._settings

    # Releases ------------------------------------------------------------------------------
    def live(self, region: str) -> dict[str, Any] | None:
        """The region's manifest, or None when it has none or an unreadable one (a release
        then replaces it)."""
        raw = self._get(region, manifest_key(self.project))
        if raw is None:
            return None
        try:
            manifest = json.loads(raw)
        except ValueError:
            log.warning(
                "%s is not valid JSON", self.store(region).where(manifest_key(self.project))
            )
            return None
        return manifest if isinstance(manifest, dict) else None

    def verified(self, region: str) -> bool:
        """The region's live version object exists and matches its manifest's checksum."""
        manifest = self.live(region)
        if manifest is None:
            return False
        body = self._get(region, manifest["registry_key"])
        return body is not None and hashlib.sha256(body).hexdigest() == manifest["sha256"]

    def release(self, version: RegistryVersion, regions: Iterable[str]) -> SyncResult:
        updated, current = [], []
        for region in regions:
            manifest = self.live(region)
            if manifest and manifest["version"] == version.version and self.verified(region):
                current.append(region)
                continue
            self._put_verified(region, version)
            previous = manifest["version"] if manifest else None
            if previous == version.version:  # a repair: keep the real previous version
                previous = manifest.get("previous_version") if manifest else None
            body = {
                **version.manifest,
                schema_history.MANIFEST_FIELD: schema_history.carried(
                    version.manifest[schema_history.LIVE_FIELD], manifest
                ),
                "previous_version": previous,
                "released_at": datetime.now(UTC).isoformat(),
            }
            # The manifest goes last: readers follow it to a complete, verified version.
            self.store(region).put(
                manifest_key(self.project),
                json.dumps(body, indent=2).encode(),
                content_type="application/json",
            )
            updated.append(region)
            log.info(
                "registry %s live in %s",
                version.version,
                region,
                extra={"event": "registry_released", "region": region, "version": version.version},
            )
        return SyncResult(version.version, updated, current)

    def _put_verified(self, region: str, version: RegistryVersion) -> None:
        key = registry_version_key(self.project, version.version)
        self.store(region).put(key, version.body)
        stored = self._get(region, key)
        if stored is None or hashlib.sha256(stored).hexdigest() != version.manifest["sha256"]:
            raise ConfigError(f"registry {version.version} did not store intact in {region}")

    def _get(self, region: str, key: str) -> bytes | None:
        return self.store(region).get(key)


def sync_once(
    topology: Topology, registry_path: Path | None = None, *, repo: Path | None = None
) -> SyncResult:
    """Snapshot the primary's registry and release it to every region.

    ``repo``: the primary's Feast repo (the directory of its ``feature_store.yaml``): its
    registry (when a local file, and ``registry_path`` is not given) and its Feast settings
    (``FeastSettings``) are used. Without it, ``registry_path`` or the primary's registry
    object in S3, and the settings of the live manifest. Raises ``ConfigError`` for an
    unreadable ``feature_store.yaml`` (naming the field) or a missing registry, and
    ``RolloutInProgress`` while a registry rollout runs (releasing everywhere would skip its
    canary; nothing is released).
    """
    from replicator.rollout import RolloutLog  # rollout.py builds on this module

    settings = None
    if repo is not None:
        settings, repo_registry = primary_repo(repo)
        registry_path = registry_path or repo_registry
    rollout = RolloutLog(topology).in_progress("registry")
    if rollout is not None:
        raise RolloutInProgress(
            f"{rollout.running_text()}: a sync now would release to every region at once and "
            "skip its canary, so nothing was released",
            rollout=rollout.id,
        )
    releaser = RegistryReleaser(topology, settings=settings)
    return releaser.release(releaser.snapshot(registry_path), topology.regions)


FEATURE_STORE_YAML = "feature_store.yaml"


def primary_repo(repo: Path) -> tuple[FeastSettings, Path | None]:
    """The Feast settings and local registry file of the primary's repo (None: the registry
    is not a local file, e.g. ``s3://``: the primary bucket's object is used)."""
    from feast.repo_config import FeastConfigError, load_repo_config

    try:
        config = load_repo_config(repo, repo / FEATURE_STORE_YAML)
    except FileNotFoundError:
        raise ConfigError(f"{repo / FEATURE_STORE_YAML}: not found (pass --repo DIR)") from None
    except FeastConfigError as exc:
        raise ConfigError(str(exc)) from None
    return FeastSettings.from_repo_config(config), registry_file(config, repo)


def registry_file(config: Any, repo: Path | None = None) -> Path | None:
    """The local registry file of a Feast ``RepoConfig`` (a relative path is taken from
    ``repo``, else the config's ``repo_path``); None when the registry is not a local file
    (e.g. ``s3://``: the primary bucket's object is the registry)."""
    path = str(config.registry.path)
    if "://" in path:
        return None
    registry = Path(path)
    base = repo if repo is not None else getattr(config, "repo_path", None)
    return registry if registry.is_absolute() or base is None else Path(base) / registry
