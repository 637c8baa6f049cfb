"""The one place that makes boto3 S3 clients for a region's bucket, and reads objects."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from replicator.config import S3Location


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
