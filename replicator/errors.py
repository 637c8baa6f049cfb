"""Errors raised by the replicator.

    ReplicatorError
     +-- ConfigError            bad or missing configuration; names the file and the field
     +-- PrerequisiteError      a tool the local stack needs is missing; says how to install it
     +-- StackError             the local stack could not start or answer
     +-- IncompleteRebuild      a rebuild could not read all the history it needs
     +-- RefusedWrite           the primary refuses a Feast write before publishing any of it
     +-- TransientError         worth retrying with backoff (broker or Redis unreachable)
     |    +-- PublishError      the primary could not make rows durable in Kafka
     +-- PermanentError         retrying cannot help; the input goes to the dead-letter topic
          +-- MalformedRecord   the record cannot be decoded
          +-- UnknownSchema     the record's schema fingerprint is not known in this region
          +-- FutureEventTime   the event time is further ahead than the allowed clock skew
          +-- RejectedByStore   the region's store refused the record for a reason a retry
          |                     cannot change (a script error, WRONGTYPE; see redis_store)
          +-- RepeatedFailure   the same unexpected error, every attempt (worker's bound)

Retry decisions look at the class, never at the message.
"""

from __future__ import annotations


class ReplicatorError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(ReplicatorError):
    pass


class PrerequisiteError(ReplicatorError):
    pass


class StackError(ReplicatorError):
    pass


class IncompleteRebuild(ReplicatorError):
    """A rebuild applied what it could but history was missing: ``missing`` maps
    ``(topic, partition)`` to the ``(first, end)`` offsets it could not read."""

    def __init__(self, message: str, missing: dict[tuple[str, int], tuple[int, int]]) -> None:
        super().__init__(message)
        self.missing = missing


class RefusedWrite(ReplicatorError):
    """A Feast write call refused at the primary, before any of its rows was published.

    ``feature_view`` and ``entity`` name the first offending row (``entity`` as
    ``join_key=value, ...``)."""

    def __init__(self, message: str, *, feature_view: str, entity: str) -> None:
        super().__init__(message)
        self.feature_view = feature_view
        self.entity = entity


class TransientError(ReplicatorError):
    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PublishError(TransientError):
    pass


class PermanentError(ReplicatorError):
    """Input that can never be applied. ``reason`` is a short machine-readable word."""

    reason = "permanent"


class MalformedRecord(PermanentError):
    reason = "malformed"


class UnknownSchema(PermanentError):
    reason = "unknown_schema"


class FutureEventTime(PermanentError):
    reason = "future_event_time"


class RejectedByStore(PermanentError):
    reason = "rejected_by_store"


class RepeatedFailure(PermanentError):
    """An error of no known kind kept recurring for one record: ``attempts`` in a row."""

    reason = "repeated_failure"
