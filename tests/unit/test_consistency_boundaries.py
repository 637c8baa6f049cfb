"""Import boundaries of the checker: a pure core, a CLI that starts without Feast,
``replicator`` never importing ``consistency``, and ``consistency`` importing only the
replicator's core, config and errors (its adapters only through ``adapters/shared.py``)."""

from __future__ import annotations

from pathlib import Path

from test_boundaries import _imported_names, loaded_after

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


SHARED = "consistency/adapters/shared.py"
ALLOWED = (
    "replicator.core",
    "replicator.config",
    "replicator.config_security",
    "replicator.commands.server_tls",  # the --tls-* flags of every command that serves HTTP
    "replicator.errors",
    "replicator.logs",
)
SHARED_MAY_IMPORT = {
    # The means to reach a region (see consistency/adapters/shared.py); names and layouts
    # come from replicator.core.
    "replicator.adapters.kafka_config",
    "replicator.adapters.redis_store",
    "replicator.adapters.s3",
    # One HTTP(S) server for `consistency serve` and `replicator region health`.
    "replicator.adapters.http_server",
}


def _replicator_imports() -> list[tuple[str, int, str]]:
    return [
        (str(path.relative_to(ROOT)), line, name)
        for path in sorted((ROOT / "consistency").rglob("*.py"))
        for line, name in _imported_names(path)
        if name == "replicator" or name.startswith("replicator.")
    ]


def test_consistency_imports_only_the_replicators_core_config_and_errors() -> None:
    offenders = [
        f"{path}:{line} imports {name}"
        for path, line, name in _replicator_imports()
        if path != SHARED and not any(name == a or name.startswith(a + ".") for a in ALLOWED)
    ]
    assert offenders == []


def test_replicator_adapters_reach_consistency_only_through_one_module() -> None:
    shared = {name for path, _, name in _replicator_imports() if path == SHARED}
    outside_core = {n for n in shared if not any(n.startswith(a) for a in ALLOWED)}
    assert outside_core <= SHARED_MAY_IMPORT
