"""Copies the primary's Feast registry to every region's bucket, with a schema manifest.

Per region: the registry object first, the manifest last, so a reader that trusts the
manifest never sees a half-written version. The manifest names the registry's sha256, the
schema fingerprint of every feature view (workers admit only rows whose fingerprint it lists)
and each view's Redis field keys (the consistency checker compares views with them), so
nothing in a region needs Feast to read it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from feast import FeatureView
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

from replicator import feast_layout
from replicator.adapters.s3 import s3_client
from replicator.adapters.s3_catalog import manifest_key, registry_key
from replicator.config import Topology
from replicator.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncResult:
    version: str
    regions_updated: list[str]
    regions_current: list[str]


def build_manifest(registry_bytes: bytes, project: str, versioning: bool) -> dict[str, Any]:
    registry = RegistryProto()
    registry.ParseFromString(registry_bytes)
    views = [
        FeatureView.from_proto(proto)
        for proto in registry.feature_views
        if proto.spec.project == project
    ]
    digest = hashlib.sha256(registry_bytes).hexdigest()
    schemas = feast_layout.view_schemas(views, versioning)
    return {
        "project": project,
        "version": digest[:16],
        "sha256": digest,
        "synced_at": datetime.now(UTC).isoformat(),
        # view -> schema fingerprint: what workers admit.
        "feature_views": {name: schema["fingerprint"] for name, schema in schemas.items()},
        # view -> join keys, Redis key prefix (hex), feature -> field key (hex).
        "views": schemas,
    }


def sync_once(topology: Topology, registry_path: Path, *, versioning: bool = False) -> SyncResult:
    try:
        registry_bytes = registry_path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"{registry_path}: no registry yet: run `feast apply` in the feature repo first"
        ) from None
    manifest = build_manifest(registry_bytes, topology.project, versioning)
    updated, current = [], []
    for name, region in topology.regions.items():
        client = s3_client(region.s3)
        bucket = region.s3.bucket
        if _current_sha(client, bucket, manifest_key(topology.project)) == manifest["sha256"]:
            current.append(name)
            continue
        client.put_object(
            Bucket=bucket,
            Key=registry_key(topology.project),
            Body=registry_bytes,
        )
        client.put_object(
            Bucket=bucket,
            Key=manifest_key(topology.project),
            Body=json.dumps(manifest, indent=2).encode(),
            ContentType="application/json",
        )
        updated.append(name)
        log.info(
            "registry %s synced to %s",
            manifest["version"],
            name,
            extra={"event": "registry_synced", "region": name, "version": manifest["version"]},
        )
    return SyncResult(manifest["version"], updated, current)


def _current_sha(client: Any, bucket: str, key: str) -> str | None:
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None
    try:
        return str(json.loads(body).get("sha256"))
    except ValueError:
        return None
