"""The local stack's throwaway certificate authority (``trustme``, on ``cryptography``).

Made once per state directory, under ``<state_dir>/tls/`` (directory 0700, keys 0600):

- ``ca.pem``: the CA certificate every client trusts (the topology's ``ca_file``);
- ``server.pem``: key (PKCS#8) and certificate chain for ``127.0.0.1`` and ``localhost``,
  used by Kafka (PEM keystore), with ``server-cert.pem`` / ``server-key.pem`` for Redis;
- ``server.p12``: the same key and chain as a PKCS#12 keystore for S3Proxy's HTTPS port;
- ``client.pem`` / ``client-key.pem``: a client certificate (``CN=replicator-client``) for
  clients of a Redis that asks for one.

The CA's key is never written: nothing can sign with it after the stack is set up. Delete
the directory to get new certificates (then restart the stack).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from replicator.secret_files import write_secret_file

SERVER_NAMES = ("127.0.0.1", "localhost")
SERVER_CN = "replicator-stack"


@dataclass(frozen=True)
class StackPki:
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def server_pem(self) -> Path:
        return self.directory / "server.pem"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server-cert.pem"

    @property
    def server_key(self) -> Path:
        return self.directory / "server-key.pem"

    @property
    def keystore(self) -> Path:
        return self.directory / "server.p12"

    @property
    def keystore_password_file(self) -> Path:
        return self.directory / "server.p12.password"

    @property
    def client_cert(self) -> Path:
        return self.directory / "client.pem"

    @property
    def client_key(self) -> Path:
        return self.directory / "client-key.pem"

    def keystore_password(self) -> str:
        return self.keystore_password_file.read_text(encoding="ascii").strip()

    def ensure(self) -> bool:
        """Create the CA and certificates unless they exist. True when it made them."""
        if self.keystore.exists() and self.ca_file.exists():
            return False
        import trustme  # only the stack needs it; workers never import it

        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.directory, 0o700)
        ca = trustme.CA(organization_name="replicator local stack")
        server = ca.issue_cert(*SERVER_NAMES, common_name=SERVER_CN)
        client = ca.issue_cert("replicator-client", common_name="replicator-client")
        key = serialization.load_pem_private_key(server.private_key_pem.bytes(), None)
        pkcs8 = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        chain = "".join(blob.bytes().decode() for blob in server.cert_chain_pems)
        self.ca_file.write_text(ca.cert_pem.bytes().decode(), encoding="ascii")
        write_secret_file(self.server_key, pkcs8)
        self.server_cert.write_text(chain, encoding="ascii")
        write_secret_file(self.server_pem, pkcs8 + chain)
        write_secret_file(self.client_key, client.private_key_pem.bytes().decode())
        self.client_cert.write_text(
            "".join(b.bytes().decode() for b in client.cert_chain_pems), encoding="ascii"
        )
        password = secrets.token_urlsafe(18)
        write_secret_file(self.keystore_password_file, password + "\n")
        certs = [x509.load_pem_x509_certificate(b.bytes()) for b in server.cert_chain_pems]
        p12 = pkcs12.serialize_key_and_certificates(
            b"s3proxy",
            key,  # type: ignore[arg-type]
            certs[0],
            certs[1:],
            serialization.BestAvailableEncryption(password.encode()),
        )
        write_secret_file(self.keystore, p12)
        return True
