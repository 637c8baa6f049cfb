"""Inference reads that know their region, on real Kafka, Redis and S3, several regions.

Regions: ``us-east-1`` (primary) and ``eu-west-1`` from the shared stack, plus ``local-1``
on a throwaway ``redis-server`` of this module (same ACL users as the stack's), so that it can
be killed without touching anyone else's Redis. Inference reads in ``local-1`` use the Feast
SDK with the ``feature_store.yaml`` of ``replicator region feast-config local-1``; its
fallbacks are eu-west-1, then us-east-1.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ROOT, ReplicatedProject, WorkerThread, free_port, wait_for

from replicator.assembly import build_worker
from replicator.config import Topology, read_topology_document
from replicator.feast_reader import close_readers, reader_for
from replicator.health_server import RegionHealth, make_server
from replicator.regional_config import feast_env, write_regional_repo
from replicator.regional_reads import StaleRead, last_read, read_scope
from replicator.stack.pki import StackPki
from replicator.stack.redis_server import RedisServer, acl_file

pytestmark = pytest.mark.slow

LOCAL = "local-1"
MERCHANT = "merchant_risk:risk_score"
READS = {
    "max_staleness_seconds": 3.0,
    "recover_staleness_seconds": 1.0,
    "recover_checks": 2,
    "health_interval_seconds": 0.2,
    "failback_seconds": 1.0,
    "socket_timeout_seconds": 2.0,  # a TLS handshake on a busy machine; a kill is refused at once
}


class ThrowawayRedis:
    """A redis-server with the topology's ACL users for one region, on its port as the local
    stack's (TLS with the stack's certificates when the topology says so); killable."""

    def __init__(self, topology: Topology, region: str, workdir: Path) -> None:
        self.endpoint = topology.region(region).redis
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "users.acl").write_text(acl_file(self.endpoint))
        pki = StackPki(ROOT / topology.stack.state_dir / "tls")
        listener = RedisServer(topology, region, workdir, pki=pki).listener()
        (workdir / "listener.conf").write_text("\n".join(listener) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                *("redis-server", str(self.workdir / "listener.conf"), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                *("--aclfile", str(self.workdir / "users.acl")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _base_topology(config_file: Path, workdir: Path, port: int) -> Path:
    raw = read_topology_document(config_file)
    regions = raw["regions"]
    spare = regions.pop("ap-southeast-1")
    local = json.loads(json.dumps(spare))
    local["redis"]["port"] = port
    local["read_fallbacks"] = ["eu-west-1", "us-east-1"]
    regions[LOCAL] = local
    for name, region in regions.items():  # fallbacks may only name regions of this topology
        if name != LOCAL:
            region["read_fallbacks"] = [r for r in regions if r != name]
    raw["reads"] = READS
    path = workdir / "base-topology.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Scenario:
    def __init__(self, project: ReplicatedProject, redis: ThrowawayRedis, store: Any) -> None:
        self.project = project
        self.redis = redis
        self.store = store
        self.workers: dict[str, WorkerThread] = {}
        self.merchant = ""

    @property
    def topology(self) -> Topology:
        return self.project.topology

    def start_worker(self, region: str) -> None:
        self.workers[region] = self.project.run_worker(build_worker(self.topology, region))

    def stop_worker(self, region: str) -> None:
        self.workers.pop(region).stop()

    def read(self) -> Any:
        response = self.store.get_online_features(
            features=[MERCHANT], entity_rows=[{"merchant_id": self.merchant}]
        ).to_dict()
        return response["risk_score"][0]


@pytest.fixture(scope="module")
def scenario(
    topology: Topology, config_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    workdir = tmp_path_factory.mktemp("regional-reads")
    project = ReplicatedProject(_base_topology(config_file, workdir, free_port()), workdir)
    redis_server = ThrowawayRedis(project.topology, LOCAL, workdir / "local-redis")
    redis_server.start()
    saved_env = dict(os.environ)
    try:
        project.generate_data(n_cards=40, n_merchants=20, days=1)
        primary = project.primary_store()
        primary.apply(project.feature_objects())
        project.sync_registry()
        project.start_heartbeats(0.1)
        scenario = Scenario(project, redis_server, None)
        for region in project.topology.regions:
            scenario.start_worker(region)
        import pandas as pd

        frame = pd.read_parquet(project.repo / "data" / "merchant_risk.parquet").head(20)
        primary.write_to_online_store("merchant_risk", frame)
        scenario.merchant = str(frame["merchant_id"].iloc[-1])

        os.environ.update(feast_env(project.topology, LOCAL))
        from feast import FeatureStore

        repo = write_regional_repo(project.topology, LOCAL, workdir / "local-repo").parent
        scenario.store = FeatureStore(repo_path=str(repo))
        wait_for(lambda: _served_fresh(scenario, LOCAL), 60, "fresh reads from local-1")
        yield scenario
    finally:
        close_readers()
        project.stop()
        redis_server.kill()
        os.environ.clear()
        os.environ.update(saved_env)


def _served_fresh(scenario: Scenario, region: str) -> bool:
    value = scenario.read()
    served = last_read()
    return (
        value is not None
        and served is not None
        and served.region == region
        and served.staleness_seconds is not None
        and served.staleness_seconds <= READS["max_staleness_seconds"]
    )


class Ready:
    """``replicator region health`` of one region, in process, on a free port."""

    def __init__(self, topology: Topology, region: str) -> None:
        self.health = RegionHealth(topology, region)
        self.server = make_server(self.health, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health/ready"
        for target in (self.health.run, self.server.serve_forever):
            threading.Thread(target=target, daemon=True).start()

    def status(self) -> int:
        try:
            with urllib.request.urlopen(self.url, timeout=2) as reply:
                return int(reply.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def close(self) -> None:
        self.server.shutdown()
        self.health.stop()


def test_stale_local_region_fails_over_reports_staleness_and_fails_back(
    scenario: Scenario,
) -> None:
    ready = Ready(scenario.topology, LOCAL)
    try:
        wait_for(lambda: ready.status() == 200, 30, "local-1 ready")
        scenario.stop_worker(LOCAL)
        served_regions: list[str] = []

        def moved_to_fresh_region() -> bool:
            assert scenario.read() is not None  # every read answers, none raises
            served = last_read()
            assert served is not None
            served_regions.append(served.region)
            return served.region == "eu-west-1" and served.failed_over

        wait_for(moved_to_fresh_region, 60, "reads to move to eu-west-1")
        served = last_read()
        assert served is not None and served.staleness_seconds is not None
        assert served.staleness_seconds <= READS["max_staleness_seconds"]
        wait_for(lambda: ready.status() == 503, 30, "local-1 not ready while stale")

        scenario.start_worker(LOCAL)
        wait_for(lambda: ready.status() == 200, 60, "local-1 ready again")

        def back_home() -> bool:
            assert scenario.read() is not None
            region = last_read().region  # type: ignore[union-attr]
            served_regions.append(region)
            return region == LOCAL

        wait_for(back_home, 60, "reads to come back to local-1")
        switches = sum(1 for a, b in itertools.pairwise(served_regions) if a != b)
        assert switches == 2, f"reads flapped between regions: {served_regions}"
    finally:
        ready.close()


def test_every_region_stale_refuses_or_marks_reads(scenario: Scenario) -> None:
    stopped = list(scenario.workers)
    for region in stopped:
        scenario.stop_worker(region)
    try:

        def refused() -> bool:
            with read_scope(max_staleness=READS["max_staleness_seconds"]):
                try:
                    scenario.read()
                except StaleRead as exc:
                    assert {s.region for s in exc.states} == {LOCAL, "eu-west-1", "us-east-1"}
                    return True
            return False

        wait_for(refused, 60, "reads beyond max_staleness everywhere to be refused")
        with read_scope(max_staleness=READS["max_staleness_seconds"], on_stale="mark") as scope:
            assert scenario.read() is not None
        assert scope.last is not None and scope.last.within_bound is False
        assert scope.last.staleness_seconds is not None
        assert scope.last.staleness_seconds > READS["max_staleness_seconds"]
    finally:
        for region in stopped:
            scenario.start_worker(region)
    wait_for(lambda: _served_fresh(scenario, LOCAL), 90, "fresh reads from local-1 again")


def test_killed_local_redis_reads_keep_answering_from_the_fallback(scenario: Scenario) -> None:
    reader = reader_for(scenario.store.config.online_store.plan)
    nearest, further = "eu-west-1", "us-east-1"
    ready = Ready(scenario.topology, LOCAL)
    try:
        wait_for(lambda: ready.status() == 200, 30, "local-1 ready")
        # An earlier test stopped the fallbacks' workers: wait until both count as fresh again.
        wait_for(
            lambda: reader.healthy(nearest) and reader.healthy(further),
            60,
            "both fallback regions healthy in the reader",
        )
        expected = scenario.read()
        scenario.redis.kill()
        # The first read after the kill already fails over inside the call: no error at all,
        # and from the nearest fallback whenever it was healthy around the read.
        served_by: list[str] = []
        for _ in range(50):
            nearest_before = reader.healthy(nearest)
            assert scenario.read() == expected
            nearest_after = reader.healthy(nearest)
            served = last_read()
            assert served is not None and served.region in (nearest, further)
            if nearest_before and nearest_after:
                assert served.region == nearest
            served_by.append(served.region)
        assert nearest in served_by
        wait_for(lambda: ready.status() == 503, 30, "local-1 not ready with its Redis down")
    finally:
        ready.close()
