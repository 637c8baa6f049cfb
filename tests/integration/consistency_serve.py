"""``consistency serve`` as an operator runs it: a child process on a free port, its settings
file and its log in a test's directory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from harness import ROOT, free_port


class ConsistencyServe:
    """``consistency serve`` on ``topology_path`` with the ``consistency:`` settings given
    (the server's host and port are added, and ``tls`` as ``server.tls``: then ``base`` is
    ``https://``); ``stop()`` ends it and returns its exit status."""

    def __init__(
        self,
        topology_path: Path,
        workdir: Path,
        settings: dict[str, Any],
        *,
        tls: dict[str, str] | None = None,
    ) -> None:
        port = free_port()
        config = workdir / "consistency.yaml"
        server = {"server": {"host": "127.0.0.1", "port": port, **({"tls": tls} if tls else {})}}
        config.write_text(yaml.safe_dump({"consistency": {**server, **settings}}))
        self.log = workdir / "serve.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "consistency.cli"),
                    *("--config", str(config), "--topology", str(topology_path)),
                    *("--log-format", "json", "serve"),
                ],
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )
        self.base = f"{'https' if tls else 'http'}://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET path``; (0, b"") when the server does not answer."""
        try:
            with urllib.request.urlopen(self.base + path, timeout=5) as response:
                return response.status, response.read()
        except OSError:
            return 0, b""

    def regions(self) -> dict[str, Any]:
        """``/api/status``'s regions ({} until the first round, or when it does not answer)."""
        status, body = self.get("/api/status")
        return dict(json.loads(body).get("regions") or {}) if status == 200 else {}

    def serving(self) -> bool:
        """Still running (a crash in native code shows as exit status -11)."""
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.serving():
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)
