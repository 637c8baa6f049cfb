"""Background server processes tracked by pid files.

A process started here runs in its own session (Ctrl-C in the terminal does not reach it) with
its working directory set to its service directory. That directory is also how we recognise
our own process later: a pid in a stale pid file may have been reused by something else, so
on Linux a pid counts as ours only if ``/proc/<pid>/cwd`` is the service directory.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

# Children started by this Python process. Polling them reaps exited children, so a server
# that stopped is not mistaken for a live one while it lingers as a zombie.
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(command: Sequence[str], *, workdir: Path, output: Path, pid_file: Path) -> int:
    """Start ``command`` in the background, stdout and stderr appended to ``output``."""
    workdir.mkdir(parents=True, exist_ok=True)
    with output.open("ab") as out:
        proc = subprocess.Popen(
            list(command),
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children[proc.pid] = proc
    pid_file.write_text(f"{proc.pid}\n", encoding="ascii")
    logger.debug("started %s (pid %d)", command[0], proc.pid)
    return proc.pid


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text(encoding="ascii").strip())
    except (FileNotFoundError, ValueError):
        return None


def is_running(pid: int, workdir: Path | None = None) -> bool:
    """True if ``pid`` is alive (not a zombie) and, when we can tell, runs in ``workdir``."""
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: not ours
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs (macOS): the signal check is all we have
    try:
        if _proc_state(proc) == "Z":
            return False
        if workdir is not None:
            return Path(os.readlink(proc / "cwd")) == workdir.resolve()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except PermissionError:
        return False
    return True


def _proc_state(proc: Path) -> str:
    for line in (proc / "status").read_text(encoding="ascii", errors="replace").splitlines():
        if line.startswith("State:"):
            return line.split()[1]
    return "?"


def terminate(pids: Sequence[int], *, grace_seconds: float) -> list[int]:
    """SIGTERM each process group, wait up to ``grace_seconds``, then SIGKILL what is left.

    Returns the pids that had to be killed.
    """
    for pid in pids:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        time.sleep(0.1)
        remaining = [pid for pid in remaining if is_running(pid)]
    for pid in remaining:
        logger.warning("pid %d did not stop within %.0f s: SIGKILL", pid, grace_seconds)
        _signal_group(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(is_running(pid) for pid in remaining) and time.monotonic() < deadline:
        time.sleep(0.05)
    return remaining


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the process group the server leads (it was started in its own session)."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, or '' if it does not exist."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except FileNotFoundError:
        return ""
    return "\n".join(data.decode("utf-8", errors="replace").splitlines()[-lines:])
