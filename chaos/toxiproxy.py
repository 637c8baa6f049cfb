"""A thin adapter over Toxiproxy's HTTP API (https://github.com/Shopify/toxiproxy#http-api).

``Toxiproxy`` runs (or finds) the server and creates proxies; ``Link`` is what the suite talks
about: one named network path (``kafka:eu-west-1``) made of one proxy per upstream address
(one per broker for Kafka). Tests name the link, never the port.

Faults map to toxics on every proxy of the link, on one or both directions:
- ``latency``: ``latency`` ms plus up to ``jitter`` ms, per direction (half the RTT each way);
- ``bandwidth``: ``rate`` KB/s;
- ``cut``: the ``timeout`` toxic with ``timeout: 0`` drops every byte and keeps the
  connection open until removed: a black hole, not a refused connection (no RST);
- ``disable``: the proxy closes its connections and refuses new ones (a crashed host).

Errors from the server or the socket become ``ToxiproxyError``.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

Stream = Literal["upstream", "downstream"]
BOTH: tuple[Stream, ...] = ("upstream", "downstream")


class ToxiproxyError(Exception):
    """The Toxiproxy server refused a request or could not be reached."""


@dataclass(frozen=True)
class Proxy:
    name: str
    listen: int
    upstream: int


class Toxiproxy:
    """Client of one Toxiproxy server on 127.0.0.1:``api_port``."""

    def __init__(self, api_port: int, *, timeout: float = 5.0) -> None:
        self.api_port = api_port
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None

    # server ------------------------------------------------------------------------------
    def start(self, binary: str | Path, log_file: Path) -> None:
        """Start the server unless one answers already; wait until it does."""
        if self.alive():
            return
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            self._process = subprocess.Popen(
                [str(binary), "-host", "127.0.0.1", "-port", str(self.api_port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while not self.alive():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise ToxiproxyError(f"toxiproxy did not start; see {log_file}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server this object started (not one it found running)."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._process = None

    def alive(self) -> bool:
        try:
            self._request("GET", "/version")
        except ToxiproxyError:
            return False
        return True

    # proxies -----------------------------------------------------------------------------
    def ensure_proxy(self, proxy: Proxy) -> None:
        """Create the proxy, or put it back enabled and without toxics."""
        existing = self._request("GET", "/proxies")
        if proxy.name in existing:
            self._request("DELETE", f"/proxies/{proxy.name}")
        self._request(
            "POST",
            "/proxies",
            {
                "name": proxy.name,
                "listen": f"127.0.0.1:{proxy.listen}",
                "upstream": f"127.0.0.1:{proxy.upstream}",
                "enabled": True,
            },
        )

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._request("POST", "/reset")

    def add_toxic(
        self, proxy: str, name: str, kind: str, stream: Stream, attributes: dict[str, Any]
    ) -> None:
        self._request(
            "POST",
            f"/proxies/{proxy}/toxics",
            {
                "name": name,
                "type": kind,
                "stream": stream,
                "toxicity": 1.0,
                "attributes": attributes,
            },
        )

    def remove_toxic(self, proxy: str, name: str) -> None:
        try:
            self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")
        except ToxiproxyError as exc:
            if "404" not in str(exc):
                raise

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        self._request("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200]
            raise ToxiproxyError(f"{method} {path}: HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise ToxiproxyError(f"{method} {path}: {exc}") from exc
        try:
            return json.loads(text) if text.strip() else None
        except ValueError:
            return text.decode(errors="replace")  # /version answers plain text


class Link:
    """A named network path: the same toxics on each of its proxies."""

    def __init__(self, client: Toxiproxy, name: str, proxies: Sequence[Proxy]) -> None:
        self.client = client
        self.name = name
        self.proxies = list(proxies)

    def create(self) -> None:
        for proxy in self.proxies:
            self.client.ensure_proxy(proxy)

    def latency(
        self, tag: str, one_way_ms: float, jitter_ms: float, streams: Iterable[Stream] = BOTH
    ) -> None:
        """Delay every chunk by ``one_way_ms`` (+- ``jitter_ms``) in each given direction."""
        attrs = {"latency": int(one_way_ms), "jitter": int(jitter_ms)}
        self._add(tag, "latency", streams, attrs)

    def bandwidth(self, tag: str, kb_per_s: int, streams: Iterable[Stream] = BOTH) -> None:
        self._add(tag, "bandwidth", streams, {"rate": int(kb_per_s)})

    def cut(self, tag: str, streams: Iterable[Stream] = BOTH) -> None:
        """Drop every byte (no RST) in the given directions until ``remove(tag)``."""
        self._add(tag, "timeout", streams, {"timeout": 0})

    def remove(self, tag: str) -> None:
        for proxy in self.proxies:
            for stream in BOTH:
                self.client.remove_toxic(proxy.name, f"{tag}-{stream}")

    def set_enabled(self, enabled: bool) -> None:
        for proxy in self.proxies:
            self.client.set_enabled(proxy.name, enabled)

    def _add(self, tag: str, kind: str, streams: Iterable[Stream], attrs: dict[str, Any]) -> None:
        for proxy in self.proxies:
            for stream in streams:
                self.client.add_toxic(proxy.name, f"{tag}-{stream}", kind, stream, attrs)


def find_server(candidates: Sequence[Path]) -> Path:
    """The toxiproxy server binary: ``toxiproxy-server`` on PATH or the first candidate
    that exists (``go install github.com/Shopify/toxiproxy/v2/cmd/server`` names it
    ``server``). Raises ``ToxiproxyError`` saying how to install it."""
    on_path = shutil.which("toxiproxy-server")
    if on_path:
        return Path(on_path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ToxiproxyError(
        "toxiproxy server not found: run `make setup` (it runs `go install "
        "github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0`) or put toxiproxy-server on PATH"
    )
