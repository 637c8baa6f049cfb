"""Processes a benchmark (or a test harness) starts and stops: one way to launch them, with
their output in a log file, and one way to end them, SIGTERM first and SIGKILL after a grace
period. Also the wait every launcher needs: poll a condition until a deadline.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REPLICATOR_CLI = Path(sys.executable).parent / "replicator"
"""The ``replicator`` console script of the running interpreter's environment, as an
operator starts it."""


def replicator_command(topology_path: Path, *args: str) -> list[str]:
    """``replicator --config TOPOLOGY ARGS...`` through the console script."""
    return [str(REPLICATOR_CLI), "--config", str(topology_path), *args]


def redis_server_command(port: int, workdir: Path) -> list[str]:
    """A bare ``redis-server`` on 127.0.0.1:``port`` that persists nothing (no RDB snapshots,
    no append-only file), its working files in ``workdir``."""
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the time of the call)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(
    command: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = ROOT,
) -> subprocess.Popen[bytes]:
    """``command`` in the background, stdout and stderr appended to ``log_path``; ``env``:
    the whole environment (None: this process's); ``cwd`` None: this process's."""
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(command),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=None if env is None else dict(env),
        )


def stop(processes: Iterable[subprocess.Popen[bytes]], grace_seconds: float = 20.0) -> None:
    """SIGTERM every process still running, wait up to ``grace_seconds`` for each, then
    SIGKILL (and reap) any left."""
    procs = list(processes)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, probe: float = 0.1
) -> None:
    """Return once ``condition()`` is true, checked every ``probe`` seconds; raises
    ``RuntimeError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(probe)


def tail(path: Path, chars: int = 2000) -> str:
    """The end of a log file, for an error message."""
    return path.read_text(errors="replace")[-chars:]


class PrivateRedis:
    """A throwaway ``redis-server`` of the benchmark's own on a free port (no users, nothing
    persisted), for a Feast baseline that must neither disturb the stack's Redis, which other
    suites use, nor be disturbed by it. A context manager; ``flush()`` empties it."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def connection_string(self) -> str:
        """Feast's ``online_store.connection_string`` for this server."""
        return f"127.0.0.1:{self.port}"

    def client(self) -> Any:
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=60)

    def __enter__(self) -> PrivateRedis:
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = redis_server_command(self.port, self.workdir)
        self._process = start(command, self.workdir / "redis.log", cwd=self.workdir)
        try:
            wait_until(self._answers, 20, f"redis-server on port {self.port}", probe=0.05)
        except BaseException:  # __exit__ does not run when __enter__ raises
            stop([self._process])
            raise
        return self

    def _answers(self) -> bool:
        try:
            return bool(self.client().ping())
        except Exception:  # redis-py raises ConnectionError subclasses while it starts
            return False

    def flush(self) -> None:
        """Remove every key: the server is this benchmark's alone."""
        self.client().flushall()

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            stop([self._process])
