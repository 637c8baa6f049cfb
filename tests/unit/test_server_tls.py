"""Server TLS settings of the HTTP endpoints: validation, flags over settings, the context.

The endpoints themselves are tested over real connections in
``tests/integration/test_https_endpoints.py``.
"""

from __future__ import annotations

import argparse
import os
import ssl
from pathlib import Path

import pytest
import yaml

from consistency.config import ConsistencySettings
from replicator import cli
from replicator.adapters.http_server import server_context
from replicator.commands.server_tls import add_server_tls_arguments, server_tls
from replicator.config import load_topology
from replicator.config_security import ServerTlsSettings
from replicator.errors import ConfigError
from replicator.stack.pki import StackPki

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> StackPki:
    pki = StackPki(tmp_path_factory.mktemp("pki") / "tls")
    pki.ensure()
    return pki


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith(("REPLICATOR_", "CONSISTENCY_")):
            monkeypatch.delenv(name)


def test_tls_is_off_by_default_everywhere() -> None:
    topology = load_topology(ROOT / "infra" / "topology.yaml")
    assert not any(r.health_tls.enabled for r in topology.regions.values())
    assert not ConsistencySettings().server.tls.enabled
    assert server_context(ServerTlsSettings()) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cert_file": "c.pem"}, "cert_file and key_file go together"),
        ({"key_file": "k.pem"}, "cert_file and key_file go together"),
        ({"client_ca_file": "ca.pem"}, "client_ca_file needs cert_file and key_file"),
    ],
)
def test_incomplete_settings_are_refused(fields: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServerTlsSettings(**fields)  # type: ignore[arg-type]


def test_region_health_tls_comes_from_the_topology_or_its_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = yaml.safe_load((ROOT / "infra" / "topology.yaml").read_text())
    data["regions"]["eu-west-1"]["health_tls"] = {"cert_file": "/c.pem", "key_file": "/k.pem"}
    path = tmp_path / "topology.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("REPLICATOR_REGIONS__EU_WEST_1__HEALTH_TLS__CLIENT_CA_FILE", "/ca.pem")
    tls = load_topology(path).region("eu-west-1").health_tls
    assert (tls.cert_file, tls.key_file, tls.client_ca_file) == (
        Path("/c.pem"),
        Path("/k.pem"),
        Path("/ca.pem"),
    )


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_tls_arguments(parser, "the settings")
    return parser.parse_args(list(argv))


def test_flags_override_the_settings_one_by_one() -> None:
    configured = ServerTlsSettings(cert_file=Path("a.pem"), key_file=Path("a.key"))
    assert server_tls(_parse(), configured) is configured
    merged = server_tls(_parse("--tls-client-ca", "ca.pem"), configured)
    assert (merged.cert_file, merged.client_ca_file) == (Path("a.pem"), Path("ca.pem"))
    with pytest.raises(ConfigError, match="cert_file and key_file go together"):
        server_tls(_parse("--tls-cert", "b.pem"), ServerTlsSettings())


def test_the_context_asks_tls_1_2_or_newer_and_client_certificates_only_for_mtls(
    pki: StackPki,
) -> None:
    tls = ServerTlsSettings(cert_file=pki.server_cert, key_file=pki.server_key)
    context = server_context(tls)
    assert context is not None
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert context.verify_mode == ssl.CERT_NONE
    mutual = server_context(tls.model_copy(update={"client_ca_file": pki.ca_file}))
    assert mutual is not None and mutual.verify_mode == ssl.CERT_REQUIRED


def test_a_key_that_does_not_match_is_a_configuration_error_without_the_path(
    pki: StackPki,
) -> None:
    tls = ServerTlsSettings(cert_file=pki.server_cert, key_file=pki.client_key)
    with pytest.raises(ConfigError, match="cannot load cert_file and key_file") as caught:
        server_context(tls)
    assert str(pki.client_key) not in str(caught.value)


def test_region_health_with_a_bad_certificate_exits_2_before_serving(
    pki: StackPki, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            *("--config", str(ROOT / "infra" / "topology.yaml")),
            *("region", "health", "eu-west-1", "--port", "0"),
            *("--tls-cert", str(pki.server_cert), "--tls-key", str(pki.client_key)),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert "cannot load cert_file and key_file" in err
    assert str(pki.client_key) not in err
