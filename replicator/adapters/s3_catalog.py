"""The schema manifest a region's bucket holds: which view shapes the region may serve.

``replicator registry sync`` writes ``feast/<project>/manifest.json`` next to the registry copy;
the worker reads it here (boto3 only, no Feast) and re-reads it when it meets a fingerprint
it does not know, at most once per ``min_refresh_seconds``.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from replicator.adapters.s3 import is_absent, s3_client
from replicator.config import S3Location

log = logging.getLogger(__name__)


def manifest_key(project: str) -> str:
    return f"feast/{project}/manifest.json"


class S3ManifestCatalog:
    def __init__(
        self, location: S3Location, project: str, *, min_refresh_seconds: float = 1.0
    ) -> None:
        self._location = location
        self._key = manifest_key(project)
        self._min_refresh = min_refresh_seconds
        self._client: Any = None
        self._fingerprints: dict[str, str] = {}
        self._version = ""
        self._loaded_at = float("-inf")

    @property
    def version(self) -> str:
        return self._version

    def is_known(self, feature_view: str, fingerprint: str) -> bool:
        if self._fingerprints.get(feature_view) == fingerprint:
            return True
        if time.monotonic() - self._loaded_at >= self._min_refresh:
            self.refresh()
        return self._fingerprints.get(feature_view) == fingerprint

    def refresh(self) -> bool:
        """Re-read the manifest; returns False when it does not exist (yet)."""
        self._loaded_at = time.monotonic()
        if self._client is None:
            self._client = s3_client(self._location)
        try:
            body = self._client.get_object(Bucket=self._location.bucket, Key=self._key)
            manifest = json.loads(body["Body"].read())
        except ClientError as exc:
            if is_absent(exc):
                return False
            log.warning("cannot read schema manifest: %s", exc)
            return bool(self._fingerprints)
        except (BotoCoreError, ValueError) as exc:
            log.warning("cannot read schema manifest: %s", exc)
            return bool(self._fingerprints)
        self._fingerprints = dict(manifest.get("feature_views", {}))
        if manifest.get("version") != self._version:
            self._version = manifest.get("version", "")
            log.info(
                "schema manifest %s: %d feature views",
                self._version,
                len(self._fingerprints),
                extra={"event": "manifest_loaded", "registry_version": self._version},
            )
        return True
