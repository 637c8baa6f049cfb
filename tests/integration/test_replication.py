"""Replication on real Kafka, Redis and S3: every Feast write reaches every region exactly.

The expected state of a region is what Feast's own ``RedisOnlineStore`` writes for the same
calls into a reference Redis; regions must match it byte for byte on every Feast key.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import redis
from confluent_kafka import Producer
from harness import (
    END,
    ReferenceRedis,
    ReplicatedProject,
    dead_letter_reasons,
    primary_fingerprint,
    recent_window,
)
from waiting import wait_until

from replicator.adapters.kafka_config import client_config
from replicator.adapters.redis_store import connect
from replicator.config import Topology
from replicator.core import wire
from replicator.core.keys import row_versions_key
from replicator.core.records import Row, RowBatch
from replicator.rebuild import rebuild_region
from replicator.regional_config import feast_env, write_regional_repo

pytestmark = pytest.mark.slow


@pytest.fixture
def project(topology: Topology, config_file: Path, tmp_path: Path) -> Iterator[ReplicatedProject]:
    replicated = ReplicatedProject(config_file, tmp_path)
    replicated.generate_data(n_cards=400, n_merchants=80, days=3)
    yield replicated
    replicated.stop()


def test_every_write_path_reaches_every_region_byte_identical(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    start, end = recent_window()
    for store in (primary, expected_store):
        store.materialize(start, end)
        store.push(
            "card_spending_push", project.fresh_rows("card_spending_stats", 150, timedelta(hours=1))
        )
        store.write_to_online_store(
            "merchant_risk", project.fresh_rows("merchant_risk", 40, timedelta(hours=2))
        )
    expected = project.feast_keys(reference.client)
    assert len(expected) > 1000, "the reference should hold every entity of the three views"
    project.wait_converged(expected)


def test_regional_reader_is_read_only_and_feast_sdk_reads_primary_values(
    project: ReplicatedProject,
    reference: ReferenceRedis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from feast import FeatureStore

    primary, _ = project.feast_stores(reference)
    project.start_workers()
    primary.materialize(*recent_window())
    entity_rows = [
        {"card_id": int(card), "merchant_id": str(merchant)}
        for card, merchant in pd.read_parquet(
            project.repo / "data" / "card_merchant_affinity.parquet"
        )[["card_id", "merchant_id"]]
        .head(20)
        .itertuples(index=False)
    ]
    features = primary.get_feature_service("fraud_model_v1")

    def read(store: FeatureStore) -> dict:
        return store.get_online_features(features=features, entity_rows=entity_rows).to_dict()

    at_primary = wait_until(
        lambda: (d := read(primary)) and all(v is not None for v in d["risk_score"]) and d,
        60,
        "the primary region's worker to apply the materialized rows",
    )
    for region in project.topology.replica_regions:
        repo = write_regional_repo(project.topology, region, tmp_path / region).parent
        for name, value in feast_env(project.topology, region).items():
            monkeypatch.setenv(name, value)
        regional = FeatureStore(repo_path=str(repo))
        wait_until(
            lambda regional=regional: read(regional) == at_primary,
            90,
            f"{region}'s Feast SDK reads to equal the primary's",
            observe=lambda regional=regional: _differing(read(regional), at_primary),
        )

        # The region's reader user reads the replicated bytes and cannot change them.
        admin = project.admin(region)
        key = next(iter(project.feast_keys(admin)))
        held = admin.hgetall(key)
        endpoint = project.topology.region(region).redis
        client = connect(endpoint, endpoint.reader)
        try:
            assert client.hgetall(key) == held
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.hset(key, b"_ts:card_spending_stats", b"tampered")
            assert admin.hgetall(key) == held, "a refused write must leave the key unchanged"
        finally:
            client.close()


def _differing(got: dict, expected: dict) -> dict:  # type: ignore[type-arg]
    """Up to three (row, expected, got) per column where two Feast reads differ."""
    return {
        column: [
            (i, expected[column][i], v) for i, v in enumerate(values) if v != expected[column][i]
        ][:3]
        for column, values in got.items()
        if values != expected.get(column)
    }


def test_worker_killed_mid_stream_converges_without_loss(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    victim = project.topology.replica_regions[0]
    others = [r for r in project.topology.regions if r != victim]
    project.start_workers(others)
    process = project.start_worker_process(victim)
    frame = project.fresh_rows("card_spending_stats", 400, timedelta(hours=1))
    for i in range(20):  # 20 successive versions of 400 cards
        frame["event_timestamp"] = END + timedelta(hours=1, seconds=i)
        frame["txn_count_24h"] = i
        primary.write_to_online_store("card_spending_stats", frame)
        expected_store.write_to_online_store("card_spending_stats", frame)
        if i == 8:
            wait_until(lambda: project.feast_keys(project.admin(victim)), 30, "the victim to start")
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
    project.start_worker_process(victim)
    project.wait_converged(project.feast_keys(reference.client))


def test_duplicates_and_older_rows_never_change_state(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    newer = project.fresh_rows("merchant_risk", 50, timedelta(hours=3))
    older = newer.copy()
    older["event_timestamp"] = END + timedelta(hours=1)
    older["risk_score"] = 0.0
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", newer)
        store.write_to_online_store("merchant_risk", newer)  # duplicate delivery
        store.write_to_online_store("merchant_risk", older)  # late, older rows
    expected = project.feast_keys(reference.client)
    # Every worker has seen all 150 rows (50 newer, 50 duplicates, 50 older): only then is a
    # state equal to the reference proof that duplicates and older rows changed nothing.
    workers = [w.worker for w in project.workers]
    wait_until(
        lambda: all(w.stats.rows_applied + w.stats.rows_skipped_older >= 150 for w in workers),
        120,
        "every region's worker to apply or skip all 150 rows",
        observe=lambda: {
            w.region: (w.stats.rows_applied, w.stats.rows_skipped_older) for w in workers
        },
    )
    for region in project.topology.regions:
        assert project.feast_keys(project.admin(region)) == expected, region
    refused = {w.region: w.stats.rows_skipped_older >= 50 for w in workers}
    assert all(refused.values()), f"every region refuses the 50 older rows: {refused}"


def test_same_event_time_correction_propagates_where_feast_drops_it(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    """The documented tie rule: equal event time -> later created time wins (Feast skips)."""
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    original = project.fresh_rows("merchant_risk", 5, timedelta(hours=1))
    correction = original.copy()
    correction["created"] = END + timedelta(hours=2)
    correction["risk_score"] = 0.999
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", original)
    project.wait_converged(project.feast_keys(reference.client))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", correction)

    features = ["merchant_risk:risk_score"]
    entity_rows = [{"merchant_id": m} for m in correction["merchant_id"]]
    assert (
        expected_store.get_online_features(features, entity_rows).to_dict()["risk_score"]
        != [0.999] * 5
    ), "Feast itself drops a same-time correction"
    wait_until(
        lambda: (
            primary.get_online_features(features, entity_rows).to_dict()["risk_score"]
            == [0.999] * 5
        ),
        30,
        "the correction to reach the primary region",
    )


def test_bad_input_goes_to_dead_letters_and_later_rows_still_apply(
    topology: Topology, config_file: Path, tmp_path: Path, reference: ReferenceRedis
) -> None:
    # Rows of an unknown schema wait 2 s for the region's registry, then are dead-lettered.
    project = ReplicatedProject(config_file, tmp_path, worker={"schema_wait_seconds": 2})
    project.generate_data(n_cards=100, n_merchants=40, days=2)
    try:
        _bad_input_case(project, reference)
    finally:
        project.stop()


def _bad_input_case(project: ReplicatedProject, reference: ReferenceRedis) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    topology = project.topology
    topic = topology.topic_for("merchant_risk")
    good = project.fresh_rows("merchant_risk", 30, timedelta(hours=1))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", good)
    project.wait_converged(project.feast_keys(reference.client))
    sample_key = next(iter(project.feast_keys(reference.client)))

    def batch(fingerprint: str, event_s: int) -> tuple[list[tuple[str, bytes]], bytes]:
        row = Row(sample_key, b"\x08\x01", event_s, 0, 0, 0, (b"\x10\x01",))
        return wire.encode_rows(
            RowBatch("merchant_risk", (b"\x00\x00\x00\x01",), (row,), fingerprint)
        )

    far_future = int(time.time()) + 10 * 365 * 86400
    real_fp = primary_fingerprint(primary, "merchant_risk")
    producer = Producer(client_config(topology, "primary"))
    headers, _ = batch(real_fp, 1)
    for value, record_headers in [
        (b"\x00not msgpack", None),  # no headers at all
        (b"\x00not msgpack", headers),  # right headers, undecodable payload
        (batch("0000deadbeef0000", 1)[1], batch("0000deadbeef0000", 1)[0]),  # unknown schema
        (batch(real_fp, far_future)[1], batch(real_fp, far_future)[0]),  # far-future event time
    ]:
        producer.produce(topic, value=value, headers=record_headers, partition=0)
    producer.flush(10)
    later = project.fresh_rows("merchant_risk", 30, timedelta(hours=2))
    for store in (primary, expected_store):
        store.write_to_online_store("merchant_risk", later)
    project.wait_converged(project.feast_keys(reference.client))

    reasons = dead_letter_reasons(topology, topic, expect=4 * len(topology.regions))
    for region in topology.regions:
        assert sorted(reasons[region]) == sorted(
            ["malformed", "malformed", "unknown_schema", "future_event_time"]
        )


def test_rebuild_after_backfill_of_older_rows_matches_live_regions(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    newer = project.fresh_rows("card_spending_stats", 300, timedelta(hours=5))
    backfill = newer.copy()
    backfill["event_timestamp"] = END + timedelta(hours=1)  # older, published later
    backfill["txn_count_24h"] = -1
    for store in (primary, expected_store):
        store.write_to_online_store("card_spending_stats", newer)
        store.write_to_online_store("card_spending_stats", backfill)
    expected = project.feast_keys(reference.client)
    project.wait_converged(expected)

    damaged = project.topology.replica_regions[-1]
    project.stop()  # rebuild also works with the worker running; stopped here to see it alone
    admin = project.admin(damaged)
    keys = list(project.feast_keys(admin))
    admin.delete(*keys)
    _forget_versions(admin, project, [v.name for v in primary.list_feature_views()])
    assert not project.feast_keys(admin)

    report = rebuild_region(project.topology, damaged, progress=lambda line: None)
    assert report.rows_applied >= len(newer)
    project.wait_converged(expected, regions=[damaged], timeout=5)


def test_feature_view_removed_by_apply_leaves_every_region(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    primary, expected_store = project.feast_stores(reference)
    project.start_workers()
    start, end = recent_window()
    for store in (primary, expected_store):
        store.materialize(start, end)
    project.wait_converged(project.feast_keys(reference.client))

    kept = project.feature_objects(
        without=("card_merchant_affinity", "card_merchant_affinity_push", "fraud_model_v1")
    )
    removed = [o for o in project.feature_objects() if o.name == "card_merchant_affinity"]
    primary.apply(kept, objects_to_delete=removed, partial=False)
    expected_store._get_provider().update_infra(  # what Feast's RedisOnlineStore does on apply
        project=project.name,
        tables_to_delete=removed,
        tables_to_keep=[],
        entities_to_delete=[],
        entities_to_keep=[],
        partial=False,
    )
    expected = project.feast_keys(reference.client)
    assert not any(b"_ts:card_merchant_affinity" in fields for fields in expected.values())
    project.wait_converged(expected)


def test_worker_metrics_count_rows_and_dead_letters(
    project: ReplicatedProject, reference: ReferenceRedis
) -> None:
    from urllib.request import urlopen

    from harness import free_port
    from prometheus_client.parser import text_string_to_metric_families

    primary, _ = project.feast_stores(reference)
    region = project.topology.replica_regions[0]
    port = free_port()
    project.start_worker_process(region, "--metrics-port", str(port))
    rows = project.fresh_rows("merchant_risk", 40, timedelta(hours=1))
    primary.write_to_online_store("merchant_risk", rows)
    primary.write_to_online_store("merchant_risk", rows)  # the same rows again
    producer = Producer(client_config(project.topology, "primary"))
    producer.produce(project.topology.topic_for("merchant_risk"), value=b"junk", partition=0)
    producer.flush(10)

    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def settled() -> dict | None:
        try:
            got = samples()
        except OSError:
            return None
        applied = got.get(("replicator_rows_applied_total", (("region", region),)), 0)
        dead = got.get(
            ("replicator_dead_letters_total", (("reason", "malformed"), ("region", region))), 0
        )
        return got if applied == 80 and dead == 1 else None

    got = wait_until(settled, 60, "the worker's metrics to count 80 rows and 1 dead letter")
    assert got[("replicator_assigned_partitions", (("region", region),))] > 0
    assert (("replicator_lag_seconds", (("quantile", "0.99"), ("region", region)))) in got


# Helpers --------------------------------------------------------------------------------------
def _forget_versions(admin: redis.Redis, project: ReplicatedProject, views: list[str]) -> None:
    """Drop this project's entries from a region's version hashes, and nobody else's.

    Version hashes are per (view, partition) and shared by every project on the stack (their
    fields are Feast keys, which end with the project name).
    """
    for view in views:
        for partition in range(project.topology.kafka.partitions):
            key = row_versions_key(view, partition)
            mine = [f for f, _ in admin.hscan_iter(key, match=b"*" + project.name.encode())]
            if mine:
                admin.hdel(key, *mine)
