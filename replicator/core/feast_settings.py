"""The primary's Feast settings that shape Redis bytes or expiry, carried to every region.

One source of truth: the primary's ``feature_store.yaml``. ``replicator registry sync`` reads
them there and writes them into every region's manifest (``feast`` block); the primary also
stamps ``key_ttl_seconds`` on every record (docs/wire-format.md). Nothing here is re-typed in
the topology. Pure: no I/O, no Feast import.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

MANIFEST_FIELD = "feast"


@dataclass(frozen=True)
class FeastSettings:
    entity_key_serialization_version: int = 3
    """Feast's ``entity_key_serialization_version``: the bytes of every Redis key."""
    enable_online_feature_view_versioning: bool = False
    """Feast's ``registry.enable_online_feature_view_versioning``: views are written to Redis
    as ``<view>_v<N>``."""
    key_ttl_seconds: int | None = None
    """Feast's ``online_store.key_ttl_seconds``: EXPIRE after every accepted write."""

    @classmethod
    def from_repo_config(cls, config: Any) -> FeastSettings:
        """From a Feast ``RepoConfig`` (the primary's ``feature_store.yaml``)."""
        return cls(
            entity_key_serialization_version=int(config.entity_key_serialization_version),
            enable_online_feature_view_versioning=bool(
                getattr(config.registry, "enable_online_feature_view_versioning", False)
            ),
            key_ttl_seconds=getattr(config.online_store, "key_ttl_seconds", None),
        )

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any] | None) -> FeastSettings | None:
        """The settings a manifest carries; None for a manifest written before they were."""
        block = (manifest or {}).get(MANIFEST_FIELD)
        if not isinstance(block, dict):
            return None
        known = {k: v for k, v in block.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def as_manifest(self) -> dict[str, Any]:
        return asdict(self)
