"""Import boundaries: the worker starts without Feast, the core stays pure, no consistency.

Each import check runs in a fresh interpreter, so what this test session already imported
cannot hide (or fake) a dependency.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "replicator"
CORE_FORBIDDEN = ("confluent_kafka", "redis", "boto3", "botocore", "feast")


def loaded_after(imports: list[str], watched: tuple[str, ...]) -> list[str]:
    """Top-level packages of ``watched`` present in sys.modules after ``imports``."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {imports!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({watched!r}))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def core_modules() -> list[str]:
    return sorted(f"replicator.core.{p.stem}" for p in (PACKAGE / "core").glob("*.py"))


def test_worker_command_does_not_import_feast() -> None:
    # `import feast` costs 5-8 s: a regional worker must start (and restart) in well under one.
    assert loaded_after(["replicator.commands.worker"], ("feast",)) == []


def test_worker_command_entry_point_does_not_import_feast() -> None:
    assert loaded_after(["replicator.cli", "replicator.commands.worker"], ("feast",)) == []


def test_core_modules_are_found() -> None:
    assert {"replicator.core.records", "replicator.core.wire", "replicator.core.ports"} <= set(
        core_modules()
    )


@pytest.mark.parametrize("module", core_modules())
def test_core_imports_no_io_library(module: str) -> None:
    assert loaded_after([module], CORE_FORBIDDEN) == []


def _imported_names(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_replicator_never_imports_consistency() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        for line, name in _imported_names(path)
        if name == "consistency" or name.startswith("consistency.")
    ]
    assert offenders == []


def test_the_import_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import consistency\n"
        "import consistency.checker as c\n"
        "from consistency import bounds\n"
        "def f():\n"
        "    from consistency.digest import x\n"
        "    return importlib.import_module('consistency.cli')\n"
        "from . import consistency_like\n"
    )
    names = [name for _, name in _imported_names(sample)]
    assert sorted(names) == sorted(
        [
            "consistency",
            "consistency.checker",
            "consistency",
            "consistency.digest",
            "consistency.cli",
        ]
    )
