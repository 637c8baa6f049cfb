"""The consistency checker on the real stack: heartbeats, alerts, divergence, repair, serve.

One replicated project for the module (Feast is slow to set up): us-east-1 (primary and
reference) and ap-southeast-1 run worker threads, ap-southeast-1's with its clock set an
hour back; eu-west-1 runs a worker process the tests stop and restart. The primary's
heartbeat emitter runs as ``replicator heartbeats --interval 0.2``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from consistency_serve import ConsistencyServe
from harness import END, ReplicatedProject, recent_window
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until

from consistency.checker import Checker
from consistency.config import ConsistencySettings
from consistency.core.digest import digest_entries, mismatched_buckets
from consistency.core.feast_bytes import decode_timestamp, encode_timestamp
from consistency.repair import repair_region
from consistency.service import ConsistencyService
from consistency.wiring import build_checker, build_webhook, close_checker
from replicator.adapters.kafka_config import client_config
from replicator.adapters.kafka_source import KafkaSource
from replicator.adapters.prometheus import WorkerCollector
from replicator.adapters.redis_store import RegionStore
from replicator.assembly import build_worker, consumer_options, region_pattern, worker_options
from replicator.core import version
from replicator.core.keys import row_versions_key
from replicator.core.version import Version
from replicator.core.wire import partition_for
from replicator.heartbeat import applied_key

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PRIMARY, VICTIM, SKEWED = "us-east-1", "eu-west-1", "ap-southeast-1"
INTERVAL = 0.2
SKEW_NS = -3600 * 1_000_000_000


class World:
    def __init__(self, project: ReplicatedProject, primary: Any) -> None:
        self.project = project
        self.primary = primary
        self.victim: subprocess.Popen[bytes] | None = None

    @property
    def topology(self) -> Any:
        return self.project.topology

    def checker(self, **settings: Any) -> Checker:
        return build_checker(self.topology, ConsistencySettings(**settings))

    def start_victim(self) -> None:
        self.victim = self.project.start_worker_process(VICTIM)

    def stop_victim(self, sig: int = signal.SIGKILL) -> None:
        assert self.victim is not None
        self.victim.send_signal(sig)
        self.victim.wait(20)

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "consistency.cli",
                "--topology",
                str(self.project.topology_path),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **(env or {})},
            cwd=self.project.workdir,
        )


def _emitter(project: ReplicatedProject) -> subprocess.Popen[bytes]:
    return project.start_heartbeats(INTERVAL, "--relist", "1")


def _converged(project: ReplicatedProject) -> bool:
    states = [project.feast_keys(project.admin(r)) for r in project.topology.regions]
    return bool(states[0]) and all(s == states[0] for s in states[1:])


@pytest.fixture(scope="module")
def world(
    topology: Any, config_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    project = ReplicatedProject(config_file, tmp_path_factory.mktemp("consistency"))
    project.generate_data(n_cards=300, n_merchants=80, days=2)
    primary = project.primary_store()
    primary.apply(project.feature_objects())
    project.sync_registry()
    project.start_workers([PRIMARY])
    skewed = build_worker(project.topology, SKEWED)
    skewed.clock = lambda: time.time_ns() + SKEW_NS  # an hour behind the others
    project.run_worker(skewed)
    w = World(project, primary)
    w.start_victim()
    emitter = _emitter(project)
    try:
        primary.materialize(*recent_window())
        wait_until(lambda: _converged(project), 90, "every region to hold the materialized rows")
        checker = w.checker()
        wait_until(
            lambda: (
                (r := checker.measure_staleness()).heartbeat.emitter_up
                and all(
                    x.staleness_seconds is not None and x.staleness_seconds < 1
                    for x in r.regions.values()
                )
            ),
            60,
            "heartbeats to reach every region",
        )
        close_checker(checker)
        yield w
    finally:
        emitter.send_signal(signal.SIGTERM)
        emitter.wait(20)
        project.stop()


class Webhook:
    """A real HTTP server recording the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def of(self, region: str) -> list[tuple[str, str]]:
        return [(b["measure"], b["state"]) for b in self.bodies if b["region"] == region]

    def of_all(self) -> list[tuple[str, str, str]]:
        return [(b["region"], b["measure"], b["state"]) for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()


# Staleness, alerts, exit codes ----------------------------------------------------------------
def test_stopped_worker_raises_one_alert_and_restarted_one_recovery(world: World) -> None:
    hook = Webhook()
    settings = ConsistencySettings(
        # 5 s: far above what a busy two-core machine adds to a running region's staleness
        # (the other regions must raise nothing), far below a stopped worker's.
        bounds={"max_staleness_seconds": 5.0, "max_divergence_ratio": None},
        hysteresis={"violate_after": 2, "recover_after": 2},
        schedule={"staleness_seconds": 0.25, "sampled_seconds": 3600, "full_cron": None},
        webhook={"url": hook.url, "initial_backoff_seconds": 0.1},
    )
    checker = build_checker(world.topology, settings)
    service = ConsistencyService(checker, settings, sink=build_webhook(settings))
    service.start()
    try:
        wait_until(lambda: service.staleness is not None, 20, "the first staleness check")
        world.stop_victim()
        wait_until(lambda: world_violated(hook), 30, "the VIOLATED webhook", observe=hook.of_all)
        violated_at = service.history_points()[-1]["t"]
        # The verdict of `check --once` agrees, with its documented exit code.
        done = world.cli(
            "check",
            "--once",
            "--json",
            "--divergence",
            "none",
            env={"CONSISTENCY_BOUNDS__MAX_STALENESS_SECONDS": "5"},
        )
        assert done.returncode == 1, done.stderr
        report = json.loads(done.stdout)
        assert report["regions"][VICTIM]["status"] == "violated"
        assert report["regions"][PRIMARY]["status"] == "ok"
        assert {v["region"] for v in report["violations"]} == {VICTIM}
        grown = wait_until(
            lambda: (t := _victim_since(service, violated_at))[2:] and t[-1] >= 7.0 and t,
            60,
            f"{VICTIM}'s staleness to grow past 7 s while its worker is stopped",
            observe=lambda: _victim_since(service, violated_at),
        )
        world.start_victim()
        wait_until(
            lambda: ("staleness", "RECOVERED") in hook.of(VICTIM),
            60,
            "the RECOVERED webhook",
            observe=hook.of_all,
        )
        recovered_at = service.history_points()[-1]["t"]
        wait_until(
            lambda: len(_victim_since(service, recovered_at)) >= 4,
            30,
            "four more staleness checks after the recovery (any further alert comes from them)",
            observe=lambda: _victim_since(service, recovered_at),
        )
    finally:
        service.stop()  # the sink delivers what is queued before it stops
        close_checker(checker)
        hook.close()
    assert hook.of(VICTIM) == [("staleness", "VIOLATED"), ("staleness", "RECOVERED")]
    assert hook.of(PRIMARY) == [] and hook.of(SKEWED) == []
    assert grown == sorted(grown), f"staleness should grow while stopped: {grown}"
    violated = hook.bodies[0]
    assert violated["state"] == "VIOLATED" and violated["project"] == world.project.name
    assert set(violated["feature_views"]) <= {
        "card_spending_stats",
        "merchant_risk",
        "card_merchant_affinity",
    }


def _victim_since(service: ConsistencyService, since: float) -> list[float]:
    """The victim's staleness in the service's checks recorded after ``since`` (seconds)."""
    points = service.history_points()
    return [
        p["regions"][VICTIM] for p in points if p["t"] > since and p["regions"][VICTIM] is not None
    ]


def world_violated(hook: Webhook) -> bool:
    return ("staleness", "VIOLATED") in hook.of(VICTIM)


def test_clock_offsets_in_checker_or_worker_do_not_change_staleness(world: World) -> None:
    wait_until(lambda: world.victim is not None and world.victim.poll() is None, 5, "the victim")
    normal = world.checker()
    ahead = Checker(
        normal.scope,
        normal.settings,
        regions=normal.regions,
        log_admin=normal.log,
        manifest=normal.manifest,
        partition_of=partition_for,
        clock=lambda: time.time_ns() + 3600 * 1_000_000_000,
    )

    def both() -> dict[str, tuple[float, float]] | None:
        a, b = normal.measure_staleness(), ahead.measure_staleness()
        pairs = {
            r: (a.regions[r].staleness_seconds, b.regions[r].staleness_seconds) for r in a.regions
        }
        # A round where a region's Redis did not answer in time reads as unmeasurable (None
        # or inf, never a figure): wait for a round that both checkers measured whole.
        measured = {
            r: p for r, p in pairs.items() if all(v is not None and math.isfinite(v) for v in p)
        }
        return measured if len(measured) == len(pairs) else None  # type: ignore[return-value]

    try:
        rounds = [
            wait_until(both, 60, "both checkers to measure every region's staleness")
            for _ in range(5)
        ]
    finally:
        close_checker(normal)
    # A checker that compared its clock with the primary's, or with the skewed worker's (an
    # hour behind), would be off by about 3600 s. Measured end to end, both checkers read the
    # same small figure; a minute of margin covers any load on the machine.
    for sample in rounds:
        for region, (plain, skewed) in sample.items():
            assert abs(plain - skewed) < 60, (region, sample)
            assert plain < 60 and skewed < 60, (region, sample)
    # The skewed worker really stamps its own clock an hour back: a checker comparing clocks
    # across machines would report ~3600 s here.
    topic = world.topology.topic_for("merchant_risk")
    applied_ns = int(world.project.admin(SKEWED).hget(applied_key(topic, 0), "applied_ns"))
    assert abs((time.time_ns() - applied_ns) / 1e9 - 3600) < 30


# Divergence and repair ----------------------------------------------------------------------
def _fresh_merchants(world: World, rows: int, shift: timedelta) -> pd.DataFrame:
    frame = pd.read_parquet(world.project.repo / "data" / "merchant_risk.parquet")
    frame = frame.drop_duplicates(subset=["merchant_id"]).head(rows).copy()
    frame["event_timestamp"] = END + shift
    frame["created"] = END + shift
    frame["risk_score"] = 0.123
    return frame


def _view_keys(world: World, region: str, view: str) -> dict[bytes, dict[bytes, bytes]]:
    field = f"_ts:{view}".encode()
    return {
        k: v for k, v in world.project.feast_keys(world.project.admin(region)).items() if field in v
    }


def test_full_check_finds_corruption_repair_fixes_it_and_in_flight_rows_do_not_count(
    world: World,
) -> None:
    view = "merchant_risk"
    checker = world.checker(bounds={"max_staleness_seconds": 300})
    layout = checker.views()[view]
    keys = sorted(_view_keys(world, PRIMARY, view))
    # In flight: eu-west-1 is stopped while the primary writes 20 newer rows.
    world.stop_victim(signal.SIGTERM)
    fresh = _fresh_merchants(world, 20, timedelta(hours=5))
    world.primary.write_to_online_store(view, fresh)
    ts = encode_timestamp(int((END + timedelta(hours=5)).timestamp()))
    ts_field = b"_ts:" + view.encode()
    for region in (PRIMARY, SKEWED):
        wait_until(
            lambda r=region: (
                sum(v[ts_field] == ts for v in _view_keys(world, r, view).values()) == 20
            ),
            30,
            f"{region} to apply the fresh rows",
        )
    untouched = [
        k for k, v in sorted(_view_keys(world, PRIMARY, view).items()) if v[ts_field] != ts
    ]
    corrupted, deleted, newer = untouched[:3]
    admin = world.project.admin(SKEWED)
    admin.hset(corrupted, layout.fields[0], b"\x00garbage")  # same version, other bytes
    admin.delete(deleted)
    try:
        checker.measure_staleness()
        found = checker.measure_divergence("full", views=[view])
        eu, ap = found[(VICTIM, view)].report, found[(SKEWED, view)].report
        assert (eu.in_flight, eu.diverged, eu.ratio) == (20, 0, 0.0), eu
        assert (ap.conflicting, ap.missing, ap.extra, ap.behind, ap.in_flight) == (1, 1, 0, 0, 0), (
            ap
        )
        assert found[(SKEWED, view)].keys[corrupted].value == "conflicting"
        assert ap.ratio == pytest.approx(2 / len(keys))

        done = world.cli("repair", "--region", SKEWED, "--feature-view", view, "--json")
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)[0]
        assert (result["attempted"], result["repaired"], result["not_repaired"]) == (2, 2, 0)
        ref, after = _view_keys(world, PRIMARY, view), _view_keys(world, SKEWED, view)
        assert after[corrupted] == ref[corrupted] and after[deleted] == ref[deleted]
        ap = checker.measure_divergence("full", views=[view])[(SKEWED, view)].report
        assert ap.diverged == 0

        # A key the region holds in a newer version is never moved back in time.
        partition = partition_for(newer, world.topology.kafka.partitions)
        future_ts = encode_timestamp(int((END + timedelta(days=30)).timestamp()))
        admin.hset(newer, mapping={b"_ts:" + view.encode(): future_ts, layout.fields[0]: b"future"})
        event = decode_timestamp(future_ts)
        assert event is not None
        admin.hset(
            row_versions_key(view, partition),
            newer,
            version.encode(Version(event[0], 0, event[0], 0, 1, 1)),
        )
        done = world.cli("repair", "--region", SKEWED, "--feature-view", view, "--json")
        assert done.returncode == 1, done.stdout + done.stderr
        assert json.loads(done.stdout)[0]["not_repaired"] == 1
        assert admin.hget(newer, layout.fields[0]) == b"future"
    finally:
        world.start_victim()
        close_checker(checker)
        wait_until(
            lambda: _view_keys(world, VICTIM, view).keys() >= set(keys), 60, "eu-west-1 to catch up"
        )


