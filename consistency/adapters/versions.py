"""Versions live in each region's bucket: the registry manifest and every model's ``live.json``.

Layout (written by ``replicator registry sync`` / ``rollout`` and ``replicator models``):

    feast/<project>/manifest.json   {"version", "released_at", ...}: the live registry
    models/<name>/live.json         {"version", "released_at", ...}: the live model version

Model names are the "directories" under ``models/`` (listed with a delimiter, so the files of
every version are never listed). A model whose directory exists without ``live.json`` (the
primary bucket holds published, unreleased versions) is not live there. Reads are short
(a few seconds, one retry): the checker calls this from its staleness job.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from consistency.adapters.shared import read_object, s3_client
from consistency.core.versions import LiveVersion, LiveVersions
from consistency.errors import SourceUnavailable
from replicator.config import S3Location
from replicator.core.keys import manifest_key

MODELS_PREFIX = "models/"


def model_live_key(name: str) -> str:
    return f"{MODELS_PREFIX}{name}/live.json"


def live_version(document: dict[str, Any]) -> LiveVersion:
    """A manifest's or ``live.json``'s version and release time (ISO-8601; naive means UTC)."""
    version = document.get("version")
    if not isinstance(version, str) or not version:
        raise ValueError("no 'version'")
    raw = document.get("released_at")
    released = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    if released is not None and released.tzinfo is None:
        released = released.replace(tzinfo=UTC)
    return LiveVersion(version, released)


class S3Versions:
    def __init__(
        self, locations: dict[str, S3Location], project: str, *, timeout: float = 3.0
    ) -> None:
        self._locations = dict(locations)
        self._manifest_key = manifest_key(project)
        self._timeout = timeout
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()  # boto3's default session is not thread-safe

    def __enter__(self) -> S3Versions:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = s3_client(
                    self._locations[region], timeout=self._timeout, attempts=2
                )
            return self._clients[region]

    def live(self, region: str) -> LiveVersions:
        client = self._client(region)
        bucket = self._locations[region].bucket
        try:
            registry = self._read(client, bucket, self._manifest_key)
            models = {}
            for name in self._model_names(client, bucket):
                live = self._read(client, bucket, model_live_key(name))
                if live is not None:
                    models[name] = live
        except (ClientError, BotoCoreError, ValueError) as exc:
            raise SourceUnavailable(
                f"s3 {region}: cannot read the live registry and model versions from "
                f"s3://{bucket}: {exc}",
                source=region,
            ) from exc
        return LiveVersions(registry, models)

    @staticmethod
    def _model_names(client: Any, bucket: str) -> list[str]:
        names = []
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=MODELS_PREFIX, Delimiter="/"
        )
        for page in pages:
            for prefix in page.get("CommonPrefixes", []):
                names.append(prefix["Prefix"][len(MODELS_PREFIX) :].rstrip("/"))
        return names

    @staticmethod
    def _read(client: Any, bucket: str, key: str) -> LiveVersion | None:
        body = read_object(client, bucket, key)
        if body is None:
            return None
        try:
            document = json.loads(body)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            return live_version(document)
        except ValueError as exc:
            raise ValueError(f"{key}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            clients, self._clients = self._clients, {}
        for client in clients.values():
            client.close()
