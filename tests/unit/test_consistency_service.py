"""The service around the checker: alerts with hysteresis, webhook delivery, metrics and
the monitoring files that use them, HTTP endpoints and the status page (loopback only)."""

from __future__ import annotations

import json
import re
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from test_consistency_checker import NOW_NS, TOPIC, S, caught_up, damage, fill, make_world
from waiting import wait_until

from consistency.adapters.webhook import WebhookSender
from consistency.config import ConsistencySettings
from consistency.core.backoff import Backoff
from consistency.metrics import METRIC_NAMES
from consistency.service import ConsistencyService
from consistency.status_page import render
from consistency.web import StatusServer
from replicator.core.egress import EgressCounts, TopicBytes
from replicator.core.staleness import AppliedHeartbeat

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "infra" / "monitoring"


class Sink:
    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []

    def send(self, alert: Any) -> None:
        self.alerts.append(dict(alert))

    def close(self) -> None:
        pass


def service_world(**settings: Any) -> tuple[ConsistencyService, Any, Any, Sink]:
    base = {"hysteresis": {"violate_after": 2, "recover_after": 2, "recover_ratio": 0.8}}
    checker, regions, log, _ = make_world(ConsistencySettings(**{**base, **settings}))
    caught_up(regions, log, regions["us"].emitted["proj"].emitted_ns)
    fill(regions, 50)
    sink = Sink()
    return ConsistencyService(checker, checker.settings, sink=sink), regions, log, sink


def set_eu_staleness(regions: Any, seconds: float) -> None:
    emitted = regions["us"].emitted["proj"].emitted_ns
    for p in range(2):
        regions["eu"].heartbeats[(TOPIC, p)] = AppliedHeartbeat(1, emitted - int(seconds * S))


# Alerts -------------------------------------------------------------------------------------
def test_a_stopped_region_raises_one_alert_while_staleness_grows_and_one_recovery() -> None:
    service, regions, _, sink = service_world()
    for seconds in [0, 0, 6, 9, 12, 4.5, 15, 30, 60, 1, 3.9, 0, 0, 0]:
        set_eu_staleness(regions, seconds)
        service.run_staleness()
    states = [(a["region"], a["measure"], a["state"]) for a in sink.alerts]
    assert states == [("eu", "staleness", "VIOLATED"), ("eu", "staleness", "RECOVERED")]
    violated = sink.alerts[0]
    assert violated["feature_views"] == {"v": {"value": 9.0, "bound": 5.0}}
    assert violated["project"] == "proj" and violated["id"]


def test_a_region_over_its_bound_before_hysteresis_is_breaching_never_ok() -> None:
    service, regions, _, sink = service_world()
    set_eu_staleness(regions, 6)  # over the 5 s bound for one round: no alert yet
    service.run_staleness()
    status = service.status()
    assert sink.alerts == [] and status["violations"] == []
    assert status["regions"]["eu"]["status"] == "breaching"
    assert status["regions"]["ap"]["status"] == "ok"
    service.run_staleness()  # the second round over it: violated
    assert service.status()["regions"]["eu"]["status"] == "violated"


def test_divergence_alerts_come_from_the_divergence_job() -> None:
    service, regions, log, sink = service_world(bounds={"max_divergence_ratio": 0.05})
    damage(regions, log)
    service.run_staleness()
    service.run_divergence("full")
    service.run_divergence("full")
    assert [(a["region"], a["measure"], a["state"]) for a in sink.alerts] == [
        ("eu", "divergence", "VIOLATED")
    ]
    status = service.status()
    assert status["violations"] == [
        {"region": "eu", "feature_view": "v", "measure": "divergence", "value": 0.08, "bound": 0.05}
    ]
    assert status["regions"]["eu"]["status"] == "violated"
    assert status["regions"]["ap"]["status"] == "ok"


# Webhook ------------------------------------------------------------------------------------
class Receiver:
    def __init__(self, statuses: list[int], hold: threading.Event | None = None) -> None:
        self.statuses = statuses
        self.hold = hold
        """While set is pending, every POST hangs (as a receiver that stopped answering)."""
        self.entered = threading.Event()
        self.bodies: list[dict[str, Any]] = []
        self.done = threading.Event()

    def post(self, url: str, body: bytes, timeout: float) -> int:
        self.entered.set()
        if self.hold is not None:
            self.hold.wait(30)
        self.bodies.append(json.loads(body))
        status = self.statuses.pop(0) if self.statuses else 200
        if not self.statuses:
            self.done.set()
        return status


FAST = Backoff(initial_seconds=0.001, max_seconds=0.01, jitter=0)


def test_webhook_retries_server_errors_with_backoff_until_delivered() -> None:
    receiver = Receiver([503, 500, 0, 200])
    sender = WebhookSender("http://hook", backoff=FAST, post=receiver.post)
    sender.send({"id": "a1", "state": "VIOLATED"})
    sender.close()
    assert [b["id"] for b in receiver.bodies] == ["a1"] * 4
    assert (sender.delivered, sender.failed) == (1, 0)


def test_webhook_does_not_retry_a_refusal() -> None:
    receiver = Receiver([400])
    sender = WebhookSender("http://hook", backoff=FAST, post=receiver.post)
    sender.send({"id": "a1"})
    sender.close()
    assert len(receiver.bodies) == 1 and sender.failed == 1


