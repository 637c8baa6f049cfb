"""A region's worker: applies the primary's writes to the region's Redis, in order, once.

Per poll: read up to N records, check each (wire version, schema known in this region, event
time not too far ahead), apply the row batches in one Redis round trip through the
last-writer-wins script, make dead letters durable, and only then commit the offsets. A crash
anywhere before the commit means redelivery, which the apply script makes harmless.

Rows of a view whose schema the region's registry does not list yet are parked, not dropped
(``replicator.schema_wait``): that topic-partition is paused at the record and resumes as soon
as the region's manifest lists the schema; only after ``schema_wait_seconds`` do such rows go
to the dead-letter topic.

Failures (docs/replication.md, "Errors"; ``replicator.retrying``): a ``TransientError`` is
retried with backoff for as long as it lasts; a ``PermanentError`` (the record is malformed,
or the store refused it for a reason a retry cannot change) dead-letters the record at once;
any other error is retried, and when the same error comes back ``max_attempts`` times in a
row it counts as permanent too: a record that cannot be applied never holds its partition.
Dead letters and commits have no record to blame: their repeated failure stops the worker,
uncommitted.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from replicator.core import wire
from replicator.core.egress import EgressMeter
from replicator.core.ports import ChangeSource, DeadLetters, Message, SchemaCatalog, Store, position
from replicator.core.records import ApplyOutcome, EncodedBatch, Heartbeat, Kind
from replicator.errors import (
    FutureEventTime,
    ImplausibleHeartbeat,
    MalformedRecord,
    PermanentError,
    UnknownSchema,
)
from replicator.healing import DataLossGuard
from replicator.retrying import Retrier, Stopped
from replicator.schema_wait import Parked, SchemaWait
from replicator.worker_stats import WorkerStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerOptions:
    partitions: int
    max_future_skew_seconds: float = 300.0
    max_messages: int = 500
    poll_timeout_seconds: float = 0.05
    stats_interval_seconds: float = 1.0
    max_backoff_seconds: float = 5.0
    max_attempts: int = 5
    """Attempts of one call failing with the same unexpected error (neither transient nor
    permanent) before it counts as permanent: its record goes to the dead-letter topic."""
    schema_wait_seconds: float = 0.0
    """How long rows of an unknown schema wait for the region's registry (0: dead-letter now)."""
    publish_stats: bool = True
    """Write the counters to the region's Redis every ``stats_interval_seconds``."""
    max_heartbeat_lead_seconds: float = 60.0
    """A heartbeat stamped further than this ahead of its record's broker timestamp was not
    emitted by the primary: it is dead-lettered (``implausible_heartbeat``), never stored."""
    commit_interval_seconds: float = 0.0
    """Offsets of applied records are committed at most this often (0: after every apply);
    a crash or a rebalance redelivers at most this much, which last-writer-wins makes
    harmless. Pending offsets are committed when the worker stops."""


