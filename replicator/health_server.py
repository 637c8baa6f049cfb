"""``replicator region health R``: liveness and readiness of region R for global traffic managers.

    GET /health/live    200 while the process runs (Kubernetes livenessProbe)
    GET /health/ready   200 when R can serve reads, else 503; the JSON body says why

Ready means, as of the last check (every ``reads.health_interval_seconds``):
- R's Redis answers R's reader user;
- R's replication staleness is measurable and within ``reads.max_staleness_seconds``
  (no hysteresis here: Route 53, Global Accelerator and Kubernetes apply their own
  failure/success thresholds);
- R serves the reference registry version (the manifest in R's bucket names the same version
  as the primary region's).

Shaped for Route 53 / Global Accelerator / Traffic Director HTTP health checks and Kubernetes
probes; runs beside ``feast serve`` (docs/regional-reads.md has wiring examples).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from replicator.adapters.http_server import HttpServer, server_context
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.config import Topology
from replicator.config_security import ServerTlsSettings
from replicator.read_health import StalenessMonitor
from replicator.read_plan import read_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Readiness:
    region: str
    ready: bool
    reasons: list[str]
    reachable: bool
    staleness_seconds: float | None
    max_staleness_seconds: float
    registry_version: str | None
    reference_registry_version: str | None


class RegionHealth:
    """Measures one region every interval (``run``) and answers from the last result."""

    def __init__(self, topology: Topology, region: str) -> None:
        self.region = region
        self._plan = read_plan(topology, region)
        self._monitor = StalenessMonitor(self._plan)
        self._registry = S3ManifestCatalog(topology.region(region).s3, topology.project)
        self._reference = S3ManifestCatalog(
            topology.region(topology.primary_region).s3, topology.project
        )
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last: Readiness | None = None

    def check(self) -> Readiness:
        state = self._monitor.measure(self.region)
        bound = self._plan.reads.max_staleness_seconds
        reasons = []
        if not state.reachable:
            reasons.append("redis does not answer the reader user")
        elif state.staleness_seconds is None:
            reasons.append("staleness unmeasurable (no readable heartbeat emission record)")
        elif math.isinf(state.staleness_seconds):
            reasons.append("applied heartbeats unreadable: counted as stale")
        elif state.staleness_seconds > bound:
            reasons.append(f"staleness {state.staleness_seconds:.3f} s above {bound:g} s")
        version = self._registry.version if self._registry.refresh() else None
        reference = self._reference.version if self._reference.refresh() else None
        if not version:
            reasons.append("no registry in the region's bucket")
        elif version != reference:
            reasons.append(f"registry {version} is not the reference's {reference}")
        readiness = Readiness(
            self.region,
            not reasons,
            reasons,
            state.reachable,
            None if state.staleness_seconds == math.inf else state.staleness_seconds,  # JSON
            bound,
            version or None,
            reference or None,
        )
        with self._lock:
            changed = self._last is None or self._last.ready != readiness.ready
            self._last = readiness
        if changed:
            log.info(
                "region %s %s",
                self.region,
                "ready" if readiness.ready else f"not ready: {'; '.join(reasons)}",
                extra={"event": "region_readiness", "ready": readiness.ready},
            )
        return readiness

    def last(self) -> Readiness | None:
        with self._lock:
            return self._last

    def run(self) -> None:
        """Check every health interval until ``stop()``."""
        interval = self._plan.reads.health_interval_seconds
        while not self._stop.is_set():
            self.check()
            self._stop.wait(interval)

    def stop(self) -> None:
        self._stop.set()
        self._monitor.close()


def make_server(
    health: RegionHealth, host: str, port: int, tls: ServerTlsSettings | None = None
) -> HttpServer:
    """The HTTP server, HTTPS when ``tls`` is enabled (not started: call ``serve_forever``).
    Raises ``ConfigError`` when the certificate or key cannot be loaded, ``OSError`` when the
    address cannot be bound."""
    context = server_context(tls or ServerTlsSettings())
    return HttpServer((host, port), _handler(health.last), context)


def _handler(last: Callable[[], Readiness | None]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/health/live":
                self._reply(HTTPStatus.OK, {"status": "live"})
            elif path == "/health/ready":
                readiness = last()
                if readiness is None:
                    body: dict[str, Any] = {"ready": False, "reasons": ["not checked yet"]}
                    self._reply(HTTPStatus.SERVICE_UNAVAILABLE, body)
                    return
                status = HTTPStatus.OK if readiness.ready else HTTPStatus.SERVICE_UNAVAILABLE
                self._reply(status, asdict(readiness))
            else:
                self._reply(HTTPStatus.NOT_FOUND, {"error": "try /health/live or /health/ready"})

        def _reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # health checks are chatty
            log.debug(format, *args)

    return Handler


def serve(
    topology: Topology, region: str, host: str, port: int, tls: ServerTlsSettings | None = None
) -> None:
    """Run checks and the server until interrupted. ``tls``: default the region's
    ``health_tls`` in the topology."""
    tls = topology.region(region).health_tls if tls is None else tls
    health = RegionHealth(topology, region)
    server = make_server(health, host, port, tls)  # a bad certificate fails before any check
    health.check()
    checker = threading.Thread(target=health.run, name=f"health-{region}", daemon=True)
    checker.start()
    log.info(
        "health endpoints of %s on %s%s",
        region,
        server.url("/health/ready"),
        " (client certificates required)" if tls.client_ca_file else "",
        extra={"event": "health_server_started", "region": region, "tls": tls.enabled},
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()
        health.stop()
