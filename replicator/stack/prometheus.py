"""A local Prometheus (Debian's ``prometheus``) scraping every worker and the checker.

Optional part of the local stack: ``LocalStack(..., prometheus=True)`` starts it (the demo
does); ``stack down`` stops it like the other services. It listens on
``127.0.0.1:stack.prometheus_port`` (19090), scrapes each region's worker on
``worker_metrics_port(topology, region)`` and ``consistency serve`` on
``stack.checker_metrics_address`` (over HTTPS with ``stack.checker_metrics_tls``), every 5 s,
and evaluates the alert rules of
``infra/monitoring/prometheus-rules.yaml`` (the same file the Helm chart ships).
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from replicator.config import Topology
from replicator.config_sections import CheckerScrapeTls
from replicator.stack.prereqs import Port, env_override, port_in_use
from replicator.stack.service import Service

RULES_FILE = Path("infra/monitoring/prometheus-rules.yaml")
SCRAPE_INTERVAL = "5s"


def worker_metrics_port(topology: Topology, region: str) -> int:
    """The port a region's worker serves /metrics on in the local stack: one per region,
    counting up from ``stack.worker_metrics_port`` in the topology's region order."""
    return topology.stack.worker_metrics_port + list(topology.regions).index(region)


def find_rules(cwd: Path | None = None) -> Path | None:
    """The alert rules file, under the current directory or beside this package's source."""
    for base in (cwd or Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / RULES_FILE).is_file():
            return (base / RULES_FILE).resolve()
    return None


def scrape_config(topology: Topology, rules: Path | None) -> dict[str, Any]:
    """prometheus.yml as a mapping: one job for the workers (a ``region`` label per target),
    one for the checker. The checker's own ``job`` label (staleness, sampled, full) is kept
    (``honor_labels``): the alert rules select on it."""
    workers = [
        {
            "targets": [f"127.0.0.1:{worker_metrics_port(topology, region)}"],
            "labels": {"region": region},
        }
        for region in topology.regions
    ]
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(rules)] if rules else [],
        "scrape_configs": [
            {"job_name": "replicator-worker", "static_configs": workers},
            {
                "job_name": "consistency-checker",
                "honor_labels": True,
                "static_configs": [{"targets": [topology.stack.checker_metrics_address]}],
                **_https(topology.stack.checker_metrics_tls),
            },
        ],
    }


def _https(tls: CheckerScrapeTls | None) -> dict[str, Any]:
    """``scheme`` and ``tls_config`` of a scrape job over HTTPS (nothing for plain HTTP)."""
    if tls is None:
        return {}
    config = {name: str(value) for name, value in tls.model_dump().items() if value is not None}
    return {"scheme": "https", "tls_config": config}


class PrometheusServer(Service):
    key = "prometheus"
    label = "prometheus"
    tool = "prometheus"
    startup_timeout = 60.0

    def __init__(self, topology: Topology, state_dir: Path) -> None:
        super().__init__(state_dir / "prometheus")
        self.topology = topology
        self.port = topology.stack.prometheus_port
        self.config_file = self.workdir / "prometheus.yml"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports(self) -> list[Port]:
        return [Port(self.port, "prometheus", env_override("stack", "prometheus_port"))]

    def describe(self) -> dict[str, Any]:
        return {"port": self.port, "url": self.url}

    def prepare(self, tools: dict[str, str], jars: Path | None) -> list[str]:
        (self.workdir / "data").mkdir(exist_ok=True)
        config = scrape_config(self.topology, find_rules())
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return []

    def command(self, tools: dict[str, str], jars: Path | None) -> list[str]:
        return [
            tools["prometheus"],
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            "--storage.tsdb.retention.time=1d",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    def probe(self) -> bool:
        if not port_in_use(self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False


def scrape_summary(topology: Topology, *, wait_seconds: float = 15.0) -> str:
    """One line for people: which of the local Prometheus's targets answer. Waits up to
    ``wait_seconds`` for every worker target to be scraped once. Never raises."""
    url = f"http://127.0.0.1:{topology.stack.prometheus_port}"
    deadline = time.monotonic() + wait_seconds
    while True:
        health = _target_health(url)
        workers = health.get("replicator-worker", [])
        if (workers and all(workers)) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if not health:
        return f"Prometheus {url} does not answer"
    checker = "up" if any(health.get("consistency-checker", [])) else "not running"
    return (
        f"Prometheus {url} scrapes {sum(workers)} of {len(topology.regions)} workers up, "
        f"checker {checker}; alerts at {url}/alerts"
    )


def _target_health(url: str) -> dict[str, list[bool]]:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/targets?state=active", timeout=2) as response:
            targets = json.load(response)["data"]["activeTargets"]
    except (OSError, ValueError, KeyError):
        return {}
    health: dict[str, list[bool]] = {}
    for target in targets:
        health.setdefault(target["labels"]["job"], []).append(target["health"] == "up")
    return health
