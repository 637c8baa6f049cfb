"""A worker's fetched-bytes meter (replicator.core.egress) and how the worker publishes it."""

from __future__ import annotations

from fakes import FakeStore

from replicator.core.egress import OVERHEAD, EgressCounts, EgressMeter, TopicBytes, apportion
from replicator.worker import Worker, WorkerOptions

A, B = "feast.p.a", "feast.p.b"
GROUP = "replicator-p-eu-west-1"


def test_wire_bytes_are_shared_by_record_bytes_and_add_up_exactly() -> None:
    assert apportion(100, {A: 1, B: 2}) == {A: 33, B: 67}
    shares = apportion(1_000_003, {A: 7, B: 11, "c": 13})
    assert sum(shares.values()) == 1_000_003
    assert apportion(0, {A: 1}) == {}


def test_wire_bytes_without_records_are_overhead() -> None:
    assert apportion(500, {}) == {OVERHEAD: 500}


def test_meter_counts_records_and_apportions_each_wire_report() -> None:
    meter = EgressMeter("g", since_ns=1)
    meter.fetched(A, 300)
    meter.fetched(B, 100)
    meter.wire_total(200, {A: 300, B: 100})  # 200 bytes read: 3/4 for A, 1/4 for B
    meter.wire_total(250, {A: 300, B: 100})  # no message fetched since: overhead
    meter.fetched(A, 10)
    meter.wire_total(260, {A: 310, B: 100})
    counts = meter.counts()
    assert counts.topics[A] == TopicBytes(records=2, record_bytes=310, wire_bytes=160)
    assert counts.topics[B] == TopicBytes(records=1, record_bytes=100, wire_bytes=50)
    assert counts.topics[OVERHEAD] == TopicBytes(wire_bytes=50)
    assert (counts.record_bytes, counts.wire_bytes) == (410, 260)


def test_wire_bytes_follow_what_the_client_fetched_not_what_the_worker_took_yet() -> None:
    meter = EgressMeter("g", since_ns=1)
    meter.fetched(A, 100)  # handed over now, fetched in an earlier interval
    meter.wire_total(1000, {A: 100, B: 900})  # this interval the client fetched B
    assert meter.counts().topics[B].wire_bytes == 900


def test_a_new_client_counts_its_wire_bytes_from_zero() -> None:
    meter = EgressMeter("g", since_ns=1)
    meter.wire_total(1000, {A: 900})
    meter.wire_total(40, {A: 30})  # the consumer was recreated: its totals restarted
    assert meter.counts().wire_bytes == 1040
    assert meter.counts().topics[A].wire_bytes == 1040


def test_unpublished_hands_each_byte_over_once() -> None:
    meter = EgressMeter("g", since_ns=5)
    meter.fetched(A, 100)
    first = meter.unpublished()
    assert first.topics == {A: TopicBytes(records=1, record_bytes=100)}
    assert meter.unpublished() == first  # not published yet (Redis down): offered again
    meter.published(first)
    assert meter.unpublished().topics == {}
    meter.fetched(A, 7)
    assert meter.unpublished().topics == {A: TopicBytes(records=1, record_bytes=7)}


def test_redis_fields_round_trip() -> None:
    counts = EgressCounts("g", 42, {A: TopicBytes(3, 300, 90), OVERHEAD: TopicBytes(0, 0, 12)})
    fields: dict[str, str | bytes | int] = {k: str(v) for k, v in counts.to_fields().items()}
    fields["since_ns"] = b"42"
    fields["junk"] = "x"
    assert EgressCounts.from_fields("g", fields) == counts
    assert EgressCounts.from_fields("g", {}) is None


class _MeteredSource:
    """A change source with a meter, as ``KafkaSource`` has; nothing to poll."""

    def __init__(self) -> None:
        self.egress = EgressMeter(GROUP, since_ns=9)
        self.assigned: set[tuple[str, int]] = set()

    def poll_batch(self, max_messages: int, timeout: float) -> list[object]:
        return []

    def positions_past_markers(self) -> dict[tuple[str, int], int]:
        return {}

    def close(self) -> None:
        pass


class _DownStore(FakeStore):
    def add_egress(self, delta: EgressCounts) -> bool:
        self.calls["add_egress"] = self.calls.get("add_egress", 0) + 1
        return False


def _worker(source: _MeteredSource, store: FakeStore) -> Worker:
    return Worker(
        "eu-west-1",
        source=source,  # type: ignore[arg-type]
        store=store,
        dead_letters=None,  # type: ignore[arg-type]
        catalog=None,  # type: ignore[arg-type]
        options=WorkerOptions(partitions=1, stats_interval_seconds=0.0),
    )


def test_worker_adds_what_it_fetched_to_the_regions_totals_once() -> None:
    source, store = _MeteredSource(), FakeStore()
    worker = _worker(source, store)
    source.egress.fetched(A, 120)
    worker.step()
    worker.step()  # nothing new: nothing added
    source.egress.fetched(A, 30)
    worker.step()
    added = [delta.topics[A].record_bytes for delta in store.egress]
    assert added == [120, 30]
    assert {delta.group for delta in store.egress} == {GROUP}


def test_bytes_the_region_could_not_take_are_offered_again() -> None:
    source, store = _MeteredSource(), _DownStore()
    worker = _worker(source, store)
    source.egress.fetched(A, 120)
    worker.step()
    assert source.egress.unpublished().topics[A].record_bytes == 120
