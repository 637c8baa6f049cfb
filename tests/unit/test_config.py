"""Configuration errors name the file, the field and what is wrong."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from replicator import cli
from replicator.config import load_topology
from replicator.errors import ConfigError
from replicator.stack.s3_server import shared_location

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "infra" / "topology.yaml"


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the committed topology: ignore REPLICATOR_* set by the caller."""
    for name in list(os.environ):
        if name.upper().startswith("REPLICATOR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def topology_data() -> dict:
    return yaml.safe_load(DEFAULT.read_text())


def write(tmp_path: Path, data: dict | str) -> Path:
    path = tmp_path / "topology.yaml"
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_default_topology_loads():
    topology = load_topology(DEFAULT)
    assert topology.primary_region in topology.regions
    assert len(topology.regions) == 3


def test_missing_file_names_the_path_and_the_options(tmp_path: Path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_topology(missing)
    assert str(missing) in str(info.value)
    assert "--config" in str(info.value)


def test_bad_yaml_gives_the_line_number(tmp_path: Path):
    path = write(tmp_path, "project: x\nregions:\n  us-east-1: {redis: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid YAML at line ")
    assert "line 3" in message or "line 4" in message


def test_wrong_type_names_the_field_and_the_file(tmp_path: Path, topology_data: dict):
    topology_data["regions"]["eu-west-1"]["redis"]["port"] = "not-a-port"
    path = write(tmp_path, topology_data)
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    message = str(info.value)
    assert str(path) in message
    assert "regions.eu-west-1.redis.port" in message
    assert "not-a-port" in message


def test_unknown_primary_region_is_named(tmp_path: Path, topology_data: dict):
    topology_data["primary_region"] = "mars-north-1"
    with pytest.raises(ConfigError) as info:
        load_topology(write(tmp_path, topology_data))
    assert "mars-north-1" in str(info.value)
    assert "us-east-1" in str(info.value)


def test_unknown_region_lookup_lists_the_configured_ones():
    with pytest.raises(ConfigError) as info:
        load_topology(DEFAULT).region("mars-north-1")
    assert "mars-north-1" in str(info.value) and "eu-west-1" in str(info.value)


def test_unknown_field_is_rejected(tmp_path: Path, topology_data: dict):
    topology_data["stack"]["kafka_heap"] = 512
    with pytest.raises(ConfigError) as info:
        load_topology(write(tmp_path, topology_data))
    assert "stack.kafka_heap" in str(info.value)


def test_passwords_never_appear_in_errors(tmp_path: Path, topology_data: dict):
    topology_data["regions"]["us-east-1"]["redis"]["writer"]["password"] = ["s3cret-value"]
    with pytest.raises(ConfigError) as info:
        load_topology(write(tmp_path, topology_data))
    assert "regions.us-east-1.redis.writer.password" in str(info.value)
    assert "s3cret-value" not in str(info.value)


def test_environment_overrides_reach_dashed_region_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REPLICATOR_REGIONS__EU_WEST_1__REDIS__PORT", "26380")
    monkeypatch.setenv("REPLICATOR_STACK__S3_PORT", "29000")
    topology = load_topology(DEFAULT)
    assert topology.region("eu-west-1").redis.port == 26380
    assert topology.stack.s3_port == 29000


def test_cli_prints_config_errors_as_one_message_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    assert cli.main(["--config", str(tmp_path / "nope.yaml"), "stack", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("replicator: error: ") and "Traceback" not in err


# The local stack serves every region from one S3Proxy ------------------------------------
def test_local_stack_rejects_regions_with_different_s3_endpoints(
    tmp_path: Path, topology_data: dict
):
    topology_data["regions"]["eu-west-1"]["s3"]["endpoint_url"] = "http://127.0.0.1:19999"
    topology = load_topology(write(tmp_path, topology_data))
    with pytest.raises(ConfigError) as info:
        shared_location(topology)
    assert "regions.eu-west-1.s3.endpoint_url" in str(info.value)


def test_local_stack_rejects_an_endpoint_off_the_s3_port(tmp_path: Path, topology_data: dict):
    topology_data["stack"]["s3_port"] = 19001
    topology = load_topology(write(tmp_path, topology_data))
    with pytest.raises(ConfigError) as info:
        shared_location(topology)
    assert "stack.s3_port" in str(info.value)


def test_read_fallbacks_default_to_every_other_region_and_must_name_regions(
    tmp_path: Path,
) -> None:
    raw = yaml.safe_load(DEFAULT.read_text())
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_topology(path).read_order("eu-west-1") == [
        "eu-west-1",
        "us-east-1",
        "ap-southeast-1",
    ]
    raw["regions"]["eu-west-1"]["read_fallbacks"] = ["ap-southeast-1"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert load_topology(path).read_order("eu-west-1") == ["eu-west-1", "ap-southeast-1"]
    raw["regions"]["eu-west-1"]["read_fallbacks"] = ["mars-1"]
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError, match="read_fallbacks"):
        load_topology(path)


def test_retention_is_finite_by_default_and_snapshots_must_be_well_inside_it(
    tmp_path: Path, topology_data: dict
):
    assert load_topology(Path("infra/topology.yaml")).kafka.retention_ms == 7 * 24 * 3600 * 1000
    topology_data["kafka"]["retention_hours"] = 24
    topology_data["snapshots"] = {"interval_seconds": 12 * 3600}
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(topology_data))
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert "snapshots.interval_seconds" in str(info.value)
    assert "kafka.retention_hours" in str(info.value)


def test_worker_key_ttl_seconds_is_refused_with_where_it_moved(tmp_path: Path, topology_data: dict):
    topology_data["worker"] = {"key_ttl_seconds": 3600}
    with pytest.raises(ConfigError) as error:
        load_topology(write(tmp_path, topology_data))
    assert "worker.key_ttl_seconds" in str(error.value)
    assert "online_store.key_ttl_seconds" in str(error.value)


def test_a_file_extends_another_key_by_key_with_file_paths_relative_to_their_file(
    tmp_path: Path,
):
    base_dir, variant_dir = tmp_path / "base", tmp_path / "variant"
    base_dir.mkdir()
    variant_dir.mkdir()
    data = yaml.safe_load(DEFAULT.read_text())
    data["regions"]["eu-west-1"]["redis"]["tls"] = {"enabled": True, "ca_file": "tls/ca.pem"}
    (base_dir / "topology.yaml").write_text(yaml.safe_dump(data))
    client_cert = {"cert_file": "c.pem", "key_file": "/k.pem"}
    variant = {
        "extends": "../base/topology.yaml",
        "project": "variant",
        "regions": {"eu-west-1": {"redis": {"port": 7000, "tls": client_cert}}},
    }
    (variant_dir / "topology.yaml").write_text(yaml.safe_dump(variant))

    topology = load_topology(variant_dir / "topology.yaml")

    redis = topology.region("eu-west-1").redis
    assert (topology.project, redis.port, redis.writer.username) == ("variant", 7000, "replicator")
    assert redis.tls.ca_file == base_dir / "tls" / "ca.pem"  # the base's path, from its dir
    assert redis.tls.cert_file == variant_dir / "c.pem"  # the variant's, from its own
    assert redis.tls.key_file == Path("/k.pem")
    assert topology.region("us-east-1").redis.port == 16379  # untouched: the base's


def test_extends_names_a_missing_base_and_refuses_a_cycle(tmp_path: Path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml: config file not found \(extended by"):
        load_topology(a)
    a.write_text("extends: b.yaml\n")
    b.write_text("extends: a.yaml\n")
    with pytest.raises(ConfigError, match="makes a cycle"):
        load_topology(a)


def test_insecure_picks_the_plaintext_twin_with_a_warning(capsys: pytest.CaptureFixture[str]):
    from replicator.commands import config_argument
    from replicator.config import INSECURE_CONFIG_PATH

    parser = cli.build_parser()
    for argv in (["stack", "up", "--insecure"], ["demo", "--once", "--insecure"]):
        assert config_argument(parser.parse_args(argv)) == INSECURE_CONFIG_PATH
        assert "WARNING: --insecure" in capsys.readouterr().err
    assert config_argument(parser.parse_args(["stack", "up"])) is None  # the secure default
    assert capsys.readouterr().err == ""
    with pytest.raises(ConfigError, match="does not combine with --config"):
        config_argument(parser.parse_args(["--config", "x.yaml", "stack", "status", "--insecure"]))
    plain = load_topology(ROOT / INSECURE_CONFIG_PATH)
    assert plain.kafka.security.protocol == "PLAINTEXT"
