"""Jars for the JVM services, resolved from Maven Central by ``infra/local/maven/<name>/pom.xml``.

Maven runs only when ``<state_dir>/jars/<name>`` is missing or was made from another pom: a
stamp file holds the pom's SHA-256. Maven's local repository (~/.m2) makes re-runs fast.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
from pathlib import Path

from replicator.errors import StackError

logger = logging.getLogger(__name__)

STAMP = ".pom-sha256"
MAVEN_DIR = Path("infra/local/maven")


def find_maven_dir(cwd: Path | None = None) -> Path:
    """``infra/local/maven`` under the current directory, else beside this package's source."""
    candidates = [
        (cwd or Path.cwd()) / MAVEN_DIR,
        Path(__file__).resolve().parents[2] / MAVEN_DIR,
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise StackError(
        f"cannot find {MAVEN_DIR} (looked in {', '.join(str(c) for c in candidates)}): "
        f"run the command from the repository root"
    )


def jars_ready(jars: Path, pom: Path) -> bool:
    stamp = jars / STAMP
    return stamp.exists() and stamp.read_text(encoding="ascii").strip() == _sha256(pom)


def ensure_artifacts(name: str, state_dir: Path, mvn: str | None, maven_dir: Path) -> Path:
    """Return ``<state_dir>/jars/<name>``, resolving it with Maven if needed."""
    pom = maven_dir / name / "pom.xml"
    if not pom.exists():
        raise StackError(f"{pom} not found")
    jars = state_dir / "jars" / name
    if jars_ready(jars, pom):
        return jars
    if mvn is None:
        raise StackError(f"{jars} is missing and Maven is not available to resolve it")
    staging = jars.with_name(f"{name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}",
    ]
    logger.debug("resolving %s jars with Maven into %s", name, jars)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    except subprocess.TimeoutExpired:
        raise StackError(f"Maven did not resolve {pom} within 15 minutes") from None
    if result.returncode != 0 or not any(staging.glob("*.jar")):
        output = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise StackError(f"Maven could not resolve {pom} (is Maven Central reachable?):\n{output}")
    (staging / STAMP).write_text(_sha256(pom) + "\n", encoding="ascii")
    shutil.rmtree(jars, ignore_errors=True)
    staging.rename(jars)
    return jars


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
