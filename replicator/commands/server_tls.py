"""``--tls-cert``, ``--tls-key``, ``--tls-client-ca``: the TLS flags of the commands that
serve HTTP (``replicator region health``, ``consistency serve``). A flag given wins over the
same setting in the configuration (``ServerTlsSettings``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import ValidationError

from replicator.config_security import ServerTlsSettings
from replicator.errors import ConfigError

_FLAGS = {"cert_file": "tls_cert", "key_file": "tls_key", "client_ca_file": "tls_client_ca"}


def add_server_tls_arguments(parser: argparse.ArgumentParser, configured: str) -> None:
    """Add the flags; ``configured`` names the settings they override (for ``--help``)."""
    group = parser.add_argument_group(
        "TLS", f"serve HTTPS (TLS 1.2+) instead of HTTP; each flag overrides {configured}"
    )
    group.add_argument("--tls-cert", type=Path, metavar="FILE", help="server certificate (PEM)")
    group.add_argument("--tls-key", type=Path, metavar="FILE", help="its private key (PEM)")
    group.add_argument(
        "--tls-client-ca",
        type=Path,
        metavar="FILE",
        help="require client certificates signed by this CA bundle (mutual TLS)",
    )


def server_tls(args: argparse.Namespace, configured: ServerTlsSettings) -> ServerTlsSettings:
    """``configured`` with the flags given applied. Raises ``ConfigError`` for a certificate
    without its key (or the reverse), or a client CA without both."""
    overrides = {
        field: getattr(args, flag)
        for field, flag in _FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if not overrides:
        return configured
    try:
        return ServerTlsSettings(**{**configured.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"--tls-cert/--tls-key/--tls-client-ca: {problems}") from None
