"""Finding the tools of the offline deployment checks (infra/local/install-tools.sh).

A missing tool skips the test on a developer's machine, with the command that installs it,
and fails it under CI (CI=true), where setup installs every tool: a green CI never hides a
check that did not run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
TOOLS_PYTHON = TOOLS / "venv" / "bin" / "python"
CRDS = TOOLS / "crds"
KUBE_VERSION = "1.31.0"


def missing(what: str) -> None:
    message = f"{what} is not installed: run infra/local/install-tools.sh (make setup does)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def tool(name: str) -> str:
    """Path of ``name``: .tools/bin first, then PATH."""
    local = TOOLS / "bin" / name
    if local.is_file() and os.access(local, os.X_OK):
        return str(local)
    found = shutil.which(name)
    if found is None:
        missing(name)
    return str(found)


def tools_python(module: str) -> str:
    """The tools virtualenv's Python, once it can import ``module``."""
    if not TOOLS_PYTHON.exists():
        missing(f"the tools virtualenv ({module})")
    probe = subprocess.run([str(TOOLS_PYTHON), "-c", f"import {module}"], capture_output=True)
    if probe.returncode != 0:
        missing(f"{module} in {TOOLS_PYTHON.parent.parent}")
    return str(TOOLS_PYTHON)


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)  # type: ignore[call-overload]
