"""The one place that turns the topology into librdkafka connection settings.

Every Producer, Consumer and AdminClient the project makes starts from ``client_config``:
the brokers as seen by the caller, ``security.protocol``, the caller's SASL principal and
TLS files. Producer/consumer tuning is added by the adapters on top.

Principals (docs/security.md): ``primary`` (feature topics and heartbeats), ``worker`` (one
per region: its views' topics, dead letters, its group), ``checker`` (reads only) and
``admin`` (operators and the local stack).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from replicator.config import Topology
from replicator.config_security import Credentials, KafkaSecurity, TlsSettings
from replicator.errors import ConfigError

Principal = Literal["primary", "worker", "checker", "admin"]

KafkaConnection = str | Mapping[str, Any]
"""What the Kafka adapters accept: librdkafka settings from ``client_config``, or a bare
``host:port`` list (plaintext; tests and tools on an open broker)."""


def client_config(
    topology: Topology, principal: Principal, *, region: str | None = None
) -> dict[str, Any]:
    """librdkafka settings (``bootstrap.servers``, ``security.protocol``, ``sasl.*``,
    ``ssl.*`` and ``kafka.security.options``) for ``principal``.

    ``region`` names the worker's region (required for ``worker``); for the others it only
    picks the brokers and TLS files as seen from that region. Raises ``ConfigError`` when
    SASL is on and the principal has no credentials in the topology.
    """
    security = topology.kafka.security
    if principal == "worker" and region is None:
        raise ConfigError("a worker's Kafka settings need its region")
    where = region or (topology.primary_region if principal == "primary" else None)
    config: dict[str, Any] = {
        "bootstrap.servers": (
            topology.bootstrap_servers_for(where) if where else topology.kafka.bootstrap_servers
        ),
        "security.protocol": security.protocol,
    }
    if security.uses_tls:
        tls = (topology.region(where).kafka_tls if where else None) or security.tls
        config.update(_tls_settings(tls))
    if security.uses_sasl:
        config.update(_sasl_settings(security, _credentials(topology, principal, region)))
    config.update(security.options)
    return config


def client_settings(connection: KafkaConnection) -> dict[str, Any]:
    """A copy of ``connection`` as librdkafka settings (a string is ``bootstrap.servers``)."""
    if isinstance(connection, str):
        return {"bootstrap.servers": connection}
    return dict(connection)


def describe(connection: KafkaConnection) -> str:
    """Brokers and protocol for messages: never the credentials."""
    settings = client_settings(connection)
    protocol = settings.get("security.protocol", "PLAINTEXT")
    return f"{settings.get('bootstrap.servers', '?')} ({protocol})"


def _tls_settings(tls: TlsSettings) -> dict[str, str]:
    out = {"ssl.endpoint.identification.algorithm": "https" if tls.check_hostname else "none"}
    if tls.ca_file is not None:
        out["ssl.ca.location"] = str(tls.ca_file)
    if tls.cert_file is not None and tls.key_file is not None:
        out["ssl.certificate.location"] = str(tls.cert_file)
        out["ssl.key.location"] = str(tls.key_file)
    return out


def _sasl_settings(security: KafkaSecurity, user: Credentials | None) -> dict[str, str]:
    out = {"sasl.mechanism": security.sasl_mechanism}
    if user is not None:
        out["sasl.username"] = user.username
        out["sasl.password"] = user.password.get_secret_value()
    return out


def _credentials(
    topology: Topology, principal: Principal, region: str | None
) -> Credentials | None:
    if principal == "worker":
        assert region is not None
        user = topology.region(region).kafka_user
        field = f"regions.{region}.kafka_user"
    else:
        user = getattr(topology.kafka.users, principal)
        field = f"kafka.users.{principal}"
    mechanism = topology.kafka.security.sasl_mechanism
    if user is None and mechanism.upper() in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
        raise ConfigError(
            f"{field} is required: kafka.security.protocol is "
            f"{topology.kafka.security.protocol} with {mechanism}"
        )
    return user
