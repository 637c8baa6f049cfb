"""Errors raised by the replicator.

    ReplicatorError
     +-- ConfigError            bad or missing configuration; names the file and the field
     +-- PrerequisiteError      a tool the local stack needs is missing; says how to install it
     +-- StackError             the local stack could not start or answer
     +-- RefusedWrite           the primary refuses a Feast write before publishing any of it
     |    +-- SchemaNotReleased  its schema is in no region and cannot be released now
     +-- RolloutInProgress      a release to every region refused: a registry rollout is running
     +-- TransientError         worth retrying with backoff (broker, Redis or S3 unreachable)
     |    +-- PublishError      the primary could not make rows durable in Kafka
     |    +-- ServiceUnavailable  a service did not answer or failed (``service`` names it)
     |         +-- KafkaUnavailable        a Kafka admin or metadata call got no answer
     |         +-- ObjectStoreUnavailable  S3 unreachable, timed out or failing (5xx, throttled)
     +-- ObjectStoreRefused     S3 refused the request (access denied, no such bucket) or holds
     |                          an object that cannot be used; retrying cannot help
     +-- Incomplete             a command stopped before doing all its work; names what is missing
     |    +-- IncompleteRebuild  a rebuild could not read all the history it needs
     +-- PermanentError         retrying cannot help; the input goes to the dead-letter topic
          +-- MalformedRecord   the record cannot be decoded
          +-- UnknownSchema     the record's schema fingerprint is not known in this region
          +-- FutureEventTime   the event time is further ahead than the allowed clock skew
          +-- RejectedByStore   the region's store refused the record for a reason a retry
          |                     cannot change (a script error, WRONGTYPE; see redis_store)
          +-- RepeatedFailure   the same unexpected error, every attempt (worker's bound)
          +-- ImplausibleHeartbeat  a heartbeat stamped further ahead of its broker timestamp
                                    than the primary could have emitted it (forged or corrupt)

Library exceptions (botocore, confluent_kafka, redis) become one of these at the adapter that
called the library (``raise OurError(...) from exc``). Retry decisions look at the class, never
at the message. The command line maps each class to an exit code (``replicator --help``).
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


class RefusedWrite(ReplicatorError):
    """A Feast write call refused at the primary, before any of its rows was published.

    ``feature_view`` and ``entity`` name the first offending row (``entity`` as
    ``join_key=value, ...``)."""

    def __init__(self, message: str, *, feature_view: str, entity: str) -> None:
        super().__init__(message)
        self.feature_view = feature_view
        self.entity = entity


class SchemaNotReleased(RefusedWrite):
    """A write refused because its rows' schema (``fingerprint`` of ``feature_view``) is in
    no region's manifest and the primary cannot release it now: a registry rollout is in
    progress, or the primary's registry does not hold that schema. Every row of the call
    has that schema, so ``entity`` is empty."""

    def __init__(self, message: str, *, feature_view: str, fingerprint: str) -> None:
        super().__init__(message, feature_view=feature_view, entity="")
        self.fingerprint = fingerprint


class RolloutInProgress(ReplicatorError):
    """``registry sync`` refused: a registry rollout is running, and releasing to every region
    now would skip its canary (``rollout`` names it)."""

    def __init__(self, message: str, *, rollout: str) -> None:
        super().__init__(message)
        self.rollout = rollout


class TransientError(ReplicatorError):
    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PublishError(TransientError):
    pass


class ServiceUnavailable(TransientError):
    """``service`` is a short name for people: ``kafka``, ``s3://bucket``."""

    def __init__(self, message: str, *, service: str, retry_after: float = 1.0) -> None:
        super().__init__(message, retry_after=retry_after)
        self.service = service


class KafkaUnavailable(ServiceUnavailable):
    pass


class ObjectStoreUnavailable(ServiceUnavailable):
    pass


class ObjectStoreRefused(ReplicatorError):
    """``where`` is ``s3://bucket/key`` (or ``s3://bucket``) for people."""

    def __init__(self, message: str, *, where: str) -> None:
        super().__init__(message)
        self.where = where


class Incomplete(ReplicatorError):
    """The work stopped short; the message names what is missing and how to finish it."""


class IncompleteRebuild(Incomplete):
    """A rebuild applied what it could but history was missing: ``missing`` maps
    ``(topic, partition)`` to the ``(first, end)`` offsets it could not read."""

    def __init__(self, message: str, missing: dict[tuple[str, int], tuple[int, int]]) -> None:
        super().__init__(message)
        self.missing = missing


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


class ImplausibleHeartbeat(PermanentError):
    reason = "implausible_heartbeat"
