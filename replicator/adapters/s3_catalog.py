"""The schema manifest a region's bucket holds: which view shapes the region may serve.

``replicator registry sync`` writes ``feast/<project>/manifest.json`` next to the registry copy;
the worker reads it here (boto3 only, no Feast) and re-reads it when it meets a fingerprint
it does not know, at most once per ``min_refresh_seconds`` after a successful read. A view's
known fingerprints are those of its recent schema versions (``core.schema_history``), so rows
of a writer whose Feast registry cache is one change behind are still admitted.

When S3 cannot answer, the catalog says so (``ObjectStoreUnavailable``) instead of answering
"unknown": a row is never dead-lettered, or a rebuild shortened, because of an S3 outage.
"""

from __future__ import annotations

import json
import logging
import time

from replicator.adapters.s3 import S3ObjectStore
from replicator.config import S3Location
from replicator.core.keys import manifest_key
from replicator.core.ports import ObjectStore
from replicator.core.schema_history import admitted
from replicator.errors import ObjectStoreRefused

log = logging.getLogger(__name__)

__all__ = ["S3ManifestCatalog", "manifest_key"]  # manifest_key: see replicator.core.keys


class S3ManifestCatalog:
    """``SchemaCatalog`` on a region's manifest.

    ``is_known`` and ``refresh`` raise ``ObjectStoreUnavailable`` when S3 cannot be read
    (retry later) and ``ObjectStoreRefused`` when S3 refuses or the manifest is not valid
    JSON (an operator must act); they never guess.
    """

    def __init__(
        self,
        location: S3Location,
        project: str,
        *,
        min_refresh_seconds: float = 1.0,
        store: ObjectStore | None = None,
    ) -> None:
        self._store = store or S3ObjectStore.at(location)
        self._key = manifest_key(project)
        self._min_refresh = min_refresh_seconds
        self._fingerprints: dict[str, frozenset[str]] = {}
        self._version = ""
        self._loaded_at = float("-inf")

    @property
    def version(self) -> str:
        return self._version

    def is_known(self, feature_view: str, fingerprint: str) -> bool:
        """Whether ``fingerprint`` is one of ``feature_view``'s recent schema versions."""
        if fingerprint in self._fingerprints.get(feature_view, ()):
            return True
        if time.monotonic() - self._loaded_at >= self._min_refresh:
            self.refresh()
        return fingerprint in self._fingerprints.get(feature_view, ())

    def refresh(self) -> bool:
        """Re-read the manifest; returns False when it does not exist (yet)."""
        body = self._store.get(self._key)
        if body is None:
            self._loaded_at = time.monotonic()
            return False
        try:
            manifest = json.loads(body)
            fingerprints = {v: frozenset(fs) for v, fs in admitted(manifest).items()}
        except (ValueError, TypeError, AttributeError) as exc:
            raise ObjectStoreRefused(
                f"{self._store.where(self._key)} is not a valid schema manifest ({exc}): run "
                "`replicator registry sync` to repair it",
                where=self._store.where(self._key),
            ) from exc
        self._loaded_at = time.monotonic()
        self._fingerprints = fingerprints
        if manifest.get("version") != self._version:
            self._version = manifest.get("version", "")
            log.info(
                "schema manifest %s: %d feature views",
                self._version,
                len(self._fingerprints),
                extra={"event": "manifest_loaded", "registry_version": self._version},
            )
        return True