class Worker:
    def __init__(
        self,
        region: str,
        *,
        source: ChangeSource,
        store: Store,
        dead_letters: DeadLetters,
        catalog: SchemaCatalog,
        options: WorkerOptions,
        clock: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], float] = time.monotonic,
        guard: DataLossGuard | None = None,
    ) -> None:
        """``clock``: wall clock in ns (lag, future-skew limit, heartbeats applied);
        ``monotonic``: seconds, for intervals only (stats cadence, schema wait)."""
        self.region = region
        self.source = source
        self.store = store
        self.dead_letters = dead_letters
        self.catalog = catalog
        self.options = options
        self.clock = clock
        self.monotonic = monotonic
        self.guard = guard
        """Notices a Redis that lost committed rows (replicator/healing.py); None: no check."""
        self.stats = WorkerStats()
        self._stop = threading.Event()
        self._last_stats = 0.0
        self._uncommitted: dict[tuple[str, int], int] = {}
        self._last_commit = float("-inf")
        self._schemas = SchemaWait(region, options.schema_wait_seconds, monotonic)
        self._retrying = Retrier(
            self._stop,
            max_attempts=options.max_attempts,
            max_backoff_seconds=options.max_backoff_seconds,
        )

    @property
    def parked(self) -> dict[tuple[str, int], Parked]:
        """Partitions waiting for a schema, with the record they wait at."""
        return dict(self._schemas.parked)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> WorkerStats:
        """Apply until ``stop()``; the batch in hand is finished and committed first."""
        log.info("worker for %s started", self.region, extra={"event": "worker_started"})
        try:
            while not self._stop.is_set():
                self.step()
        except Stopped:
            log.info("stopped while retrying; uncommitted records will be redelivered")
        finally:
            self._commit_pending()
            if self.options.publish_stats:
                self._publish_stats()
            self.source.close()
        log.info(
            "worker for %s stopped",
            self.region,
            extra={"event": "worker_stopped", **self.summary()},
        )
        return self.stats

    def summary(self) -> dict[str, float]:
        """The counters published next to the data and in the logs."""
        return {**self.stats.summary(), **(self.guard.summary() if self.guard else {})}

    def step(self) -> int:
        if self.guard is not None:
            self._retrying(self.guard.poll)
        if self._schemas.parked:
            self._schemas.check(self.source, self.catalog)
        messages = self.source.poll_batch(
            self.options.max_messages, self.options.poll_timeout_seconds
        )
        if messages:
            self._process(messages)
        elif moved := self.source.positions_past_markers():
            self._uncommitted.update(moved)  # past transaction markers: nothing to apply
        self._commit_due()
        self.stats.assigned_partitions = len(getattr(self.source, "assigned", ()))
        now = self.monotonic()
        if (
            self.options.publish_stats
            and now - self._last_stats >= self.options.stats_interval_seconds
        ):
            self._last_stats = now
            self._publish_stats()
        return len(messages)

    def _publish_stats(self) -> None:
        """The counters, and ``updated_ns`` (this worker's wall clock) so a reader can tell
        a summary written after a moment it cares about from an older one."""
        self.store.write_stats(self.region, {**self.summary(), "updated_ns": self.clock()})
        meter = getattr(self.source, "egress", None)
        if isinstance(meter, EgressMeter):  # fetched bytes, added to the group's totals
            delta = meter.unpublished()
            if delta.topics and self.store.add_egress(delta):
                meter.published(delta)

    # The pipeline ---------------------------------------------------------------------
    def _process(self, messages: Sequence[Message]) -> None:
        pending: list[tuple[EncodedBatch, wire.RecordHeader, Message]] = []
        heartbeats: list[tuple[Message, Heartbeat]] = []
        positions: dict[tuple[str, int], int] = {}
        for message in messages:
            topic, partition, offset = position(message)
            if (topic, partition) in self._schemas.parked:
                continue  # fetched before the pause: delivered again on resume
            positions[(topic, partition)] = offset + 1
            try:
                header = wire.read_header(message.headers())
                if header.kind is Kind.ROWS:
                    if self._schemas.must_wait(header, self._is_known):
                        self._schemas.park(self.source, (topic, partition, offset), header)
                        positions[(topic, partition)] = offset  # commit up to, not past, it
                        continue
                    pending.extend((b, header, message) for b in self._admit(message, header))
                elif header.kind is Kind.DELETE_VIEW:
                    self._apply(pending)  # rows before the deletion go first
                    pending = []
                    self._delete_view(message, header)
                else:
                    heartbeat = wire.decode_heartbeat(message.value() or b"")
                    heartbeats.append((message, self._plausible(message, heartbeat)))
            except PermanentError as exc:
                self._dead_letter(message, exc)
        self._apply(pending)
        # A heartbeat counts as applied once every row before it in its partition is.
        applied_ns = self.clock()
        # No real stamp is further ahead of now: a stored one above this was forged.
        plausible_until_ns = applied_ns + self._heartbeat_lead_ns
        for message, heartbeat in heartbeats:
            topic, partition, _ = position(message)
            if self.guard is not None and self.guard.holds((topic, partition)):
                continue  # a partition missing rows must not look fresh
            record = functools.partial(
                self.store.record_heartbeat,
                topic,
                partition,
                heartbeat,
                applied_ns,
                plausible_until_ns=max(plausible_until_ns, self._limit_ns(message)),
            )
            try:
                self._retrying(record)
            except PermanentError as exc:
                self._dead_letter(message, exc)
        self._retrying(self.dead_letters.flush)
        # Offsets may advance only now: Redis acknowledged, dead letters are durable.
        self._uncommitted.update(positions)

    # Offsets ----------------------------------------------------------------------------
    def _owned(self) -> dict[tuple[str, int], int]:
        """Pending offsets of partitions still assigned (a revoked one belongs to another
        worker now: its offset must not move back)."""
        assigned = getattr(self.source, "assigned", None)
        if assigned is None:
            return dict(self._uncommitted)
        return {tp: o for tp, o in self._uncommitted.items() if tp in assigned}

    def _commit_due(self) -> None:
        """Commit the applied records' offsets once ``commit_interval_seconds`` has passed."""
        now = self.monotonic()
        if not self._uncommitted or now - self._last_commit < self.options.commit_interval_seconds:
            return
        self._commit(self._owned())
        self._uncommitted = {}
        self._last_commit = now

    def _commit(self, positions: dict[tuple[str, int], int]) -> None:
        """The one way offsets advance: applied marks raised first (a partition whose Redis
        lost rows is held back), then the commit."""
        if self.guard is not None:
            guard = self.guard
            positions = self._retrying(lambda: guard.marked(positions))
        self._retrying(lambda: self.source.commit(positions))

    def _commit_pending(self) -> None:
        """On the way out: what is still pending, through the same path."""
        positions = self._owned()
        self._uncommitted = {}
        if not positions:
            return
        try:
            self._commit(positions)
        except Exception as exc:  # stopping anyway: the records are redelivered, harmlessly
            log.warning("last offset commit failed (records will be redelivered): %s", exc)

    # Heartbeats the primary could not have emitted ------------------------------------------
    @property
    def _heartbeat_lead_ns(self) -> int:
        return int(self.options.max_heartbeat_lead_seconds * 1e9)

    def _limit_ns(self, message: Message) -> int:
        """The latest stamp the primary can have put on this record: its broker timestamp
        (set by the emitter's producer, or by the broker) plus the allowed lead; the worker's
        clock stands in when the record has no timestamp."""
        kind, millis = message.timestamp()
        reference = millis * 1_000_000 if kind and millis >= 0 else self.clock()
        return reference + self._heartbeat_lead_ns

    def _plausible(self, message: Message, heartbeat: Heartbeat) -> Heartbeat:
        limit = self._limit_ns(message)
        if heartbeat.emitted_ns > limit:
            raise ImplausibleHeartbeat(
                f"heartbeat stamped {heartbeat.emitted_ns} ns, more than "
                f"{self.options.max_heartbeat_lead_seconds:.0f}s after its record's timestamp "
                f"({limit - self._heartbeat_lead_ns} ns): not emitted by the primary"
            )
        return heartbeat

    # Admitting rows -------------------------------------------------------------------
    def _is_known(self, feature_view: str, fingerprint: str) -> bool:
        """The catalog's answer; while it cannot answer (S3 down), retried, never guessed."""
        return self._retrying(lambda: self.catalog.is_known(feature_view, fingerprint))

    def _admit(self, message: Message, header: wire.RecordHeader) -> list[EncodedBatch]:
        if not self._is_known(header.feature_view, header.schema_fingerprint):
            raise UnknownSchema(
                f"feature view {header.feature_view!r} with schema {header.schema_fingerprint!r} "
                f"is not in {self.region}'s registry"
            )
        payload = message.value() or b""
        # Judged against the primary's publish stamp, not this region's clock: a worker whose
        # clock runs slow must not refuse rows, and every region (and a rebuild, years later)
        # decides alike. Only a record without a stamp falls back to the worker's clock. Rows
        # the primary accepted (its ``lead_s`` header) are never refused: it acknowledged them.
        now_ns = header.published_ns or self.clock()
        lead_s = max(int(self.options.max_future_skew_seconds), header.accepted_lead_s)
        limit_s = now_ns // 1_000_000_000 + lead_s
        if header.max_event_s > limit_s:
            batch = wire.decode_rows(header, payload)
            kept, future = wire.split_rows(batch, [r.event_s <= limit_s for r in batch.rows])
            _, future_payload = wire.encode_rows(future)
            self._dead_letter(
                message,
                FutureEventTime(
                    f"{len(future.rows)} row(s) with event time more than "
                    f"{lead_s}s ahead of their publish time"
                ),
                payload=future_payload,
            )
            if not kept.rows:
                return []
            _, payload = wire.encode_rows(kept)
        _, partition, offset = position(message)
        encoded = EncodedBatch(payload, header.feature_view, partition, offset, header.max_event_s)
        return [replace(encoded, key_ttl_seconds=header.key_ttl_seconds)]

    def _apply(self, pending: list[tuple[EncodedBatch, wire.RecordHeader, Message]]) -> None:
        if not pending:
            return
        began = time.perf_counter()
        batches = [batch for batch, _, _ in pending]
        try:
            outcomes = self._retrying(lambda: self.store.apply(batches))
        except PermanentError as exc:  # the call failed for good: find the record(s) at fault
            outcomes = [exc] if len(batches) == 1 else [self._apply_alone(b) for b in batches]
        self.stats.apply_ms.append((time.perf_counter() - began) * 1000)
        now = self.clock()
        for (_, header, message), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, PermanentError):
                self._dead_letter(message, outcome)
                continue
            assert isinstance(outcome, ApplyOutcome)
            self.stats.rows_applied += outcome.applied
            self.stats.rows_skipped_older += outcome.skipped_older
            self.stats.batches_applied += 1
            if header.published_ns:
                self.stats.lag_ms.append((now - header.published_ns) / 1e6)
        if not self.stats.first_applied_ns:
            self.stats.first_applied_ns = now
            log.info("first batch applied", extra={"event": "first_batch_applied"})

    def _apply_alone(self, batch: EncodedBatch) -> ApplyOutcome | PermanentError:
        try:
            [outcome] = self._retrying(lambda: self.store.apply([batch]))
        except PermanentError as exc:
            return exc
        return outcome

    def _delete_view(self, message: Message, header: wire.RecordHeader) -> None:
        delete = wire.decode_delete_view(header, message.value() or b"")
        _, partition, offset = position(message)
        touched = self._retrying(
            lambda: self.store.delete_view(delete, partition, self.options.partitions, offset)
        )
        self.stats.views_deleted += 1
        log.info(
            "removed feature view %s from %d keys (partition %d)",
            delete.feature_view,
            touched,
            partition,
            extra={"event": "view_deleted", "feature_view": delete.feature_view},
        )

    def _dead_letter(
        self, message: Message, error: PermanentError, payload: bytes | None = None
    ) -> None:
        self.dead_letters.send(message, error.reason, str(error), payload)
        self.stats.dead_letters += 1
        reasons = self.stats.dead_letter_reasons
        reasons[error.reason] = reasons.get(error.reason, 0) + 1


__all__ = ["MalformedRecord", "Worker", "WorkerOptions", "WorkerStats"]
