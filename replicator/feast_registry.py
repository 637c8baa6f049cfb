"""Feast registry stores for a replicated deployment (Feast's ``registry_store_type``).

``PrimaryRegistryStore`` (the primary's ``feature_store.yaml``): Feast's registry as one object
in the primary region's bucket, reached with the topology's S3 endpoint and credentials.

``RegionalRegistryStore`` (an inference service's ``feature_store.yaml`` in a region): reads
the registry version the region's manifest names, verifies its SHA-256, and is read-only. Where
Feast's own stores answer a missing registry by *creating an empty one* (a local file or an S3
PUT), this one fails with a message saying what to run, and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from feast.infra.registry.registry_store import RegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.repo_config import RegistryConfig

from replicator.adapters.s3 import S3ObjectStore, s3_client_for_endpoint
from replicator.config import find_config_path, load_topology
from replicator.core.ports import ObjectStore
from replicator.errors import ConfigError, ReplicatorError


class RegistryNotReplicated(ReplicatorError):
    """The region has no (valid) registry yet; nothing was written."""


def _bucket_and_key(path: str) -> tuple[str, str]:
    uri = urlparse(path)
    if uri.scheme != "s3" or not uri.netloc or not uri.path.strip("/"):
        raise ConfigError(f"registry path {path!r} must look like s3://bucket/key")
    return uri.netloc, uri.path.lstrip("/")


class PrimaryRegistryStore(RegistryStore):
    """The primary's registry object; endpoint and keys of the region owning the bucket.

    The topology is the registry config's ``topology`` (like the replicating online store's),
    else ``$REPLICATOR_CONFIG``, else the nearest ``infra/topology.yaml``. S3 failures raise
    ``ObjectStoreUnavailable`` / ``ObjectStoreRefused``.
    """

    def __init__(self, registry_config: RegistryConfig, repo_path: Path | None) -> None:
        self._bucket, self._key = _bucket_and_key(registry_config.path)
        topology = load_topology(find_config_path(getattr(registry_config, "topology", None)))
        owners = [r for r in topology.regions.values() if r.s3.bucket == self._bucket]
        if not owners:
            raise ConfigError(f"no region of the topology has bucket {self._bucket!r}")
        self._store: ObjectStore = S3ObjectStore.at(owners[0].s3)

    def get_registry_proto(self) -> RegistryProto:
        body = self._store.get(self._key)
        if body is None:  # Feast answers this by creating the registry: right at the primary
            raise FileNotFoundError(self._store.where(self._key))
        registry = RegistryProto()
        registry.ParseFromString(body)
        return registry

    def update_registry_proto(self, registry_proto: RegistryProto) -> None:
        self._store.put(self._key, registry_proto.SerializeToString())

    def teardown(self) -> None:
        self._store.delete(self._key)


class RegionalRegistryStore(RegistryStore):
    """Read-only: the version named by ``s3://<bucket>/feast/<project>/manifest.json``.

    Uses Feast's S3 conventions for credentials: ``FEAST_S3_ENDPOINT_URL`` and the standard
    AWS variables (``replicator region feast-config`` writes them to ``feast.env``).
    S3 failures raise ``ObjectStoreUnavailable`` / ``ObjectStoreRefused``.
    """

    def __init__(self, registry_config: RegistryConfig, repo_path: Path | None) -> None:
        self._bucket, self._manifest_key = _bucket_and_key(registry_config.path)
        endpoint = os.environ.get("FEAST_S3_ENDPOINT_URL")  # Feast's convention, not ours
        self._store: ObjectStore = S3ObjectStore(
            self._bucket, lambda: s3_client_for_endpoint(endpoint)
        )

    @property
    def _where(self) -> str:
        return f"s3://{self._bucket}/{self._manifest_key}"

    def get_registry_proto(self) -> RegistryProto:
        manifest = self._read_json(self._manifest_key)
        body = self._read(manifest["registry_key"])
        if hashlib.sha256(body).hexdigest() != manifest["sha256"]:
            raise RegistryNotReplicated(
                f"registry {manifest['version']} in s3://{self._bucket} does not match its "
                "manifest's checksum: run `replicator registry sync` to repair the region"
            )
        registry = RegistryProto()
        registry.ParseFromString(body)
        return registry

    def update_registry_proto(self, registry_proto: RegistryProto) -> None:
        raise RegistryNotReplicated(
            f"{self._where} is a regional, read-only registry: apply changes at the primary "
            "(feast apply) and replicate them with `replicator registry sync`"
        )

    def teardown(self) -> None:
        self.update_registry_proto(RegistryProto())

    def _read(self, key: str) -> bytes:
        body = self._store.get(key)
        if body is None:
            raise RegistryNotReplicated(
                f"no registry has been replicated to s3://{self._bucket}/{key} yet: run "
                "`replicator registry sync` at the primary (nothing was created here)"
            )
        return body

    def _read_json(self, key: str) -> dict[str, Any]:
        try:
            return dict(json.loads(self._read(key)))
        except ValueError as exc:
            raise RegistryNotReplicated(f"{self._where} is not valid JSON: {exc}") from None
