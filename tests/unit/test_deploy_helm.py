"""The Helm chart of a region, rendered with `helm template` and validated offline against
Kubernetes' JSON schemas (and the prometheus-operator CRDs), as CI does: no cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_tools import CRDS, KUBE_VERSION, ROOT, run, tool, tools_python

from replicator.config import load_topology, read_topology_document
from replicator.core.feast_settings import FeastSettings
from replicator.k8s_values import PLACEHOLDER, render
from replicator.regional_config import feature_store_yaml

CHART = ROOT / "infra" / "helm" / "feast-region-replicator"
VALIDATOR = ROOT / "infra" / "helm" / "validate.py"
TOPOLOGY = load_topology(ROOT / "infra" / "topology.yaml")


def helm_template(*args: str) -> tuple[int, str, str]:
    done = run(
        [tool("helm"), "template", "feast", str(CHART), "--kube-version", KUBE_VERSION, *args]
    )
    return done.returncode, done.stdout, done.stderr


def rendered(*args: str) -> str:
    code, out, err = helm_template(*args)
    assert code == 0, err
    return out


def objects(text: str) -> dict[tuple[str, str], Any]:
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(text) if o}


def validate(text: str, tmp_path: Path) -> tuple[int, str]:
    if not (CRDS / "VERSION").exists():
        tool("missing-crds")  # skips (or fails under CI) with the install hint
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(text)
    python = tools_python("kubernetes_validate")
    done = run(
        [python, str(VALIDATOR), f"--kube-version={KUBE_VERSION}", f"--crds={CRDS}", str(manifest)]
    )
    return done.returncode, done.stdout + done.stderr


def values_file(tmp_path: Path, region: str, **options: Any) -> str:
    path = tmp_path / f"{region}.yaml"
    path.write_text(render(TOPOLOGY, region, **options))
    return str(path)


def container(obj: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def test_the_defaults_render_and_every_object_is_valid(tmp_path: Path) -> None:
    text = rendered()
    code, report = validate(text, tmp_path)
    assert code == 0, report
    kinds = {kind for kind, _ in objects(text)}
    assert {"Deployment", "PodDisruptionBudget", "Service", "ConfigMap"} <= kinds
    assert {"ServiceMonitor", "PrometheusRule"} <= kinds


@pytest.mark.parametrize("region", list(TOPOLOGY.regions))
def test_generated_values_of_every_region_render_valid_objects(region: str, tmp_path: Path) -> None:
    text = rendered("-f", values_file(tmp_path, region))
    code, report = validate(text, tmp_path)
    assert code == 0, report
    names = {name for _, name in objects(text)}
    primary = region == TOPOLOGY.primary_region
    assert (f"feast-{region}-heartbeats" in names) is primary
    assert (f"feast-{region}-checker" in names) is primary
    assert f"feast-{region}-worker" in names and f"feast-{region}-feature-server" in names


def test_the_validator_rejects_an_object_kubernetes_would_reject(tmp_path: Path) -> None:
    text = rendered().replace("maxUnavailable: 1\n", "maxUnavailable: 1\n  maxUnavaliable: 2\n")
    code, report = validate(text, tmp_path)
    assert code == 1 and "maxUnavaliable" in report


def test_more_workers_than_partitions_is_refused() -> None:
    code, _, err = helm_template("--set", "worker.replicas=7")
    assert code != 0 and "exceeds topology.kafka.partitions (6)" in err


def test_values_outside_the_schema_are_refused() -> None:
    code, _, err = helm_template("--set", "worker.replicas=0", "--set", "workr.x=1")
    assert code != 0 and "/worker/replicas" in err


def test_an_unknown_region_is_refused() -> None:
    code, _, err = helm_template("--set", "region=mars")
    assert code != 0 and 'region "mars" is not one of topology.regions' in err


def test_workers_drain_within_the_grace_period_and_get_only_their_secrets(tmp_path: Path) -> None:
    found = objects(rendered("-f", values_file(tmp_path, "eu-west-1", worker_replicas=9)))
    worker = found[("Deployment", "feast-eu-west-1-worker")]
    assert worker["spec"]["replicas"] == TOPOLOGY.kafka.partitions  # capped
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    env = {e["name"]: e for e in container(worker, "worker")["env"]}
    secrets = {
        name: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for name, e in env.items()
        if "valueFrom" in e
    }
    assert secrets == {
        "REPLICATOR_REGIONS__EU_WEST_1__REDIS__WRITER__PASSWORD": (
            "feast-replicator-eu-west-1",
            "redis-writer-password",
        ),
        "REPLICATOR_REGIONS__EU_WEST_1__S3__ACCESS_KEY_ID": (
            "feast-replicator-eu-west-1",
            "s3-access-key-id",
        ),
        "REPLICATOR_REGIONS__EU_WEST_1__S3__SECRET_ACCESS_KEY": (
            "feast-replicator-eu-west-1",
            "s3-secret-access-key",
        ),
    }
    assert env["REPLICATOR_WORKER__METRICS_HOST"]["value"] == "0.0.0.0"
    pdb = found[("PodDisruptionBudget", "feast-eu-west-1-worker")]
    assert pdb["spec"]["maxUnavailable"] == 1


def test_the_configmap_holds_the_topology_without_its_secrets(tmp_path: Path) -> None:
    text = rendered("-f", values_file(tmp_path, "us-east-1"))
    for region in TOPOLOGY.regions.values():
        for user in (region.redis.writer, region.redis.reader, region.redis.admin):
            assert user.password.get_secret_value() not in text
        assert region.s3.secret_access_key.get_secret_value() not in text
    config = objects(text)[("ConfigMap", "feast-us-east-1")]
    topology = yaml.safe_load(config["data"]["topology.yaml"])
    assert set(topology["regions"]) == set(TOPOLOGY.regions)
    assert topology["regions"]["eu-west-1"]["redis"]["reader"]["password"] == PLACEHOLDER
    assert topology["regions"]["eu-west-1"]["redis"]["port"] == 16380


def test_the_prometheus_rule_carries_the_monitoring_rules_unchanged(tmp_path: Path) -> None:
    text = rendered("-f", values_file(tmp_path, TOPOLOGY.primary_region))
    rule = objects(text)[("PrometheusRule", f"feast-{TOPOLOGY.primary_region}")]
    source = yaml.safe_load((ROOT / "infra" / "monitoring" / "prometheus-rules.yaml").read_text())
    assert rule["spec"] == source


def test_the_health_endpoint_command_is_configurable() -> None:
    text = rendered("--set", "health.command={my-health}", "--set", "health.args={--region,x}")
    server = objects(text)[("Deployment", "feast-eu-west-1-feature-server")]
    health = container(server, "health")
    assert health["command"] == ["my-health"] and health["args"] == ["--region", "x"]
    default = container(
        objects(rendered())[("Deployment", "feast-eu-west-1-feature-server")], "health"
    )
    assert default["args"][2:5] == ["region", "health", "eu-west-1"]


def test_tls_endpoints_mount_their_secret_probe_over_https_and_are_scraped_over_https() -> None:
    text = rendered(
        *("--set", "checker.tls.secret=checker-tls", "--set", "health.tls.secret=health-tls"),
        *("--set", "monitoring.serviceMonitor.checkerTlsConfig.serverName=checker.example"),
    )
    found = objects(text)
    checker = container(found[("Deployment", "feast-eu-west-1-checker")], "checker")
    env = {e["name"]: e.get("value") for e in checker["env"]}
    assert env["CONSISTENCY_SERVER__TLS__CERT_FILE"] == "/etc/tls/checker/tls.crt"
    assert env["CONSISTENCY_SERVER__TLS__KEY_FILE"] == "/etc/tls/checker/tls.key"
    assert "CONSISTENCY_SERVER__TLS__CLIENT_CA_FILE" not in env
    assert checker["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    health = container(found[("Deployment", "feast-eu-west-1-feature-server")], "health")
    assert health["args"][-2:] == [
        "--tls-cert=/etc/tls/health/tls.crt",
        "--tls-key=/etc/tls/health/tls.key",
    ]
    assert health["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    assert {"name": "health-tls", "mountPath": "/etc/tls/health", "readOnly": True} in health[
        "volumeMounts"
    ]
    service = found[("Service", "feast-eu-west-1-checker")]
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics-https"]
    endpoints = found[("ServiceMonitor", "feast-eu-west-1")]["spec"]["endpoints"]
    https = next(e for e in endpoints if e["port"] == "metrics-https")
    assert https["scheme"] == "https"
    assert https["tlsConfig"] == {"serverName": "checker.example"}


MUTUAL_TLS = (
    *("--set", "checker.tls.secret=c", "--set", "checker.tls.clientAuth=true"),
    *("--set", "health.tls.secret=h", "--set", "health.tls.clientAuth=true"),
    *("--set", "monitoring.serviceMonitor.checkerTlsConfig.serverName=checker.example"),
)


def test_tls_values_render_valid_objects(tmp_path: Path) -> None:
    code, report = validate(rendered(*MUTUAL_TLS), tmp_path)
    assert code == 0, report


def test_mutual_tls_endpoints_are_probed_on_their_port_only() -> None:
    found = objects(rendered(*MUTUAL_TLS))
    checker = container(found[("Deployment", "feast-eu-west-1-checker")], "checker")
    env = {e["name"]: e.get("value") for e in checker["env"]}
    assert env["CONSISTENCY_SERVER__TLS__CLIENT_CA_FILE"] == "/etc/tls/checker/ca.crt"
    assert checker["livenessProbe"] == {
        "tcpSocket": {"port": "http"},
        "initialDelaySeconds": 20,
        "periodSeconds": 20,
    }
    health = container(found[("Deployment", "feast-eu-west-1-feature-server")], "health")
    assert "--tls-client-ca=/etc/tls/health/ca.crt" in health["args"]
    assert "tcpSocket" in health["readinessProbe"]


def test_k8s_values_cli_writes_values_for_a_region(tmp_path: Path, capsys: Any) -> None:
    from replicator import cli

    out = tmp_path / "v.yaml"
    config = str(ROOT / "infra" / "topology.yaml")
    args = ["--config", config, "region", "k8s-values", "ap-southeast-1", "--out", str(out)]
    assert cli.main([*args, "--image", "registry:5000/replicator"]) == 0
    values = yaml.safe_load(out.read_text())
    assert values["region"] == "ap-southeast-1" and values["checker"] == {"enabled": False}
    assert values["image"] == {"repository": "registry:5000/replicator", "tag": ""}
    assert [r["name"] for r in values["topology"]["regions"]] == list(TOPOLOGY.regions)
    assert cli.main(["--config", config, "region", "k8s-values", "mars"]) == 2
    assert "unknown region 'mars'" in capsys.readouterr().err


def test_the_checker_gets_each_regions_read_only_user_never_the_writer(tmp_path: Path) -> None:
    def checker_secret_keys(values: str) -> set[str]:
        found = objects(rendered("-f", values))
        checker = container(found[("Deployment", "feast-us-east-1-checker")], "checker")
        return {e["valueFrom"]["secretKeyRef"]["key"] for e in checker["env"] if "valueFrom" in e}

    keys = checker_secret_keys(values_file(tmp_path, "us-east-1"))
    assert "redis-checker-password" in keys and "redis-writer-password" not in keys
    # A topology without checker users (older files): the checker reads as the writer.
    values = yaml.safe_load(render(TOPOLOGY, "us-east-1"))
    for region in values["topology"]["regions"]:
        region["redis"].pop("checker")
    older = tmp_path / "older.yaml"
    older.write_text(yaml.safe_dump(values))
    keys = checker_secret_keys(str(older))
    assert "redis-writer-password" in keys and "redis-checker-password" not in keys


SECURE = ROOT / "infra" / "topology.yaml"  # the secure default


def secure_values(tmp_path: Path, region: str) -> tuple[Any, str]:
    """Values from the secure topology, ``region`` with a Redis client certificate and
    mutual TLS on its health endpoint (paths of the operator's machine)."""
    data = read_topology_document(SECURE)
    data["regions"][region]["redis"]["tls"].update(cert_file="client.pem", key_file="client.key")
    data["regions"][region]["read_fallbacks"] = ["ap-southeast-1"]
    data["regions"][region]["health_tls"] = {
        "cert_file": "health.pem",
        "key_file": "health.key",
        "client_ca_file": "clients.pem",
    }
    path = tmp_path / "secure.yaml"
    path.write_text(yaml.safe_dump(data))
    values = tmp_path / f"{region}.yaml"
    values.write_text(render(load_topology(path), region))
    return yaml.safe_load(values.read_text()), str(values)


def mount_paths(obj: dict[str, Any], name: str, *, init: bool = False) -> dict[str, str]:
    """A container's mount paths -> the Secret behind each (None for other volumes)."""
    spec = obj["spec"]["template"]["spec"]
    secrets = {v["name"]: v.get("secret", {}).get("secretName") for v in spec["volumes"]}
    found = spec["initContainers" if init else "containers"]
    mounts = next(c for c in found if c["name"] == name)["volumeMounts"]
    return {m["mountPath"]: secrets[m["name"]] for m in mounts}


def test_the_feature_server_mounts_every_redis_tls_file_its_feast_config_names(
    tmp_path: Path,
) -> None:
    values, path = secure_values(tmp_path, "eu-west-1")
    text = rendered("-f", path)
    found = objects(text)
    pod_topology = tmp_path / "pod-topology.yaml"
    pod_topology.write_text(found[("ConfigMap", "feast-eu-west-1")]["data"]["topology.yaml"])
    # What the init container writes (`replicator region feast-config`) from the pod's topology.
    feast = yaml.safe_load(
        feature_store_yaml(load_topology(pod_topology), "eu-west-1", FeastSettings())
    )
    plan = feast["online_store"]["plan"]
    files = {
        Path(region["tls"][field])
        for region in [*plan["regions"], plan["primary"]]
        for field in ("ca_file", "cert_file", "key_file")
        if region["tls"].get(field)
    }
    assert Path("/etc/tls/redis/eu-west-1/tls.key") in files  # the client certificate's key
    assert {f.parent.name for f in files} == {"eu-west-1", "ap-southeast-1", "us-east-1"}
    server = found[("Deployment", "feast-eu-west-1-feature-server")]
    for name, init in (("feast-config", True), ("feature-server", False), ("health", False)):
        mounted = mount_paths(server, name, init=init)
        for file in files:
            secret = mounted.get(str(file.parent))
            assert secret == f"feast-replicator-{file.parent.name}-redis-tls", (name, file)
    assert values["health"] == {
        "tls": {"secret": "feast-replicator-eu-west-1-health-tls", "clientAuth": True}
    }
    health = container(server, "health")
    assert "--tls-client-ca=/etc/tls/health/ca.crt" in health["args"]
    assert (
        mount_paths(server, "health")["/etc/tls/health"] == "feast-replicator-eu-west-1-health-tls"
    )
    code, report = validate(text, tmp_path)
    assert code == 0, report


def test_workers_mount_only_their_own_regions_redis_tls_files(tmp_path: Path) -> None:
    found = objects(rendered("-f", secure_values(tmp_path, "eu-west-1")[1]))
    worker = mount_paths(found[("Deployment", "feast-eu-west-1-worker")], "worker")
    assert {p for p in worker if p.startswith("/etc/tls/")} == {"/etc/tls/redis/eu-west-1"}
    config = found[("ConfigMap", "feast-eu-west-1")]["data"]["topology.yaml"]
    assert "redisTlsSecret" not in config  # chart values, not topology fields
