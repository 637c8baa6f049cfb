"""Import boundaries of the checker: a pure core, a CLI that starts without Feast, and
``replicator`` never importing ``consistency``."""

from __future__ import annotations

from pathlib import Path

from test_boundaries import loaded_after

ROOT = Path(__file__).resolve().parents[2]


def test_the_core_does_no_io() -> None:
    core = sorted(f"consistency.core.{p.stem}" for p in (ROOT / "consistency/core").glob("*.py"))
    assert "consistency.core.digest" in core
    watched = ("redis", "confluent_kafka", "boto3", "botocore", "feast", "urllib3", "requests")
    assert loaded_after(core, watched) == []


def test_the_cli_starts_without_feast() -> None:
    assert (
        loaded_after(["consistency.cli", "consistency.wiring", "consistency.service"], ("feast",))
        == []
    )


def test_the_heartbeat_emitter_starts_without_feast() -> None:
    assert (
        loaded_after(["replicator.commands.heartbeats", "replicator.heartbeat"], ("feast",)) == []
    )


def test_replicator_never_imports_consistency() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "replicator").rglob("*.py")
        if any(
            line.strip().startswith(("import consistency", "from consistency"))
            for line in path.read_text().splitlines()
        )
    ]
    assert offenders == []
