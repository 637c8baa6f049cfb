"""Credentials files are 0600 always: created, and when they existed with wider permissions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from replicator.config import load_topology
from replicator.core.feast_settings import FeastSettings
from replicator.regional_config import write_regional_repo
from replicator.secret_files import write_secret_file

ROOT = Path(__file__).resolve().parents[2]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask: the helper must not rely on it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_a_new_secret_file_is_0600(tmp_path: Path, open_umask: None) -> None:
    path = tmp_path / "secret"
    write_secret_file(path, "password=x\n")
    assert mode(path) == 0o600
    assert path.read_text() == "password=x\n"


def test_an_existing_world_readable_file_is_narrowed_and_replaced(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "secret"
    path.write_text("old and longer content\n")
    path.chmod(0o644)
    write_secret_file(path, "new\n")
    assert mode(path) == 0o600
    assert path.read_text() == "new\n"


def test_feast_config_files_of_a_region_are_0600_even_when_they_existed(
    tmp_path: Path, open_umask: None
) -> None:
    topology = load_topology(ROOT / "infra" / "topology.yaml")
    out = tmp_path / "regions" / "eu-west-1"
    out.mkdir(parents=True)
    for name in ("feast.env", "feature_store.yaml"):
        (out / name).write_text("stale\n")
        (out / name).chmod(0o666)
    write_regional_repo(topology, "eu-west-1", out, settings=FeastSettings())
    for name in ("feast.env", "feature_store.yaml"):
        assert mode(out / name) == 0o600, name
    secret = topology.region("eu-west-1").s3.secret_access_key.get_secret_value()
    assert f"AWS_SECRET_ACCESS_KEY={secret}\n" in (out / "feast.env").read_text()


def test_no_other_module_sets_file_permissions_itself() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for package in ("replicator", "consistency")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "secret_files.py"
        and any(s in path.read_text(encoding="utf-8") for s in ("0o600", "fchmod", "O_CREAT"))
    ]
    assert offenders == []
