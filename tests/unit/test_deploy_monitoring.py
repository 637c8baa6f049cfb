"""The alert rules under `promtool test rules`, the local Prometheus's config under
`promtool check config`, and the workers' metric names the rules and dashboard query."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import yaml
from deploy_tools import ROOT, run, tool
from prometheus_client import CollectorRegistry, generate_latest
from test_consistency_service import monitoring_names, served_names

from replicator.adapters.prometheus import WorkerCollector
from replicator.config import load_topology
from replicator.config_sections import CheckerScrapeTls
from replicator.core.egress import EgressMeter
from replicator.stack.prometheus import scrape_config, worker_metrics_port
from replicator.worker import WorkerStats

MONITORING = ROOT / "infra" / "monitoring"
TOPOLOGY = load_topology(ROOT / "infra" / "topology.yaml")


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    """A stale region fires and clears on recovery; a frozen or absent checker fires its own
    alert; an unreachable region, a dead worker, dead letters and future event times fire."""
    done = run([tool("promtool"), "test", "rules", str(MONITORING / "prometheus-rules.test.yaml")])
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_promtool_unit_tests_cover_every_alert_rule() -> None:
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    tests = yaml.safe_load((MONITORING / "prometheus-rules.test.yaml").read_text())
    tested = {a["alertname"] for t in tests["tests"] for a in t.get("alert_rule_test", [])}
    names = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    must = {
        "FeastReplicationStalenessViolated",
        "FeastConsistencyCheckerNotRunning",
        "FeastRegionUnreachable",
        "FeastReplicatorDeadLetters",
    }
    assert must <= tested <= names


def test_the_local_prometheus_config_scrapes_every_worker_and_the_checker(tmp_path: Path) -> None:
    config = scrape_config(TOPOLOGY, MONITORING / "prometheus-rules.yaml")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = run([tool("promtool"), "check", "config", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    workers = {
        t["labels"]["region"]: t["targets"] for t in jobs["replicator-worker"]["static_configs"]
    }
    assert workers == {
        region: [f"127.0.0.1:{worker_metrics_port(TOPOLOGY, region)}"]
        for region in TOPOLOGY.regions
    }
    assert len({port for [port] in workers.values()}) == len(TOPOLOGY.regions)
    checker = jobs["consistency-checker"]
    assert checker["honor_labels"] is True  # the rules select on the checker's own `job`
    assert checker["static_configs"] == [{"targets": ["127.0.0.1:9108"]}]


def test_the_local_prometheus_scrapes_a_checker_serving_tls_over_https(tmp_path: Path) -> None:
    stack = TOPOLOGY.stack.model_copy(
        update={
            "checker_metrics_tls": CheckerScrapeTls(
                ca_file=tmp_path / "ca.pem",
                cert_file=tmp_path / "client.pem",
                key_file=tmp_path / "client-key.pem",
                server_name="localhost",
            )
        }
    )
    for name in ("ca.pem", "client.pem", "client-key.pem"):
        (tmp_path / name).write_text("")  # promtool checks that the files exist
    config = scrape_config(TOPOLOGY.model_copy(update={"stack": stack}), None)
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = run([tool("promtool"), "check", "config", str(path)])
    assert done.returncode == 0, done.stdout + done.stderr
    checker = {job["job_name"]: job for job in config["scrape_configs"]}["consistency-checker"]
    assert checker["scheme"] == "https"
    assert checker["tls_config"] == {
        "ca_file": str(tmp_path / "ca.pem"),
        "cert_file": str(tmp_path / "client.pem"),
        "key_file": str(tmp_path / "client-key.pem"),
        "server_name": "localhost",
    }


def worker_metrics_text() -> str:
    stats = WorkerStats(rows_applied=10, dead_letter_reasons={"malformed": 1})
    stats.lag_ms.append(12.0)
    stats.apply_ms.append(3.0)
    worker = SimpleNamespace(region="eu-west-1", stats=stats, guard=None)
    egress = EgressMeter("replicator-p-eu-west-1", since_ns=0)
    egress.fetched("feast.p.v", 100)
    source = SimpleNamespace(
        consumer_lag={("feast.p.v", 0): 5}, assigned={("feast.p.v", 0)}, egress=egress
    )
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker, source))  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_every_worker_metric_the_rules_and_dashboard_use_is_served() -> None:
    used = monitoring_names("replicator_")
    assert {"replicator_dead_letters_total", "replicator_rows_applied_total"} <= used
    assert used - served_names(worker_metrics_text()) == set()
