"""The one place that makes boto3 S3 clients, and the object-store adapter built on them.

``S3ObjectStore`` implements ``replicator.core.ports.ObjectStore`` for one bucket and turns
botocore's exceptions into ours: ``ObjectStoreUnavailable`` (transient: the endpoint cannot be
reached, times out, answers 5xx or throttles) and ``ObjectStoreRefused`` (permanent: access
denied, no such bucket, bad credentials, any other 4xx). A missing object is not an error:
``get`` returns None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from replicator.config import S3Location, Topology
from replicator.core.ports import ObjectStore
from replicator.errors import ObjectStoreRefused, ObjectStoreUnavailable, ReplicatorError


def s3_client(location: S3Location, *, timeout: float = 10.0, attempts: int = 3) -> Any:
    """A boto3 S3 client for a region's location, path-style (S3Proxy has no virtual hosts).

    An ``https://`` endpoint's certificate is checked against ``location.ca_file`` when set
    (an S3-compatible server with a private CA), else against the system's trust store."""
    return boto3.client(
        "s3",
        endpoint_url=location.endpoint_url,
        verify=str(location.ca_file) if location.ca_file else None,
        aws_access_key_id=location.access_key_id,
        aws_secret_access_key=location.secret_access_key.get_secret_value(),
        region_name=location.region_name,
        config=Config(
            s3={"addressing_style": "path"},
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": attempts, "mode": "standard"},
        ),
    )


def s3_client_for_endpoint(endpoint_url: str | None) -> Any:
    """A boto3 S3 client with credentials from boto3's usual chain (environment, profile):
    what Feast's own S3 registry does, for processes configured the Feast way."""
    return boto3.client("s3", endpoint_url=endpoint_url)


_NO_OBJECT = ("NoSuchKey", "404")


def is_absent(exc: ClientError) -> bool:
    """The object or its whole bucket does not exist, as opposed to S3 failing."""
    return exc.response.get("Error", {}).get("Code") in (*_NO_OBJECT, "NoSuchBucket")


def read_object(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes, or None when the object does not exist; anything else (a missing
    bucket included) is raised."""
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in _NO_OBJECT:
            return None
        raise


_TRANSIENT_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "ServiceUnavailable"}
)


def translate(exc: Exception, where: str, doing: str) -> ReplicatorError:
    """Our error for a botocore exception met while ``doing`` something at ``where``."""
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ObjectStoreRefused(f"cannot {doing} {where}: {exc}", where=where)
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if status >= 500 or code in _TRANSIENT_CODES:
            return ObjectStoreUnavailable(
                f"cannot {doing} {where}: S3 answered {code or status}", service=where
            )
        return ObjectStoreRefused(
            f"cannot {doing} {where}: S3 refused ({code or status}): check the bucket and "
            "credentials in the topology",
            where=where,
        )
    return ObjectStoreUnavailable(f"cannot {doing} {where}: {exc}", service=where)


class S3ObjectStore:
    """One bucket (``ObjectStore`` port). The client is made on first use."""

    def __init__(self, bucket: str, client_factory: Any) -> None:
        self.bucket = bucket
        self._factory = client_factory
        self._client: Any = None

    @classmethod
    def at(cls, location: S3Location, *, timeout: float = 10.0, attempts: int = 3) -> S3ObjectStore:
        """The bucket of a region's S3 location."""
        return cls(location.bucket, lambda: s3_client(location, timeout=timeout, attempts=attempts))

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = self._factory()
        return self._client

    def where(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}" if key else f"s3://{self.bucket}"

    def get(self, key: str) -> bytes | None:
        try:
            return read_object(self.client, self.bucket, key)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.where(key), "read") from exc

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.where(key), "write") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.where(key), "delete") from exc

    def keys(self, prefix: str) -> list[str]:
        out: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            ):
                out.extend(item["Key"] for item in page.get("Contents", ()))
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, self.where(prefix), "list") from exc
        return sorted(out)


def region_stores(topology: Topology) -> Callable[[str], ObjectStore]:
    """``stores(region)``: that region's bucket as an ``ObjectStore``, one per region, made on
    first use (an unknown region raises ``ConfigError``)."""
    made: dict[str, ObjectStore] = {}

    def store(region: str) -> ObjectStore:
        if region not in made:
            made[region] = S3ObjectStore.at(topology.region(region).s3)
        return made[region]

    return store
