"""``consistency`` exit codes, one test per code, on the in-memory twins; and the Kafka
adapter's error boundary (no library exception escapes it)."""

from __future__ import annotations

import concurrent.futures
import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from test_consistency_checker import TOPIC, S, caught_up, fill, make_world

from consistency import cli, wiring
from consistency.adapters.kafka_log import KafkaLog
from consistency.errors import SourceUnavailable, UsageError
from consistency.repair import repair_region
from replicator.core.staleness import AppliedHeartbeat

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGY = str(ROOT / "infra" / "topology.yaml")


@pytest.fixture
def settings_file(tmp_path: Path) -> str:
    path = tmp_path / "consistency.yaml"
    path.write_text("consistency: {}\n")
    return str(path)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Any:
    checker, regions, log, _ = make_world()
    caught_up(regions, log, regions["us"].emitted["proj"].emitted_ns)
    fill(regions, 20)
    monkeypatch.setattr(wiring, "build_checker", lambda topology, settings: checker)
    return checker, regions, log


def check(settings_file: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code = cli.main(
        ["--config", settings_file, "--topology", TOPOLOGY, "check", "--once", "--json"]
    )
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else None


def test_exit_0_when_every_bound_holds(world: Any, settings_file: str, capsys: Any) -> None:
    code, report = check(settings_file, capsys)
    assert code == cli.EXIT_OK and report["violations"] == []


def test_exit_1_when_a_measured_value_violates_a_bound(
    world: Any, settings_file: str, capsys: Any
) -> None:
    _, regions, _ = world
    emitted = regions["us"].emitted["proj"].emitted_ns
    regions["eu"].heartbeats[(TOPIC, 0)] = AppliedHeartbeat(80, emitted - 20 * S)
    code, report = check(settings_file, capsys)
    assert code == cli.EXIT_VIOLATED
    assert [v["region"] for v in report["violations"]] == ["eu"]


def test_exit_2_for_a_bad_settings_file(tmp_path: Path, capsys: Any) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("consistency:\n  bounds: {max_staleness_seconds: -1}\n")
    code = cli.main(["--config", str(bad), "--topology", TOPOLOGY, "check", "--once"])
    assert code == cli.EXIT_USAGE
    assert "bounds.max_staleness_seconds" in capsys.readouterr().err


def test_exit_2_for_an_unknown_region(world: Any, settings_file: str, capsys: Any) -> None:
    code = cli.main(
        ["--config", settings_file, "--topology", TOPOLOGY, "repair", "--region", "nowhere"]
    )
    assert code == cli.EXIT_USAGE
    assert "unknown region 'nowhere'" in capsys.readouterr().err


def test_repairing_the_reference_region_is_a_usage_error(world: Any) -> None:
    checker, _, _ = world
    with pytest.raises(UsageError, match="reference region"):
        repair_region(checker, "us", applier=None)  # type: ignore[arg-type]


def test_exit_3_with_json_when_kafka_is_down(world: Any, settings_file: str, capsys: Any) -> None:
    _, _, log = world
    log.down = True
    code, report = check(settings_file, capsys)
    assert code == cli.EXIT_UNMEASURED
    assert any("kafka" in e for r in report["regions"].values() for e in r["errors"])


def test_exit_3_when_a_source_fails_outside_a_round(
    monkeypatch: pytest.MonkeyPatch, settings_file: str, capsys: Any
) -> None:
    def unreachable(topology: Any, settings: Any) -> Any:
        raise SourceUnavailable("s3: cannot read the manifest: connection refused")

    monkeypatch.setattr(wiring, "build_checker", unreachable)
    code, _ = check(settings_file, capsys)
    assert code == cli.EXIT_UNMEASURED


def test_exit_4_and_a_logged_traceback_for_a_bug(
    monkeypatch: pytest.MonkeyPatch, settings_file: str, capsys: Any
) -> None:
    def broken(topology: Any, settings: Any) -> Any:
        raise ValueError("a bug, not a config error")

    monkeypatch.setattr(wiring, "build_checker", broken)
    code = cli.main(["--config", settings_file, "--topology", TOPOLOGY, "check", "--once"])
    assert code == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert "failed unexpectedly" in err and "Traceback" in err


def test_the_help_documents_every_exit_code(capsys: Any) -> None:
    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for code in range(5):
        assert f"{code} " in help_text.split("exit codes:")[1]


# The Kafka adapter's boundary ---------------------------------------------------------------
class Future:
    def __init__(self, error: BaseException) -> None:
        self.error = error
        self.waited: float | None = None

    def result(self, timeout: float | None = None) -> Any:
        self.waited = timeout
        raise self.error


class Admin:
    def __init__(self, error: BaseException) -> None:
        self.future = Future(error)

    def list_offsets(self, request: Any, request_timeout: float, **_options: Any) -> Any:
        return {tp: self.future for tp in request}


class GroupReader:
    """A consumer of a group whose ``committed()`` times out, as librdkafka's does."""

    def __init__(self) -> None:
        self.timeout: float | None = None

    def committed(self, partitions: Any, timeout: float | None = None) -> Any:
        self.timeout = timeout
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT))


@pytest.mark.parametrize(
    "error",
    [concurrent.futures.TimeoutError(), KafkaException(KafkaError(KafkaError._TIMED_OUT))],
)
def test_kafka_timeouts_become_source_unavailable_and_the_client_is_rebuilt(
    error: BaseException,
) -> None:
    kafka = KafkaLog("127.0.0.1:1", timeout_seconds=2.0)
    admin = Admin(error)
    kafka._admin = admin  # type: ignore[assignment]
    with pytest.raises(SourceUnavailable, match="kafka: end offsets"):
        kafka.end_offsets([("t", 0)])
    assert kafka._admin is None  # the next call connects afresh
    assert admin.future.waited is not None and admin.future.waited > 2.0
    reader = GroupReader()
    kafka._readers["g"] = reader  # type: ignore[assignment]
    with pytest.raises(SourceUnavailable, match="committed offsets of g"):
        kafka.committed("g", [("t", 0)])
    assert reader.timeout == 2.0
    assert kafka._readers["g"] is reader  # kept: it reconnects by itself
