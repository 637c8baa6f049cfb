"""``replicator region redrive R``: re-apply rows region R refused for a reason that went away.

A row dead-lettered as ``unknown_schema`` (its view's schema reached R's manifest only after
``worker.schema_wait_seconds``) or ``future_event_time`` is kept in the dead-letter topic with
its payload, its headers and where it came from (``dlq_source`` = ``topic:partition:offset``).
The redrive reads that topic from its start to its current end, takes R's records with the
chosen reasons, and applies each as the record it came from (same topic, partition and
offset, hence the same last-writer-wins version) through the worker's own checks and apply
script (the rebuild's replay loop). A row newer in the region meanwhile is left alone; a
row whose reason still holds is refused again and counted, not dead-lettered twice.
Running it again is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from replicator.adapters.kafka_config import client_config
from replicator.config import Topology
from replicator.core.ports import Message
from replicator.core.wire import H_REASON, H_REGION, H_SOURCE
from replicator.rebuild import LogReplaySource, RebuildReport, replay

REDRIVABLE = ("unknown_schema", "future_event_time")
"""Reasons that can go away: a schema released later, a clock put right."""


@dataclass(frozen=True)
class RedrivenMessage:
    """A dead letter as the record it came from (``Message`` for the worker)."""

    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _headers: list[tuple[str, bytes]]
    _timestamp: tuple[int, int]

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def error(self) -> Any:
        return None

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp


def as_original(message: Message, region: str, reasons: Sequence[str]) -> RedrivenMessage | None:
    """The original record of a dead letter of ``region`` with one of ``reasons``, else None."""
    headers = [(k, bytes(v or b"")) for k, v in (message.headers() or [])]
    found = dict(headers)
    if found.get(H_REGION, b"").decode() != region:
        return None
    if found.get(H_REASON, b"").decode() not in reasons:
        return None
    topic, _, rest = found.get(H_SOURCE, b"").decode().partition(":")
    partition, _, offset = rest.partition(":")
    if not (topic and partition.isdigit() and offset.isdigit()):
        return None
    original = [(k, v) for k, v in headers if not k.startswith("dlq_")]
    return RedrivenMessage(
        topic, int(partition), int(offset), message.value(), original, message.timestamp()
    )


class DeadLetterSource:
    """The dead-letter topic, start to current end, as the chosen region's original records.

    Not a ``GroupPositions``: the worker raises no applied marks for these positions (they
    are old offsets of partitions whose marks are already past them)."""

    def __init__(self, replay_source: LogReplaySource, region: str, reasons: Sequence[str]):
        self._log = replay_source
        self._region = region
        self._reasons = tuple(reasons)
        self.redriven = 0

    def __getattr__(self, name: str) -> Any:  # end, total, missing, done, records_read...
        if name in ("committed", "rewind"):
            raise AttributeError(name)
        return getattr(self._log, name)

    def poll_batch(self, max_messages: int, timeout: float) -> Sequence[Message]:
        out = []
        for message in self._log.poll_batch(max_messages, timeout):
            original = as_original(message, self._region, self._reasons)
            if original is not None:
                out.append(original)
        self.redriven += len(out)
        return out


def redrive_region(
    topology: Topology,
    region: str,
    *,
    reasons: Sequence[str] = REDRIVABLE,
    progress: Callable[[str], None] = print,
    retry_seconds: float = 30.0,
) -> tuple[int, RebuildReport]:
    """(records redriven, replay counts; ``skipped_bad`` = still refused). Raises as
    ``rebuild_region`` does (``Incomplete`` when the region's manifest stays unreadable)."""
    topic = topology.kafka.dead_letter_topic
    log_source = LogReplaySource(
        client_config(topology, "worker", region=region),
        "^" + topic.replace(".", r"\.") + "$",
        group_id=f"{topology.consumer_group(region)}-redrive",
    )
    log_source.missing = {}  # dead letters older than the retention are gone by design
    source = DeadLetterSource(log_source, region, reasons)
    report = replay(
        topology,
        region,
        source,  # type: ignore[arg-type]  # LogReplaySource's interface, by delegation
        what="redrive",
        progress=progress,
        retry_seconds=retry_seconds,
    )
    progress(
        f"redrove {source.redriven:,} dead letters of {region} ({', '.join(reasons)}): "
        f"{report.rows_applied:,} rows applied, {report.skipped_bad:,} records still refused"
    )
    return source.redriven, report
