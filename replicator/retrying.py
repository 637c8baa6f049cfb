"""How the worker retries a call: by the error's class, never its message.

A ``TransientError`` (Redis or Kafka unreachable, Redis busy, loading, out of memory...) is
retried with backoff for as long as it lasts. Any other error of ours passes through at once:
a ``PermanentError`` (its record goes to the dead-letter topic) or one that stops the command
(``Incomplete``, ``ConfigError``), which no retry or dead letter can fix. An error of no
known kind is retried too, and when the same one comes back ``max_attempts`` times in a row
it becomes ``RepeatedFailure`` (permanent). docs/replication.md, "Errors".
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from replicator.errors import RepeatedFailure, ReplicatorError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")

FIRST_DELAY_SECONDS = 0.1


class Stopped(Exception):
    """The worker was asked to stop while waiting to retry; nothing was committed."""


class Retrier:
    """Calls ``action()`` until it succeeds, fails for good, or ``stop`` is set.

    ``max_attempts``: how often the same unexpected error may come back in a row;
    ``max_backoff_seconds``: the longest wait between attempts (the first is 0.1 s, doubling).
    """

    def __init__(
        self, stop: threading.Event, *, max_attempts: int, max_backoff_seconds: float
    ) -> None:
        self._stop = stop
        self.max_attempts = max_attempts
        self.max_backoff_seconds = max_backoff_seconds

    def __call__(self, action: Callable[[], T]) -> T:
        """``action()``'s result. Raises ``RepeatedFailure`` after ``max_attempts`` of the same
        unexpected error, any ``ReplicatorError`` but ``TransientError`` at once, and
        ``Stopped`` when stopped while waiting."""
        delay = FIRST_DELAY_SECONDS
        last: tuple[type[Exception], str] | None = None
        repeats = 0
        while True:
            try:
                return action()
            except TransientError as exc:
                last, repeats = None, 0
                log.warning("%s; retrying in %.1fs", exc, delay, extra={"event": "transient_error"})
            except (ReplicatorError, Stopped):
                raise
            except Exception as exc:  # of no known kind: bounded, then permanent
                same = (type(exc), str(exc))
                repeats = repeats + 1 if same == last else 1
                last = same
                if repeats >= self.max_attempts:
                    raise RepeatedFailure(
                        f"{type(exc).__name__}: {exc} ({repeats} attempts in a row)"
                    ) from exc
                log.warning(
                    "unexpected %s: %s; attempt %d of %d",
                    type(exc).__name__,
                    exc,
                    repeats,
                    self.max_attempts,
                    exc_info=True,
                    extra={"event": "unexpected_error"},
                )
            if self._stop.wait(delay):
                raise Stopped
            delay = min(delay * 2, self.max_backoff_seconds)
