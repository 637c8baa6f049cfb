"""Checks that the local stack can start: tools on PATH, Java version, free ports.

Every failure is one line that says what is missing and how to fix it.
"""

from __future__ import annotations

import errno
import logging
import re
import shutil
import socket
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass

from replicator.config import ENV_PREFIX
from replicator.errors import PrerequisiteError, StackError

logger = logging.getLogger(__name__)

MIN_JAVA = 17

INSTALL_HINTS = {
    "java": "install a Java 17+ runtime with `sudo apt-get install openjdk-17-jre-headless`",
    "mvn": "install Maven with `sudo apt-get install maven`",
    "redis-server": "install it with `sudo apt-get install redis-server`",
    "prometheus": "install it with `sudo apt-get install prometheus` (make setup does)",
}


@dataclass(frozen=True)
class Port:
    """A TCP port a service listens on, and the setting that moves it."""

    number: int
    label: str
    """What listens there, e.g. ``redis eu-west-1``."""
    override: str
    """How to move it, e.g. an environment variable name."""


def require_tools(names: Iterable[str]) -> dict[str, str]:
    """Return the path of every tool; raise one line naming all the missing ones."""
    found: dict[str, str] = {}
    missing: list[str] = []
    for name in dict.fromkeys(names):
        path = shutil.which(name)
        if path is None:
            missing.append(f"{name} not found: {INSTALL_HINTS.get(name, 'install it')}")
        else:
            found[name] = path
    if missing:
        raise PrerequisiteError("; ".join(missing))
    return found


def check_java_version(java: str) -> int:
    """Kafka 4 and S3Proxy 4 need Java 17 or newer; return the major version."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PrerequisiteError(
            f"{java} -version failed ({exc}): {INSTALL_HINTS['java']}"
        ) from None
    major = parse_java_major(out.stderr + out.stdout)
    if major is None:
        raise PrerequisiteError(
            f"cannot read the Java version from `{java} -version`: {INSTALL_HINTS['java']}"
        )
    if major < MIN_JAVA:
        raise PrerequisiteError(
            f"{java} is Java {major}; Kafka 4 and S3Proxy need Java {MIN_JAVA} or newer: "
            f"{INSTALL_HINTS['java']} and put it first on PATH"
        )
    return major


def parse_java_major(version_output: str) -> int | None:
    """``openjdk version "17.0.15"`` -> 17; ``java version "1.8.0_402"`` -> 8."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        return int(match.group(2))
    return major


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port (TIME_WAIT leftovers do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def ensure_ports_free(ports: Iterable[Port]) -> None:
    for port in ports:
        if port_in_use(port.number):
            raise StackError(
                f"port {port.number} ({port.label}) is already in use by another process: "
                f"stop it or set {port.override}"
            )


def env_override(*path: str) -> str:
    """The environment variable that overrides a topology field (see replicator.config)."""
    return ENV_PREFIX + "__".join(part.replace("-", "_").upper() for part in path)
