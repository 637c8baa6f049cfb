"""Sections of the topology each process reads for itself: the worker, regional reads,
region snapshots and the local stack (``replicator.config.Topology`` holds them; the
regions, Kafka and security sections live beside it). ``Section`` is the base of every
section: unknown fields are refused, values are frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


RENAMED_FIELDS: dict[str, dict[str, str]] = {
    "worker": {
        "max_batch_rows": (
            "renamed to max_records_per_poll, which counts Kafka records per poll (each holds "
            "up to the publisher's max_batch_rows rows); the old value divided by 100 keeps "
            "the old behaviour (5000 -> 50)"
        ),
        "key_ttl_seconds": (
            "removed: regions now expire keys by the primary's Feast setting, carried on every "
            "record; set online_store.key_ttl_seconds in the primary's feature_store.yaml "
            "(docs/replication.md) and delete worker.key_ttl_seconds here"
        ),
    },
}
"""Section -> old field -> what to do: a renamed field is an error, never silently ignored."""


def _refuse_renamed(section: str, data: Any) -> Any:
    if isinstance(data, dict):
        for old, advice in RENAMED_FIELDS.get(section, {}).items():
            if old in data:
                raise ValueError(f"{section}.{old} was {advice}")
    return data


class WorkerSettings(Section):
    consumer_group_prefix: str = "replicator"
    max_records_per_poll: int = Field(default=50, ge=1)
    """Kafka records a worker takes per poll and applies in one Redis round trip."""
    poll_timeout_seconds: float = Field(default=0.05, gt=0)
    commit_interval_seconds: float = Field(default=0.1, ge=0)
    """Offsets of applied records are committed at most this often (0: after every apply)."""
    max_future_skew_seconds: float = Field(default=300.0, ge=0)
    """Rows whose event time is further than this ahead of their publish time (the primary's
    stamp on the record; the worker's clock for a record without one) go to the DLQ."""
    schema_wait_seconds: float = Field(default=600.0, ge=0)
    """Rows of a schema the region's registry does not list wait this long for it (their
    partition paused), then go to the dead-letter topic."""
    metrics_port: int | None = None
    session_timeout_seconds: float = Field(default=3.0, ge=1)
    """How long a worker that died without leaving (kill -9, lost host) holds its partitions
    before the group hands them to the region's other workers. Kafka's consumer default is
    45 s. The broker must accept it: its ``group.min.session.timeout.ms`` is 6 s on a stock
    broker, 1 s in the local stack and docker-compose.yml (a worker refused says so and
    exits 2). Heartbeats go every sixth of it."""
    on_data_loss: Literal["replay", "alert"] = "replay"
    """When the region's Redis lost rows the group had committed (restart from an old
    snapshot, failover to an empty replica, FLUSHALL): ``replay`` them from the log at once,
    or ``alert`` and stop committing until ``replicator region rebuild`` (docs/replication.md)."""
    data_loss_check_seconds: float = Field(default=1.0, gt=0)
    """How often idle partitions' applied marks are checked (busy ones: on every poll)."""
    max_heartbeat_lead_seconds: float = Field(default=60.0, gt=0)
    """A heartbeat stamped further than this ahead of its record's broker timestamp is
    dead-lettered as ``implausible_heartbeat`` (forged), never stored."""
    metrics_host: str = "127.0.0.1"
    """Address /metrics binds to; ``0.0.0.0`` in a pod so Prometheus can scrape it."""
    clock_offset_seconds: float = 0.0
    """Fault injection only (docs/chaos.md): shifts the worker's clock by this many seconds,
    as a region whose host clock is skewed. Keep 0 in production."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        return _refuse_renamed("worker", data)


class ReadSettings(Section):
    """Regional reads (``replicator.feast_reader``, ``replicator region health``)."""

    max_staleness_seconds: float = Field(default=5.0, gt=0)
    """A region whose replication staleness is above this is failed over from."""
    recover_staleness_seconds: float | None = Field(default=None, gt=0)
    """Hysteresis: a region failed over from for staleness counts as healthy again only at or
    below this (default: half of ``max_staleness_seconds``)..."""
    recover_checks: int = Field(default=3, ge=1)
    """...for this many health checks in a row."""
    health_interval_seconds: float = Field(default=1.0, gt=0)
    failback_seconds: float = Field(default=10.0, gt=0)
    """How often reads try to return to a healthier, nearer region."""
    failures_to_failover: int = Field(default=2, ge=1)
    """Failed commands on the active region that open its circuit (then reads fail over)."""
    socket_timeout_seconds: float = Field(default=0.5, gt=0)
    on_stale: Literal["refuse", "mark"] = "refuse"
    """When no region meets a read's ``max_staleness``: raise ``StaleRead``, or serve the
    nearest reachable region and mark the read (``within_bound: false``)."""

    @property
    def recover_below(self) -> float:
        return self.recover_staleness_seconds or self.max_staleness_seconds / 2


class SnapshotSettings(Section):
    """Region snapshots in object storage (``replicator region snapshot R``)."""

    interval_seconds: float = Field(default=6 * 3600.0, gt=0)
    """Time between snapshots of ``replicator region snapshot R --schedule``."""
    keep: int = Field(default=4, ge=1)
    """Finished snapshots kept per region; older ones are deleted after each snapshot."""


class KafkaListener(Section):
    """An extra Kafka listener of the local stack, e.g. one per region behind a WAN proxy.

    Broker ``i`` (1-based) listens on ``port + i - 1`` and advertises
    ``advertised_port + i - 1`` (a proxy in front of it), both on 127.0.0.1.
    """

    port: int = Field(ge=1, le=65535)
    advertised_port: int = Field(ge=1, le=65535)


class CheckerScrapeTls(Section):
    """How a Prometheus checks ``consistency serve`` over HTTPS (its ``tls_config``)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None
    """The name the checker's certificate holds, when not the address scraped."""

    @model_validator(mode="after")
    def _pair(self) -> CheckerScrapeTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate and key)")
        return self


class StackSettings(Section):
    """Only for the local stack (``replicator stack``)."""

    state_dir: Path = Path(".stack")
    kafka_brokers: int = Field(default=1, ge=1, le=9)
    """Brokers of the local KRaft cluster. With 3 or more: replication factor 3,
    ``min.insync.replicas=2``, no unclean leader election. ``kafka.bootstrap_servers`` then
    lists one 127.0.0.1 port per broker; controller ports count up from
    ``kafka_controller_port``."""
    kafka_listeners: dict[str, KafkaListener] = Field(default_factory=dict)
    """Extra listeners by name (upper case, e.g. ``EU_WEST_1``), for clients that reach the
    brokers through a proxy: Kafka clients follow the advertised addresses."""
    kafka_controller_port: int = 19093
    kafka_heap_mb: int = 384
    s3_port: int = 19000
    s3_heap_mb: int = 192
    prometheus_port: int = 19090
    """Optional local Prometheus (``replicator demo`` starts it; docs/local-stack.md)."""
    worker_metrics_port: int = 19101
    """The first region's worker /metrics port in the local stack; the next regions count up."""
    checker_metrics_address: str = "127.0.0.1:9108"
    """Where the local Prometheus scrapes ``consistency serve`` (its ``server`` setting)."""
    checker_metrics_tls: CheckerScrapeTls | None = None
    """Set when ``consistency serve`` runs with ``server.tls``: the local Prometheus then
    scrapes it over HTTPS, trusting ``ca_file`` (and presenting ``cert_file``/``key_file``
    when the checker asks for client certificates)."""
