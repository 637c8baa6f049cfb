"""The local stack's Prometheus (replicator/stack/prometheus.py): started on its own ports
and state dir (the session's stack is left alone), it scrapes a worker's /metrics and loads
the alert rules."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from harness import free_port
from prometheus_client import CollectorRegistry, start_http_server

from replicator.adapters.prometheus import WorkerCollector
from replicator.config import Topology
from replicator.core.egress import EgressMeter
from replicator.stack import processes
from replicator.stack.prometheus import PrometheusServer, scrape_summary
from replicator.worker import WorkerStats

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus") is None, reason="Debian's prometheus is not installed (make setup)"
)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def wait_for(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = condition()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.5)
    raise AssertionError(f"not true within {timeout:.0f} s: {condition.__doc__}")


def test_prometheus_scrapes_the_workers_and_loads_the_alert_rules(
    topology: Topology, tmp_path: Path
) -> None:
    first = next(iter(topology.regions))
    ports = {"prometheus_port": free_port(), "worker_metrics_port": free_port()}
    local = topology.model_copy(update={"stack": topology.stack.model_copy(update=ports)})
    registry = CollectorRegistry()
    stats = WorkerStats(rows_applied=42)
    # What the collector reads of a Worker and its KafkaSource: no data-loss guard, no bytes
    worker = SimpleNamespace(region=first, stats=stats, guard=None)
    egress = EgressMeter(f"replicator-{topology.project}-{first}", since_ns=0)
    source = SimpleNamespace(consumer_lag={}, assigned=set(), egress=egress)
    registry.register(WorkerCollector(worker, source))  # type: ignore[arg-type]
    start_http_server(local.stack.worker_metrics_port, addr="127.0.0.1", registry=registry)

    server = PrometheusServer(local, tmp_path)
    pid, _ = server.start({"prometheus": str(shutil.which("prometheus"))}, None)
    try:
        wait_for(server.probe)
        url = server.url

        def applied() -> list[Any]:
            """Prometheus holds the worker's rows_applied counter"""
            query = f"{url}/api/v1/query?query=replicator_rows_applied_total"
            return get(query)["data"]["result"]

        [sample] = wait_for(applied)
        assert sample["metric"]["region"] == first and sample["value"][1] == "42"
        rules = get(f"{url}/api/v1/rules")["data"]["groups"]
        names = {rule["name"] for group in rules for rule in group["rules"]}
        assert {"FeastReplicationStalenessViolated", "FeastConsistencyCheckerNotRunning"} <= names
        assert f"scrapes 1 of {len(local.regions)} workers up" in scrape_summary(
            local, wait_seconds=0
        )
    finally:
        processes.terminate([pid], grace_seconds=10)
