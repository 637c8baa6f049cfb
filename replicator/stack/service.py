"""What the local stack needs to know about one server: how to start it and how to probe it."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from replicator.stack import processes
from replicator.stack.prereqs import Port

logger = logging.getLogger(__name__)


class Service(ABC):
    """One server process of the local stack.

    ``workdir`` holds its config, pid file, logs and data. Subclasses render config files in
    ``prepare`` (called before every start, so a changed topology takes effect), give the
    command line, and a health probe that answers quickly and never raises.
    """

    key: str
    """Stable identifier: ``kafka``, ``s3`` or ``redis:<region>``."""
    label: str
    """For people: ``kafka``, ``s3``, ``redis eu-west-1``."""
    tool: str
    """The executable the service runs (``java``, ``redis-server``)."""
    artifact: str | None = None
    """Maven artifact set (``infra/local/maven/<artifact>``) the service needs, if any."""
    startup_timeout: float = 60.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @property
    def pid_file(self) -> Path:
        return self.workdir / "server.pid"

    @property
    def output_file(self) -> Path:
        """Where the process's stdout and stderr go."""
        return self.workdir / "stdout.log"

    def log_files(self) -> list[Path]:
        """Logs worth showing when the service fails to start, most useful first."""
        return [self.output_file]

    @property
    @abstractmethod
    def ports(self) -> list[Port]: ...

    @abstractmethod
    def prepare(self, tools: dict[str, str], jars: Path | None) -> list[str]:
        """Write config files (secrets with mode 0600) and initialise data on first start.

        Returns what it did worth telling the user (e.g. "formatted storage").
        """

    @abstractmethod
    def command(self, tools: dict[str, str], jars: Path | None) -> list[str]: ...

    @abstractmethod
    def probe(self) -> bool:
        """True when the service answers as a client would use it. Never raises."""

    def after_healthy(self) -> list[str]:
        """Idempotent set-up once the service answers; returns what it did, for the user."""
        return []

    def describe(self) -> dict[str, Any]:
        """Ports and addresses for ``status``; no secrets."""
        return {"port": self.ports[0].number}

    # Process bookkeeping ----------------------------------------------------------------
    def pid(self) -> int | None:
        """The pid of our running server, or None (a stale pid file is removed)."""
        pid = processes.read_pid(self.pid_file)
        if pid is None:
            return None
        if processes.is_running(pid, self.workdir):
            return pid
        logger.debug("%s: removing stale pid file (pid %d)", self.label, pid)
        self.pid_file.unlink(missing_ok=True)
        return None

    def start(self, tools: dict[str, str], jars: Path | None) -> tuple[int, list[str]]:
        """Start the server in the background; returns its pid and what ``prepare`` did."""
        self.workdir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for log in self.log_files():  # keep one previous run; a failure shows only this one
            if log.exists():
                log.replace(log.with_name(log.name + ".prev"))
        notes = self.prepare(tools, jars)
        pid = processes.spawn(
            self.command(tools, jars),
            workdir=self.workdir,
            output=self.output_file,
            pid_file=self.pid_file,
        )
        return pid, notes

    def failure_report(self, lines: int = 20) -> str:
        parts = []
        for path in self.log_files():
            text = processes.tail(path, lines)
            if text.strip():
                parts.append(f"--- last lines of {path} ---\n{text}")
        return "\n".join(parts) or f"(no log output in {self.workdir})"


def render_properties(values: dict[str, object]) -> str:
    """Java ``.properties`` text, one ``key=value`` per line, in the given order."""
    return "".join(f"{key}={value}\n" for key, value in values.items())
