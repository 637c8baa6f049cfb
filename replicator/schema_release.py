"""The primary's schema gate: rows are published only for a schema every region will get.

``feast apply`` commits the registry after it calls the online store's ``update()``, so the
replicating store cannot release a new registry at apply time. It does so at the first write
of a new schema instead: before ``online_write_batch`` publishes rows of ``(view,
fingerprint)``, ``SchemaGate.admit`` makes sure the primary region's live manifest admits
that fingerprint:

1. admitted before in this process: nothing to do (a set lookup; the common case);
2. the primary's manifest admits it (one S3 GET, once per new fingerprint per process);
3. a registry rollout is in progress (``rollout.RolloutLog``): refused (``SchemaNotReleased``),
   the rollout decides when regions get new definitions;
4. else the primary's current registry (the write's ``RepoConfig``: its registry file, or
   the primary bucket's object, and its Feast settings) is snapshotted, exactly as
   ``replicator registry sync`` does; when it does not hold the fingerprint (this process's
   Feast registry cache is older or newer than the registry) the write is refused
   (``SchemaNotReleased``) and nothing is released; else it is released to every replica
   region, then to the primary region last.

The primary region's manifest is the commit point: a release that fails in a region (its
bucket unreachable or refusing) raises before the primary's manifest is switched, so the
write fails with nothing published (``ObjectStoreUnavailable``: retry it) and the next write
tries the release again. A schema the primary admitted after an automatic release is
therefore in every region's manifest. Writes never wait on regional S3 for a schema already
admitted. docs/registry-and-models.md, "How a new schema reaches the regions".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from replicator.adapters.s3 import region_stores
from replicator.config import Topology
from replicator.core.feast_settings import FeastSettings
from replicator.core.ports import ObjectStore
from replicator.errors import ObjectStoreRefused, ObjectStoreUnavailable, SchemaNotReleased
from replicator.registry_sync import (
    RegistryReleaser,
    RegistryVersion,
    admitted_fingerprints,
    registry_file,
)
from replicator.rollout import RolloutLog

log = logging.getLogger(__name__)


class SchemaGate:
    """Admits ``(view, fingerprint)`` pairs for publishing; one per replicating store.

    ``stores(region)``: that region's bucket (default: the topology's S3). Thread-safe.
    """

    def __init__(
        self, topology: Topology, *, stores: Callable[[str], ObjectStore] | None = None
    ) -> None:
        self.topology = topology
        self._stores = stores or region_stores(topology)
        self._admitted: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def admit(self, view: str, fingerprint: str, config: Any) -> None:
        """Return once rows of ``view`` (its Redis name) with schema ``fingerprint`` may be
        published, releasing the primary's registry to every region if no region has it yet.

        ``config``: the write call's Feast ``RepoConfig`` (registry and Feast settings).
        Raises ``SchemaNotReleased`` (refused: a rollout is in progress, or the registry does
        not hold the schema), ``ObjectStoreUnavailable`` (S3 did not answer: retry),
        ``ObjectStoreRefused`` (S3 refused), ``ConfigError`` (no registry). Nothing is
        published when it raises.
        """
        if (view, fingerprint) in self._admitted:
            return
        with self._lock:
            if (view, fingerprint) not in self._admitted:
                self._ensure_released(view, fingerprint, config)
                self._admitted.add((view, fingerprint))

    def _ensure_released(self, view: str, fingerprint: str, config: Any) -> None:
        primary = self.topology.primary_region
        settings = FeastSettings.from_repo_config(config)
        releaser = RegistryReleaser(self.topology, settings=settings, stores=self._stores)
        if fingerprint in admitted_fingerprints(releaser.live(primary), view):
            return
        rollout = RolloutLog(self.topology, store=self._stores(primary)).in_progress("registry")
        if rollout is not None:
            raise SchemaNotReleased(
                f"feature view {view!r}: schema {fingerprint} is not released to the regions "
                f"and registry rollout {rollout.id} (version {rollout.version}, canary "
                f"{rollout.canary}) is in progress, so nothing was published. Write again once "
                f"it has completed (`replicator rollout status --id {rollout.id}`), or end it "
                f"with `replicator rollout rollback --id {rollout.id}`; the next write then "
                "releases the current registry to every region",
                feature_view=view,
                fingerprint=fingerprint,
            )
        version = releaser.snapshot(registry_file(config))
        held = admitted_fingerprints(version.manifest, view)
        if fingerprint not in held:
            raise SchemaNotReleased(
                f"feature view {view!r}: schema {fingerprint} is not in the primary's registry "
                f"(version {version.version} has "
                f"{', '.join(sorted(held)) or 'no such view'}): this process's Feast registry "
                "cache is older or newer than the registry, so nothing was published. Refresh "
                "it (`FeatureStore.refresh_registry()`, or restart the writer) after a "
                "`feast apply` elsewhere, or run `feast apply` for a view changed in code, "
                "then write again",
                feature_view=view,
                fingerprint=fingerprint,
            )
        self._release(releaser, version, view, fingerprint)

    def _release(
        self, releaser: RegistryReleaser, version: RegistryVersion, view: str, fingerprint: str
    ) -> None:
        """Replicas first, the primary region last (its manifest is the commit point)."""
        for region in [*self.topology.replica_regions, self.topology.primary_region]:
            context = (
                f"feature view {view!r}: releasing registry {version.version} with its new "
                f"schema {fingerprint} to {region} failed, so nothing was published and the "
                "primary does not admit the schema yet; the next write tries again (or run "
                "`replicator registry sync`)"
            )
            try:
                releaser.release(version, [region])
            except ObjectStoreUnavailable as exc:
                raise ObjectStoreUnavailable(
                    f"{context}: {exc}", service=exc.service, retry_after=exc.retry_after
                ) from exc
            except ObjectStoreRefused as exc:
                raise ObjectStoreRefused(f"{context}: {exc}", where=exc.where) from exc
        log.info(
            "registry %s released to every region for the new schema %s of %s",
            version.version,
            fingerprint,
            view,
            extra={
                "event": "registry_auto_released",
                "version": version.version,
                "feature_view": view,
                "fingerprint": fingerprint,
            },
        )