def test_sampled_ratio_lies_within_its_interval(world: World) -> None:
    view = "card_merchant_affinity"
    keys = sorted(_view_keys(world, PRIMARY, view))
    assert len(keys) > 1000
    checker = world.checker(sample={"size": 400, "confidence": 0.999, "seed": 11})
    layout = checker.views()[view]
    admin = world.project.admin(SKEWED)
    damaged = keys[::8]
    with admin.pipeline(transaction=False) as pipe:
        for key in damaged:
            pipe.hset(key, layout.fields[-1], b"\x00damaged")
        pipe.execute()
    true_ratio = len(damaged) / len(keys)
    try:
        checker.measure_staleness()
        report = checker.measure_divergence("sampled", regions=[SKEWED], views=[view])[
            (SKEWED, view)
        ].report
        assert report.keys_checked == 400
        assert report.ratio_low is not None and report.ratio_high is not None
        assert report.ratio_low <= true_ratio <= report.ratio_high, (true_ratio, report)
        assert report.ratio_high - report.ratio_low < 0.15
        assert report.conflicting == report.diverged  # same version, other bytes
        # The full check agrees exactly, and the Lua digests match their Python twin.
        full = checker.measure_divergence("full", regions=[SKEWED], views=[view])[
            (SKEWED, view)
        ].report
        assert full.conflicting == len(damaged) and full.ratio == pytest.approx(true_ratio)
        ref_region = checker.regions[PRIMARY]
        scan = ref_region.scan_digests(layout, world.project.name, 3)
        rows = ref_region.read_rows(layout, keys, world.topology.kafka.partitions)
        twin = digest_entries([(r.key, list(r.values)) for r in rows], 3)
        assert mismatched_buckets(scan.digests, twin) == [] and scan.keys == len(keys)
    finally:
        store = RegionStore(
            world.topology.region(SKEWED).redis, world.topology.region(SKEWED).redis.writer
        )
        repaired = repair_region(checker, SKEWED, store, views=[view])
        store.close()
        close_checker(checker)
    assert repaired[0].repaired == len(damaged)


