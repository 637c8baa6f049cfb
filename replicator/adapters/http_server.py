"""The project's HTTP servers, plain or TLS: ``consistency serve`` and ``replicator region health``.

``server_context(tls)`` is the one place that builds a server ``ssl.SSLContext`` (TLS 1.2 or
newer; client certificates required when ``tls.client_ca_file`` is set). ``HttpServer`` is the
stdlib ``ThreadingHTTPServer`` serving over that context when one is given: the TLS handshake
runs in the request's own thread, under ``HANDSHAKE_TIMEOUT_SECONDS``, so a client that opens
a connection and says nothing (or speaks plain HTTP) never holds up the others. A failed
handshake closes that connection and is logged at debug level (no path, no certificate).
"""

from __future__ import annotations

import logging
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from replicator.config_security import ServerTlsSettings
from replicator.errors import ConfigError

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_SECONDS = 10.0


def server_context(tls: ServerTlsSettings) -> ssl.SSLContext | None:
    """The server context of ``tls`` (None when TLS is off).

    Raises ``ConfigError`` naming the setting (not the file's path or contents) when the
    certificate, key or client CA cannot be loaded."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"server TLS: cannot load cert_file and key_file ({_reason(exc)}): they must be a "
            "PEM certificate and its unencrypted PEM key, readable by this process"
        ) from None
    if tls.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=tls.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"server TLS: cannot load client_ca_file ({_reason(exc)}): it must be a PEM "
                "bundle of the CA(s) that sign client certificates"
            ) from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "not PEM, or the key does not match the certificate"
    return exc.strerror or type(exc).__name__


class HttpServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` over TLS when ``context`` is given (not started: call
    ``serve_forever``). Raises ``OSError`` when the address cannot be bound."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.context = context
        super().__init__(address, handler)

    @property
    def scheme(self) -> str:
        return "http" if self.context is None else "https"

    def url(self, path: str = "") -> str:
        host, port = self.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}{path}"

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.context is None:
            return sock, address
        # Handshake later, in the request's thread (finish_request), not in the accept loop.
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
            try:
                request.do_handshake()
            except OSError as exc:  # ssl.SSLError, a timeout, a reset
                log.debug(
                    "TLS handshake with %s failed: %s",
                    client_address[0],
                    type(exc).__name__,
                    extra={"event": "http_tls_handshake_failed"},
                )
                return
            request.settimeout(None)
        super().finish_request(request, client_address)
