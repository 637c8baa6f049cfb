"""The checker's HTTP endpoints (stdlib server, one thread per request).

GET /              the status page (HTML, self-contained)
GET /metrics       Prometheus text format
GET /healthz       200 when the staleness job ran recently, else 503
GET /api/status    the latest report (``check --json`` shape, plus alerts and states)
GET /api/history   staleness over time per region
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST

from consistency import status_page
from consistency.adapters.shared import HttpServer, server_context
from consistency.service import ConsistencyService
from replicator.config_security import ServerTlsSettings

log = logging.getLogger(__name__)


class StatusServer:
    """Serves the endpoints above on ``host:port``, over TLS when ``tls`` is enabled.

    Raises ``ConfigError`` when the certificate or key cannot be loaded, ``OSError`` when
    the address cannot be bound."""

    def __init__(
        self,
        service: ConsistencyService,
        host: str,
        port: int,
        tls: ServerTlsSettings | None = None,
    ) -> None:
        self.service = service
        self.tls = tls or ServerTlsSettings()
        context = server_context(self.tls)
        self._server = HttpServer((host, port), _handler(service), context)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return self._server.url()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)
        self._thread.start()
        log.info(
            "serving on %s%s",
            self.url,
            " (client certificates required)" if self.tls.client_ca_file else "",
            extra={"event": "http_started", "url": self.url, "tls": self.tls.enabled},
        )

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)


def _handler(service: ConsistencyService) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "consistency"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            try:
                if path == "/metrics":
                    self._send(200, CONTENT_TYPE_LATEST, service.metrics.render())
                elif path == "/healthz":
                    ok, why = service.healthy()
                    self._json(200 if ok else 503, {"ok": ok, "detail": why})
                elif path == "/api/status":
                    self._json(200, service.status())
                elif path == "/api/history":
                    self._json(200, service.history_points())
                elif path in ("/", "/index.html"):
                    page = status_page.render(service.status(), service.history_points())
                    self._send(200, "text/html; charset=utf-8", page.encode())
                else:
                    self._json(404, {"error": f"no such endpoint: {path}"})
            except BrokenPipeError:
                pass
            except Exception:
                log.exception("error serving %s", path)
                self._json(500, {"error": "internal error; see the checker's log"})

        def _json(self, status: int, body: Any) -> None:
            self._send(status, "application/json", json.dumps(body, default=str).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("http: " + format, *args)

    return Handler