def test_webhook_gives_up_after_max_attempts() -> None:
    receiver = Receiver([500] * 10)
    sender = WebhookSender("http://hook", backoff=FAST, max_attempts=3, post=receiver.post)
    sender.send({"id": "a1"})
    sender.close()
    assert len(receiver.bodies) == 3 and sender.failed == 1


def test_sending_never_blocks_the_check_even_when_the_receiver_hangs() -> None:
    hold = threading.Event()
    receiver = Receiver([200] * 5, hold=hold)
    sender = WebhookSender("http://hook", backoff=FAST, queue_size=2, post=receiver.post)
    sender.send({"id": 0})
    wait_until(receiver.entered.is_set, 10, "the first alert to reach the receiver")
    sent = threading.Event()

    def send_more() -> None:
        for i in range(1, 5):
            sender.send({"id": i})
        sent.set()

    threading.Thread(target=send_more, daemon=True).start()
    try:
        assert sent.wait(30), "send() blocked while the receiver hangs"
        assert receiver.bodies == [], "the receiver was still hanging when send() returned"
        assert sender.dropped == 2  # queue of 2: the oldest queued alerts went, logged
    finally:
        hold.set()
    sender.close(timeout=10)
    assert [b["id"] for b in receiver.bodies] == [0, 3, 4]


# Metrics and the monitoring files ---------------------------------------------------------
def served_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        names.update(sample.name for sample in family.samples)
    return names


def monitoring_names(prefix: str = "consistency_") -> set[str]:
    """Metric names starting with ``prefix`` that the alert rules and the dashboard query
    (tests/unit/test_deploy_monitoring.py checks the workers' ``replicator_`` ones)."""
    exprs: list[str] = []
    rules = yaml.safe_load((MONITORING / "prometheus-rules.yaml").read_text())
    exprs += [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return {name for expr in exprs for name in re.findall(rf"\b{prefix}[a-z_]+\b", expr)}


def populated_metrics_text() -> str:
    service, regions, log, _ = service_world(webhook={"url": "http://127.0.0.1:9/hook"})
    service.metrics.add_webhook(lambda: {"delivered": 1, "failed": 0, "dropped": 0})
    damage(regions, log)
    log.retention[TOPIC] = 86_400_000
    regions["eu"].fetched["replicator-proj-eu"] = EgressCounts(
        "replicator-proj-eu", NOW_NS - 3600 * S, {TOPIC: TopicBytes(10, 3000, 1000)}
    )
    for seconds in (0, 9, 9):
        set_eu_staleness(regions, seconds)
        service.run_staleness()
    service.run_divergence("sampled")
    return service.metrics.render().decode()


def test_every_metric_the_dashboard_and_rules_use_is_served() -> None:
    used = monitoring_names()
    assert len(used) >= 12
    served = served_names(populated_metrics_text())
    assert used - served == set()
    assert used <= METRIC_NAMES


def test_every_documented_metric_is_served() -> None:
    assert METRIC_NAMES - served_names(populated_metrics_text()) == set()


def test_unmeasurable_staleness_is_exported_as_infinity() -> None:
    service, regions, _, _ = service_world()
    regions["ap"].down = True
    service.run_staleness()
    values = {
        s.labels.get("region"): s.value
        for f in text_string_to_metric_families(service.metrics.render().decode())
        if f.name == "consistency_region_staleness_seconds"
        for s in f.samples
    }
    assert values["ap"] == float("inf") and values["eu"] == 0.0


# HTTP and the page ----------------------------------------------------------------------------
@pytest.fixture
def served() -> Any:
    service, regions, _, _ = service_world()
    server = StatusServer(service, "127.0.0.1", 0)
    server.start()
    yield service, regions, server
    server.stop()


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def test_healthz_is_503_until_the_first_check_then_200(served: Any) -> None:
    service, _, server = served
    assert get(server.url + "/healthz")[0] == 503
    service.run_staleness()
    status, _, body = get(server.url + "/healthz")
    assert status == 200 and json.loads(body)["ok"] is True


def test_endpoints_serve_metrics_json_and_the_page(served: Any) -> None:
    service, regions, server = served
    for seconds in (0, 2, 4):
        set_eu_staleness(regions, seconds)
        service.run_staleness()
    status, ctype, body = get(server.url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert "consistency_region_staleness_seconds" in served_names(body.decode())
    api = json.loads(get(server.url + "/api/status")[2])
    assert set(api["regions"]) == {"us", "eu", "ap"}
    assert api["regions"]["eu"]["staleness_seconds"] == 4.0
    history = json.loads(get(server.url + "/api/history")[2])
    assert [point["regions"]["eu"] for point in history] == [0.0, 2.0, 4.0]
    status, ctype, page = get(server.url + "/")
    assert status == 200 and ctype.startswith("text/html")
    assert b"<script src" not in page and b"http://" not in page.replace(b"http://www.w3.org", b"")
    assert get(server.url + "/nope")[0] == 404


def test_the_page_embeds_data_safely() -> None:
    page = render({"project": "p</script><b>", "regions": {"eu": {}}}, [])
    assert "</script><b>" not in page
    embedded = re.search(r'id="initial-status" type="application/json">(.*?)</script>', page, re.S)
    assert embedded and json.loads(embedded.group(1))["project"] == "p</script><b>"
