"""HTTPS on the endpoints the project serves: ``consistency serve`` and ``replicator region
health R``, started as operators start them (real processes, with ``--tls-*`` flags or the
settings file), on the running local stack. Certificates come from the stack's own PKI helper
(``replicator.stack.pki``) in the test's directory; a second PKI plays the unknown CA.
"""

from __future__ import annotations

import http.client
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from consistency_serve import ConsistencyServe
from waiting import wait_until

from benchmarks import processes
from benchmarks.processes import free_port
from replicator.stack.pki import StackPki

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"

Endpoint = tuple[str, Path]
"""(base URL ``https://127.0.0.1:P``, the path that answers 200 once it serves)."""


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StackPki:
    pki = StackPki(tmp_path_factory.mktemp("pki") / "tls")
    pki.ensure()
    return pki


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory: pytest.TempPathFactory) -> StackPki:
    """Another CA: its certificates are not trusted by the servers, nor it by clients."""
    pki = StackPki(tmp_path_factory.mktemp("other-pki") / "tls")
    pki.ensure()
    return pki


def _flags(pki: StackPki, mutual: bool) -> dict[str, str]:
    flags = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    return {**flags, **({"client_ca_file": str(pki.ca_file)} if mutual else {})}


def _health(config_file: Path, workdir: Path, tls: dict[str, str]) -> Iterator[Endpoint]:
    port = free_port()
    flags = [f"--tls-{name.removesuffix('_file').replace('_', '-')}" for name in tls]
    command = [
        *(sys.executable, "-m", "replicator.cli", "--config", str(config_file)),
        *("region", "health", REGION, "--host", "127.0.0.1", "--port", str(port)),
        *(arg for flag, value in zip(flags, tls.values(), strict=True) for arg in (flag, value)),
    ]
    proc = processes.start(command, workdir / "health.log", cwd=ROOT)
    try:
        yield f"https://127.0.0.1:{port}", Path("/health/live")
    finally:
        processes.stop([proc])


def _checker(config_file: Path, workdir: Path, tls: dict[str, str]) -> Iterator[Endpoint]:
    settings = {"schedule": {"sampled_seconds": 3600, "full_cron": None}}
    serve = ConsistencyServe(config_file, workdir, settings, tls=tls)
    try:
        yield serve.base, Path("/metrics")
    finally:
        serve.stop()


SERVERS: dict[str, Callable[[Path, Path, dict[str, str]], Iterator[Endpoint]]] = {
    "region-health": _health,
    "consistency-serve": _checker,
}


@pytest.fixture(params=list(SERVERS))
def tls_endpoint(
    request: pytest.FixtureRequest,
    topology: object,
    config_file: Path,
    pki: StackPki,
    tmp_path: Path,
) -> Iterator[Endpoint]:
    """The server of ``request.param`` over TLS, no client certificate asked."""
    yield from SERVERS[request.param](config_file, tmp_path, _flags(pki, mutual=False))


@pytest.fixture(params=list(SERVERS))
def mtls_endpoint(
    request: pytest.FixtureRequest,
    topology: object,
    config_file: Path,
    pki: StackPki,
    tmp_path: Path,
) -> Iterator[Endpoint]:
    """The server of ``request.param`` over TLS, client certificates of ``pki`` required."""
    yield from SERVERS[request.param](config_file, tmp_path, _flags(pki, mutual=True))


def _client(ca: Path | None, cert: StackPki | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert is not None:
        context.load_cert_chain(cert.client_cert, cert.client_key)
    return context


def _get(url: str, context: ssl.SSLContext | None = None) -> int:
    """The status of ``GET url``; raises what the connection raised (``URLError`` ...)."""
    with urllib.request.urlopen(url, timeout=10, context=context) as reply:
        return int(reply.status)


def _refused(url: str, context: ssl.SSLContext | None = None) -> BaseException | None:
    """What refused ``GET url`` (None: it answered)."""
    try:
        _get(url, context)
    except (OSError, http.client.HTTPException) as exc:  # URLError, SSLError, reset, EOF
        return exc
    return None


def test_https_endpoint_answers_a_trusting_client_and_refuses_plaintext_and_unknown_cas(
    tls_endpoint: Endpoint, pki: StackPki, other_pki: StackPki
) -> None:
    base, path = tls_endpoint
    url = f"{base}{path}"
    trusted = _client(pki.ca_file)
    wait_until(lambda: _refused(url, trusted) is None, 60, f"{url} to answer over HTTPS")
    assert _get(url, trusted) == 200

    plain = url.replace("https://", "http://")
    assert _refused(plain) is not None, "plain HTTP was answered"
    unknown_ca = _refused(url, _client(other_pki.ca_file))
    assert isinstance(getattr(unknown_ca, "reason", unknown_ca), ssl.SSLCertVerificationError)
    assert _get(url, trusted) == 200  # refused handshakes leave the server serving


def test_mutual_tls_endpoint_refuses_clients_without_a_certificate_of_its_ca(
    mtls_endpoint: Endpoint, pki: StackPki, other_pki: StackPki
) -> None:
    base, path = mtls_endpoint
    url = f"{base}{path}"
    trusted = _client(pki.ca_file, pki)
    wait_until(lambda: _refused(url, trusted) is None, 60, f"{url} to answer over mTLS")

    assert _refused(url, _client(pki.ca_file)) is not None, "no client certificate: answered"
    stranger = _client(pki.ca_file, other_pki)
    assert _refused(url, stranger) is not None, "a certificate of another CA: answered"
    assert _get(url, trusted) == 200
