"""Model snapshots through object storage: publish once, release per region, roll back.

Layout (``<n>`` model name, ``<v>`` version):

    models/<n>/<v>/<files...>        the files, as published (any files, any depth)
    models/<n>/<v>/manifest.json     every file's size and SHA-256, who published it and when
    models/<n>/live.json             (per region) the version live there and the one before

``publish`` uploads to the primary bucket. ``release`` copies a version to a region, checks
every file's SHA-256 there, and only then moves ``live.json``: an inference service that
loads what ``live.json`` names (``fetch``) always gets a complete, verified version.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from replicator.adapters.s3 import region_stores
from replicator.config import Topology
from replicator.core.ports import ObjectStore
from replicator.errors import ConfigError, ReplicatorError

log = logging.getLogger(__name__)


class ModelNotAvailable(ReplicatorError):
    pass


def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    manifest: dict[str, Any]


class ModelStore:
    """Every method may raise ``ObjectStoreUnavailable`` (S3 unreachable: retry) or
    ``ObjectStoreRefused`` (S3 refused: fix the bucket or credentials)."""

    def __init__(
        self, topology: Topology, *, stores: Callable[[str], ObjectStore] | None = None
    ) -> None:
        self.topology = topology
        self._store = stores or region_stores(topology)

    # Publishing at the primary ------------------------------------------------------------
    def publish(self, path: Path, name: str, version: str) -> ModelVersion:
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise ConfigError(f"{path}: no files to publish")
        if path.is_dir() and (path / "manifest.json").is_file():
            raise ConfigError(f"{path}: a top-level manifest.json would clash with ours: rename it")
        primary = self.topology.primary_region
        if self._get(primary, _manifest_key(name, version)) is not None:
            raise ConfigError(
                f"model {name} version {version} exists already: versions are immutable"
            )
        entries = {}
        for file in files:
            relative = file.name if path.is_file() else file.relative_to(path).as_posix()
            body = file.read_bytes()
            self._store(primary).put(_file_key(name, version, relative), body)
            entries[relative] = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        manifest = {
            "name": name,
            "version": version,
            "files": entries,
            "published_by": who(),
            "published_at": datetime.now(UTC).isoformat(),
        }
        self._put_json(primary, _manifest_key(name, version), manifest)
        return ModelVersion(name, version, manifest)

    def load(self, name: str, version: str) -> ModelVersion:
        manifest = self._get_json(self.topology.primary_region, _manifest_key(name, version))
        if manifest is None:
            raise ConfigError(f"model {name} version {version} was never published")
        return ModelVersion(name, version, manifest)

    # Releasing to regions ---------------------------------------------------------------------
    def release(self, model: ModelVersion, regions: Iterable[str]) -> list[str]:
        """Make ``model`` live in each region; returns the regions that changed."""
        changed = []
        primary = self.topology.primary_region
        for region in regions:
            live = self.live(region, model.name)
            if live and live["version"] == model.version and self.verified(region, model.name):
                continue
            for relative, entry in model.manifest["files"].items():
                key = _file_key(model.name, model.version, relative)
                if region != primary:
                    body = self._get(primary, key)
                    if body is None:
                        raise ModelNotAvailable(f"{key} is missing from the primary bucket")
                    self._store(region).put(key, body)
                stored = self._get(region, key)
                if stored is None or hashlib.sha256(stored).hexdigest() != entry["sha256"]:
                    raise ModelNotAvailable(f"{key} did not store intact in {region}")
            self._put_json(region, _manifest_key(model.name, model.version), model.manifest)
            previous = live["version"] if live else None
            if previous == model.version and live:
                previous = live.get("previous_version")
            # live.json goes last: a loader following it finds every file verified.
            self._put_json(
                region,
                _live_key(model.name),
                {
                    "name": model.name,
                    "version": model.version,
                    "previous_version": previous,
                    "released_at": datetime.now(UTC).isoformat(),
                    "released_by": who(),
                },
            )
            changed.append(region)
            log.info("model %s %s live in %s", model.name, model.version, region)
        return changed

    def live(self, region: str, name: str) -> dict[str, Any] | None:
        return self._get_json(region, _live_key(name))

    def verified(self, region: str, name: str) -> bool:
        live = self.live(region, name)
        if live is None:
            return False
        manifest = self._get_json(region, _manifest_key(name, live["version"]))
        if manifest is None:
            return False
        for relative, entry in manifest["files"].items():
            body = self._get(region, _file_key(name, live["version"], relative))
            if body is None or hashlib.sha256(body).hexdigest() != entry["sha256"]:
                return False
        return True

    def fetch(self, region: str, name: str, dest: Path) -> Path:
        """Download the version live in ``region`` into ``dest/<version>``, verified."""
        live = self.live(region, name)
        if live is None:
            raise ModelNotAvailable(f"no version of model {name} is live in {region}")
        version = live["version"]
        manifest = self._get_json(region, _manifest_key(name, version)) or {"files": {}}
        target = dest / version
        for relative, entry in manifest["files"].items():
            body = self._get(region, _file_key(name, version, relative))
            if body is None or hashlib.sha256(body).hexdigest() != entry["sha256"]:
                raise ModelNotAvailable(f"{name} {version}/{relative} is damaged in {region}")
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(body)
        return target

    # Storage helpers -----------------------------------------------------------------------
    def _get(self, region: str, key: str) -> bytes | None:
        return self._store(region).get(key)

    def _get_json(self, region: str, key: str) -> dict[str, Any] | None:
        body = self._get(region, key)
        if body is None:
            return None
        try:
            return dict(json.loads(body))
        except (ValueError, TypeError):
            raise ModelNotAvailable(
                f"{self._store(region).where(key)} is not a JSON object: release the model again"
            ) from None

    def _put_json(self, region: str, key: str, value: dict[str, Any]) -> None:
        self._store(region).put(
            key, json.dumps(value, indent=2).encode(), content_type="application/json"
        )


def _file_key(name: str, version: str, relative: str) -> str:
    return f"models/{name}/{version}/{relative}"


def _manifest_key(name: str, version: str) -> str:
    return f"models/{name}/{version}/manifest.json"


def _live_key(name: str) -> str:
    return f"models/{name}/live.json"
