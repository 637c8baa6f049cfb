"""A missing tool or a taken port is one line that says how to fix it."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from replicator import cli
from replicator.errors import PrerequisiteError, StackError
from replicator.stack.prereqs import (
    Port,
    ensure_ports_free,
    env_override,
    parse_java_major,
    port_in_use,
    require_tools,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the committed topology: ignore REPLICATOR_* set by the caller."""
    for name in list(os.environ):
        if name.upper().startswith("REPLICATOR_"):
            monkeypatch.delenv(name)


@pytest.fixture
def path_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Replace PATH by a directory holding only the named tools (symlinks to the real ones)."""

    def make(*tools: str) -> Path:
        bindir = tmp_path / "bin"
        bindir.mkdir(exist_ok=True)
        for tool in tools:
            real = shutil.which(tool)
            if real is None:
                pytest.skip(f"{tool} is not installed here")
            (bindir / tool).symlink_to(real)
        monkeypatch.setenv("PATH", str(bindir))
        return bindir

    return make


def test_missing_redis_server_says_how_to_install_it(path_with):
    path_with("java", "mvn")
    with pytest.raises(PrerequisiteError) as info:
        require_tools(["java", "redis-server"])
    assert str(info.value) == (
        "redis-server not found: install it with `sudo apt-get install redis-server`"
    )


def test_every_missing_tool_is_named_on_one_line(path_with):
    path_with()
    with pytest.raises(PrerequisiteError) as info:
        require_tools(["java", "mvn", "redis-server"])
    message = str(info.value)
    assert "\n" not in message
    for hint in ("java not found", "openjdk-17", "mvn not found", "maven", "redis-server"):
        assert hint in message


def test_tools_found_on_path_are_returned(path_with):
    bindir = path_with("redis-server")
    assert require_tools(["redis-server"]) == {"redis-server": str(bindir / "redis-server")}


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "25" 2025-09-16', 25),
        ('java version "1.8.0_402"', 8),
        ("garbage", None),
    ],
)
def test_java_version_parsing(output: str, major: int | None):
    assert parse_java_major(output) == major


def test_taken_port_names_the_service_and_the_override():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use(port)
        override = env_override("regions", "eu-west-1", "redis", "port")
        with pytest.raises(StackError) as info:
            ensure_ports_free([Port(port, "redis eu-west-1", override)])
    assert str(info.value) == (
        f"port {port} (redis eu-west-1) is already in use by another process: "
        "stop it or set REPLICATOR_REGIONS__EU_WEST_1__REDIS__PORT"
    )
    assert not port_in_use(port)


def test_stack_up_without_redis_server_fails_in_one_line(
    path_with, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """Nothing is started: prerequisites are checked before any process."""
    path_with("java", "mvn")
    monkeypatch.setenv("REPLICATOR_STACK__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(ROOT)
    code = cli.main(["--config", str(ROOT / "infra" / "topology.yaml"), "stack", "up"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "replicator: error: redis-server not found: "
        "install it with `sudo apt-get install redis-server`\n"
    )
    assert not list((tmp_path / "state").glob("*/server.pid"))
