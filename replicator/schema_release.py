"""The primary's schema gate: rows are published only for a schema every region will get.

``feast apply`` commits the registry after it calls the online store's ``update()``, so the
replicating store cannot release a new registry at apply time. It does so at the first write
of a new schema instead: before ``online_write_batch`` publishes rows of ``(view,
fingerprint)``, ``SchemaGate.admit`` makes sure the primary region's live manifest admits
that fingerprint:

1. admitted in this process within the last ``RECHECK_SECONDS``: nothing to do (a dict
   lookup; the common case);
2. the primary's manifest admits it (one S3 GET per new fingerprint per process, and again
   every ``RECHECK_SECONDS``: a long-lived writer whose Feast registry cache never refreshes
   keeps an old schema that later releases push out of each view's recent versions);
3. a registry rollout is in progress (``rollout.RolloutLog``): refused (``SchemaNotReleased``),
   the rollout decides when regions get new definitions;
4. else the primary's current registry (the write's ``RepoConfig``: its registry file, or
   the primary bucket's object, and its Feast settings) is snapshotted, exactly as
   ``replicator registry sync`` does; when it does not hold the fingerprint (this process's
   Feast registry cache is older or newer than the registry) the write is refused
   (``SchemaNotReleased``) and nothing is released; else it is released to every replica
   region, then to the primary region last, and then every region's manifest is read back:
   a release another process made meanwhile (``registry sync``, a second writer) may have
   replaced it, so the gate releases again (``RELEASE_ATTEMPTS`` in all) before it admits.
   Two processes releasing at once remain a race the gate narrows but does not close (S3
   has no compare-and-swap on the manifest here): docs/registry-and-models.md.

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
import time
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

RECHECK_SECONDS = 60.0
"""How long an admission holds before the primary's manifest is read again (one GET)."""

RELEASE_ATTEMPTS = 3
"""Releases tried before a write fails because every region's manifest keeps losing the
schema to concurrent releases (``ObjectStoreUnavailable``: retry the write)."""


class SchemaGate:
    """Admits ``(view, fingerprint)`` pairs for publishing; one per replicating store.

    ``stores(region)``: that region's bucket (default: the topology's S3). Thread-safe.
    """

    def __init__(
        self,
        topology: Topology,
        *,
        stores: Callable[[str], ObjectStore] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.topology = topology
        self._stores = stores or region_stores(topology)
        self._monotonic = monotonic
        self._admitted: dict[tuple[str, str], float] = {}
        """(view, fingerprint) -> when the primary's manifest last admitted it (monotonic)."""
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
        pair = (view, fingerprint)
        if self._fresh(pair):
            return
        with self._lock:
            if self._fresh(pair):
                return
            try:
                self._ensure_released(view, fingerprint, config)
            except ObjectStoreUnavailable:
                if pair not in self._admitted:
                    raise
                # A re-check S3 could not answer: the schema was admitted, and an S3
                # outage must not stop its writes; read again after the next period.
                log.warning("could not re-check schema %s of %s: S3 unavailable", *pair[::-1])
            self._admitted[pair] = self._monotonic()

    def _fresh(self, pair: tuple[str, str]) -> bool:
        at = self._admitted.get(pair)
        return at is not None and self._monotonic() - at < RECHECK_SECONDS

    def _ensure_released(self, view: str, fingerprint: str, config: Any) -> None:
        primary = self.topology.primary_region
        settings = FeastSettings.from_repo_config(config)
        releaser = RegistryReleaser(self.topology, settings=settings, stores=self._stores)
        if fingerprint in admitted_fingerprints(releaser.live(primary), view):
            return
        for _ in range(RELEASE_ATTEMPTS):
            self._release_current(releaser, view, fingerprint, config)
            lost = [
                region
                for region in self.topology.regions
                if fingerprint not in admitted_fingerprints(releaser.live(region), view)
            ]
            if not lost:
                return
            log.warning(
                "schema %s of %s released, then replaced in %s by a concurrent release: "
                "releasing again",
                fingerprint,
                view,
                ", ".join(lost),
            )
        raise ObjectStoreUnavailable(
            f"feature view {view!r}: schema {fingerprint} was released {RELEASE_ATTEMPTS} "
            "times and each time another release replaced it in some region's manifest "
            "(concurrent `registry sync` or writers), so nothing was published: retry the write",
            service=f"s3://{releaser.bucket(primary)}",
        )

    def _release_current(
        self, releaser: RegistryReleaser, view: str, fingerprint: str, config: Any
    ) -> None:
        """Refuse during a registry rollout or for a schema the registry lacks; else release
        the current registry to every region (primary last)."""
        primary = self.topology.primary_region
        rollout = RolloutLog(self.topology, store=self._stores(primary)).in_progress("registry")
        if rollout is not None:
            raise SchemaNotReleased(
                f"feature view {view!r}: schema {fingerprint} is not released to the regions "
                f"and {rollout.running_text()}, so nothing was published; the next write "
                "after it ends releases the current registry to every region",
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
