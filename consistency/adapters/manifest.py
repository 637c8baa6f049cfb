"""Feature views' Redis layout, from a region's schema manifest (``feast/<project>/manifest.json``).

Written by ``replicator registry sync``; holds, per view, the key prefix and each feature's
4-byte field key, so the checker compares views without importing Feast.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from consistency.adapters.shared import is_absent, s3_client
from consistency.errors import NoManifest, SourceUnavailable
from consistency.ports import ViewLayout
from replicator.config import S3Location
from replicator.core.keys import manifest_key

log = logging.getLogger(__name__)


def layouts(manifest: dict[str, Any]) -> dict[str, ViewLayout]:
    out = {}
    for name, schema in (manifest.get("views") or {}).items():
        fields = tuple(sorted(bytes.fromhex(h) for h in schema.get("features", {}).values()))
        out[name] = ViewLayout(name, bytes.fromhex(schema.get("key_prefix", "")), fields)
    return out


class S3Manifest:
    def __init__(self, location: S3Location, project: str) -> None:
        self._location = location
        self._key = manifest_key(project)
        self._client: Any = None

    def views(self) -> dict[str, ViewLayout]:
        if self._client is None:
            self._client = s3_client(self._location)
        try:
            body = self._client.get_object(Bucket=self._location.bucket, Key=self._key)
            views = layouts(json.loads(body["Body"].read()))
        except ClientError as exc:
            if is_absent(exc):
                raise NoManifest(
                    f"s3://{self._location.bucket}/{self._key} does not exist: run "
                    "`replicator registry sync` after `feast apply`"
                ) from None
            raise SourceUnavailable(f"s3: cannot read the manifest: {exc}") from exc
        except (BotoCoreError, ValueError, AttributeError) as exc:
            raise SourceUnavailable(f"s3: cannot read the manifest: {exc}") from exc
        return views