# serve: /metrics, the API and the page in Chromium --------------------------------------------
def _monitoring_names() -> set[str]:
    rules = yaml.safe_load((ROOT / "infra/monitoring/prometheus-rules.yaml").read_text())
    dashboard = json.loads((ROOT / "infra/monitoring/grafana-dashboard.json").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {n for e in exprs for n in re.findall(r"\bconsistency_[a-z_]+\b", e)}


def _metrics(serve: ConsistencyServe) -> list[Any]:
    status, body = serve.get("/metrics")
    return list(text_string_to_metric_families(body.decode())) if status == 200 else []


def _staleness(families: list[Any]) -> dict[str, float]:
    return {
        s.labels["region"]: s.value
        for f in families
        if f.name == "consistency_region_staleness_seconds"
        for s in f.samples
    }


def _caught_up(staleness: dict[str, float], topology: Any) -> bool:
    return set(staleness) == set(topology.regions) and all(v < 2 for v in staleness.values())


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_serve_exposes_metrics_and_a_status_page_that_renders_in_chromium(
    world: World, tmp_path: Path
) -> None:
    serve = ConsistencyServe(
        world.project.topology_path,
        tmp_path,
        {
            "schedule": {"staleness_seconds": 0.5, "sampled_seconds": 3600, "full_cron": None},
            "webhook": {"url": "http://127.0.0.1:9/unused"},
        },
    )
    try:
        wait_until(lambda: serve.get("/healthz")[0] == 200, 60, "consistency serve to be healthy")
        wait_until(
            lambda: len(json.loads(serve.get("/api/history")[1] or b"[]")) >= 4, 30, "history"
        )
        wait_until(
            lambda: (
                json.loads(serve.get("/api/status")[1])["regions"][SKEWED]["feature_views"]
                .get("merchant_risk", {})
                .get("divergence_ratio")
                is not None
            ),
            60,
            "the first sampled divergence check",
        )
        # Every region caught up, as /metrics shows it (a busy machine may take a few checks).
        families = wait_until(
            lambda: (f := _metrics(serve)) and _caught_up(_staleness(f), world.topology) and f,
            60,
            "/metrics to show every region's staleness under 2 s",
            observe=lambda: _staleness(_metrics(serve)),
        )
        served = {f.name for f in families} | {s.name for f in families for s in f.samples}
        served |= {f.name + "_total" for f in families if f.type == "counter"}
        assert _monitoring_names() - served == set()

        profile = tmp_path / "chromium-profile"
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
        ]
        dom = subprocess.run(
            ["chromium", *flags, "--virtual-time-budget=2000", "--dump-dom", serve.base + "/"],
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert dom.returncode == 0, dom.stderr[-2000:]
        html = dom.stdout
        for region in world.topology.regions:
            assert f'class="card" data-region="{region}"' in html, region
            assert re.search(rf'<path d="M[^"]+" data-region="{region}"', html), region
        assert "ALL BOUNDS HOLD" in html or "VIOLATED" in html
        assert 'data-view="merchant_risk"' in html
        for region in world.topology.regions:  # fetched bytes and cost per region
            assert f'<tr data-region="{region}">' in html, region
        shot = tmp_path / "status.png"
        subprocess.run(
            [*("chromium", *flags, "--window-size=1280,1400"), f"--screenshot={shot}", serve.base],
            capture_output=True,
            timeout=90,
            check=True,
        )
        assert shot.stat().st_size > 20_000
    finally:
        assert serve.stop() == 0, serve.log.read_text()[-3000:]


# Egress and cost ------------------------------------------------------------------------------
def test_a_workers_fetched_bytes_metrics_grow_by_the_records_it_fetched(world: World) -> None:
    """A worker of its own consumer group reads the project's log from the start: its
    record-bytes metric is exactly the bytes of the records it fetched, and wire bytes are
    counted for every topic. (Whether they are fewer depends on the log: a backlog of rows
    compresses, but each heartbeat round is flushed on its own, one small record per batch,
    whose batch header outweighs it: BENCHMARKS.md measures compression.)"""
    topology = world.topology
    kafka = client_config(topology, "admin", region=VICTIM)
    group = f"{topology.consumer_group(VICTIM)}-egress-test"
    source = KafkaSource(
        kafka,
        group_id=group,
        pattern=region_pattern(topology, VICTIM),
        options={**consumer_options(topology), "statistics.interval.ms": 200},
    )
    options = dataclasses.replace(worker_options(topology), publish_stats=False)
    worker = build_worker(topology, VICTIM, source=source, options=options)
    collector = WorkerCollector(worker, source)
    topics = [topology.topic_for(v) for v in ("card_spending_stats", "merchant_risk")]
    try:
        assert _fetched(collector, "replicator_fetched_record_bytes") == {}
        ends = _end_offsets(kafka, topics, topology.kafka.partitions)

        def caught_up() -> bool:
            worker.step()
            done = all(source.committed.get(tp, 0) >= end for tp, end in ends.items())
            wire = _fetched(collector, "replicator_fetched_wire_bytes")
            return done and all(wire.get(t, 0) > 0 for t in topics)

        wait_until(caught_up, 90, "the worker to fetch the log and count its wire bytes")
        positions = {tp: o for tp, o in source.committed.items() if tp[0] in topics}
        record_bytes = _fetched(collector, "replicator_fetched_record_bytes")
        records = _fetched(collector, "replicator_fetched_records")
        wire_bytes = _fetched(collector, "replicator_fetched_wire_bytes")
    finally:
        source.close()
        _delete_group(kafka, group)
    expected = _bytes_of_records(kafka, positions)
    for topic in topics:
        assert (records[topic], record_bytes[topic]) == expected[topic], topic
        assert wire_bytes[topic] > 0, topic


def test_check_once_json_shows_bytes_and_cost_per_region(world: World, tmp_path: Path) -> None:
    settings = tmp_path / "consistency.yaml"
    prices = {"source_region": PRIMARY, "usd_per_gb": {PRIMARY: {SKEWED: 0.09}}}
    settings.write_text(yaml.safe_dump({"consistency": {"egress": prices}}))
    # Every worker publishes its counts each second: wait until all three have.
    report = wait_until(
        lambda: (
            (r := json.loads(world.cli("--config", str(settings), *CHECK).stdout))
            and all(x["egress"] and x["egress"]["wire_bytes"] > 0 for x in r["regions"].values())
            and r
        ),
        60,
        "every region's fetched bytes in the report",
    )
    for name, region in report["regions"].items():
        egress = region["egress"]
        assert egress["source_region"] == PRIMARY
        # Mostly heartbeats by now: protocol overhead may outweigh the records themselves.
        assert egress["record_bytes"] > 0 and egress["wire_bytes"] > 0, name
        assert egress["monthly_wire_bytes"] > egress["wire_bytes"], name
        assert set(egress["feature_views"]) >= {"card_spending_stats", "merchant_risk"}
    skewed, victim = report["regions"][SKEWED]["egress"], report["regions"][VICTIM]["egress"]
    assert report["regions"][PRIMARY]["egress"]["monthly_cost_usd"] == 0.0  # same region
    assert (skewed["usd_per_gb"], victim["usd_per_gb"]) == (0.09, 0.02)
    assert skewed["monthly_cost_usd"] > 0 and victim["monthly_cost_usd"] > 0
    assert report["egress"]["monthly_cost_usd"] == pytest.approx(
        sum(r["egress"]["monthly_cost_usd"] for r in report["regions"].values()), abs=1e-3
    )
    text = world.cli("--config", str(settings), "check", "--once", "--divergence", "none").stdout
    assert f"egress from {PRIMARY}:" in text and "egress, all regions:" in text


CHECK = ("check", "--once", "--json", "--divergence", "none")


def _fetched(collector: WorkerCollector, name: str) -> dict[str, float]:
    return {
        sample.labels["topic"]: sample.value
        for family in collector.collect()
        if family.name == name
        for sample in family.samples
    }


def _end_offsets(kafka: dict[str, Any], topics: list[str], partitions: int) -> dict[Any, int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**kafka, "group.id": "unused"})
    try:
        return {
            (t, p): consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in topics
            for p in range(partitions)
        }
    finally:
        consumer.close()


