"""Security sections of the topology: TLS per service and region, Kafka SASL, secrets.

Secrets are ``SecretStr`` (``repr`` and ``str`` show ``**********``). Each can come from the
YAML file, from the environment (``REPLICATOR_...__PASSWORD``), or from a file named by the
field's ``*_file`` twin (``password_file: /run/secrets/writer``), which must not be readable
by group or others (mode 0600 or stricter): a looser file is refused, naming the path.
docs/security.md describes what each credential may do.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from replicator.config_sections import Section


def read_secret_file(path: Path) -> str:
    """The secret in ``path`` (surrounding whitespace stripped).

    Raises ``ValueError`` (reported as a configuration error) when the file is missing or
    readable by group or others.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ValueError(f"cannot read secret file {path}: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"secret file {path} is accessible by group or others "
            f"(mode {stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    return path.read_text(encoding="utf-8").strip()


def load_secret_files(data: Any, fields: tuple[str, ...]) -> Any:
    """For each ``field`` whose ``field_file`` is set and whose value is not, read the file."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for field in fields:
        path = out.get(f"{field}_file")
        if path and not out.get(field):
            out[field] = read_secret_file(Path(path))
    return out


class Credentials(Section):
    """A user name and its password (``password`` or ``password_file``)."""

    username: str
    password: SecretStr
    password_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _files(cls, data: Any) -> Any:
        return load_secret_files(data, ("password",))


class TlsSettings(Section):
    """TLS towards one service. Off unless ``enabled``; then the server's certificate must
    chain to ``ca_file`` (the system's trust store when unset) and name the host dialled."""

    enabled: bool = False
    ca_file: Path | None = None
    """PEM bundle of the CA(s) that sign the server's certificate."""
    cert_file: Path | None = None
    """Client certificate (PEM), for servers that require mutual TLS."""
    key_file: Path | None = None
    """Private key of ``cert_file`` (PEM, unencrypted; keep it 0600)."""
    check_hostname: bool = True
    """Check that the certificate names the host dialled. Turn off only with a private CA
    that signs nothing else (a tunnel that changes the name, say)."""

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (client certificate and key)")
        return self


KafkaProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


class KafkaSecurity(Section):
    """How every Kafka client authenticates. ``options`` passes librdkafka settings through
    unchanged: OAUTHBEARER for Confluent Cloud, ``AWS_MSK_IAM``-style OIDC for MSK, and so on
    (docs/security.md has examples)."""

    protocol: KafkaProtocol = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    tls: TlsSettings = TlsSettings()
    options: dict[str, str] = Field(default_factory=dict)
    """Extra librdkafka settings for every client (``sasl.oauthbearer.method`` ...)."""

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.protocol.endswith("SSL")


KafkaRole = Literal["primary", "checker", "admin"]


class KafkaUsers(Section):
    """Kafka principals other than the regions' workers (each region names its own)."""

    primary: Credentials | None = None
    """Writes feature topics and heartbeats; creates feature topics."""
    checker: Credentials | None = None
    """Reads topics and the workers' committed offsets; writes nothing."""
    admin: Credentials | None = None
    """Operators and the local stack: creates users, applies ACLs (a super user)."""


class ServerTlsSettings(Section):
    """TLS of an HTTP endpoint the project serves (``consistency serve``, ``replicator region
    health``). Off (plain HTTP) unless ``cert_file`` and ``key_file`` are set; then HTTPS only,
    TLS 1.2 or newer. With ``client_ca_file``, clients must present a certificate signed by it
    (mutual TLS). ``replicator.adapters.http_server.server_context`` builds the context."""

    cert_file: Path | None = None
    """Server certificate (PEM; the chain after it). It must name the host clients dial."""
    key_file: Path | None = None
    """Private key of ``cert_file`` (PEM, unencrypted; keep it 0600)."""
    client_ca_file: Path | None = None
    """PEM bundle of the CA(s) whose client certificates are accepted; unset: none asked."""

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None

    @model_validator(mode="after")
    def _pair(self) -> ServerTlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (server certificate and key)")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file needs cert_file and key_file (mutual TLS is TLS)")
        return self
