"""Errors raised by the consistency checker.

    ConsistencyError
     +-- UsageError           a request that cannot be served as asked (exit 2)
     |    +-- SettingsError   bad or missing checker configuration; names the file and field
     +-- SourceUnavailable    a region's Redis, Kafka or S3 could not be read (transient, exit 3)
     +-- NoManifest           a region's bucket has no schema manifest yet (run registry sync;
                              exit 3)

Adapters turn library exceptions (redis, confluent_kafka, botocore) into these. Retry
decisions and exit codes look at the class, never at the message.
"""

from __future__ import annotations


class ConsistencyError(Exception):
    """Base class of every error the checker raises on purpose."""


class UsageError(ConsistencyError):
    pass


class SettingsError(UsageError):
    pass


class SourceUnavailable(ConsistencyError):
    def __init__(self, message: str, *, source: str = "") -> None:
        super().__init__(message)
        self.source = source


class NoManifest(ConsistencyError):
    pass
