"""Alerts to an HTTP webhook: JSON POST, retried with backoff, off the check path.

``send`` only puts the alert on a bounded queue (dropping the oldest when full, with a log
line) and returns at once; one background thread delivers in order. A 2xx ends an alert's
delivery; 408, 429, 5xx and network errors are retried after ``Backoff`` delays; any other
4xx is permanent (the receiver refuses it: retrying cannot help).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from consistency.core.backoff import Backoff

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 425, 429}


class WebhookSender:
    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 5.0,
        max_attempts: int = 8,
        backoff: Backoff | None = None,
        queue_size: int = 1000,
        post: Callable[[str, bytes, float], int] | None = None,
    ) -> None:
        self.url = url
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._backoff = backoff or Backoff()
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._post = post or _post
        self._stop = threading.Event()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="webhook", daemon=True)
        self._thread.start()

    def send(self, alert: Mapping[str, Any]) -> None:
        item = dict(alert)
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                try:
                    lost = self._queue.get_nowait()
                    self.dropped += 1
                    log.error(
                        "webhook queue full: dropped the oldest alert",
                        extra={"event": "webhook_dropped", "alert": lost},
                    )
                except queue.Empty:
                    pass

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        self._stop.set()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            self._deliver(item)

    def _deliver(self, alert: dict[str, Any]) -> None:
        body = json.dumps(alert, default=str).encode()
        for attempt in range(1, self._max_attempts + 1):
            try:
                status = self._post(self.url, body, self._timeout)
            except OSError as exc:  # URLError, timeouts, connection refused
                status, reason = 0, str(exc)
            else:
                reason = f"HTTP {status}"
            if 200 <= status < 300:
                self.delivered += 1
                return
            retryable = status == 0 or status >= 500 or status in RETRYABLE_STATUS
            if not retryable or attempt == self._max_attempts:
                self.failed += 1
                log.error(
                    "webhook gave up on an alert after %d attempt(s): %s",
                    attempt,
                    reason,
                    extra={"event": "webhook_failed", "alert_id": alert.get("id")},
                )
                return
            delay = self._backoff.delay(attempt)
            log.warning(
                "webhook attempt %d failed (%s); retrying in %.1fs",
                attempt,
                reason,
                delay,
                extra={"event": "webhook_retry", "alert_id": alert.get("id")},
            )
            if self._stop.wait(delay):
                return


def _post(url: str, body: bytes, timeout: float) -> int:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