def _bytes_of_records(
    kafka: dict[str, Any], positions: dict[Any, int]
) -> dict[str, tuple[int, int]]:
    """(records, bytes) per topic of the committed records before ``positions``, read by a
    plain consumer: key, value, header names and values."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            **kafka,
            "group.id": "unused",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    out: dict[str, tuple[int, int]] = {}
    try:
        wanted = {tp: end for tp, end in positions.items() if end > 0}
        consumer.assign([TopicPartition(t, p, 0) for t, p in wanted])
        remaining = dict(wanted)
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                tp = (message.topic(), message.partition())
                if message.error() or tp not in remaining or message.offset() >= wanted[tp]:
                    continue
                size = len(message.key() or b"") + len(message.value() or b"")
                size += sum(len(k) + len(v or b"") for k, v in message.headers() or [])
                count, total = out.get(tp[0], (0, 0))
                out[tp[0]] = (count + 1, total + size)
                if message.offset() + 1 >= wanted[tp]:
                    del remaining[tp]
            # A partition whose last offsets are transaction markers has nothing more to read.
            for tp in list(remaining):
                position = consumer.position([TopicPartition(*tp)])[0].offset
                if position >= wanted[tp]:
                    del remaining[tp]
        assert not remaining, f"could not read the records before {remaining}"
    finally:
        consumer.close()
    return out


def _delete_group(kafka: dict[str, Any], group: str) -> None:
    from confluent_kafka.admin import AdminClient

    for future in AdminClient(kafka).delete_consumer_groups([group], request_timeout=10).values():
        with contextlib.suppress(Exception):  # a leftover group is harmless
            future.result(10)
