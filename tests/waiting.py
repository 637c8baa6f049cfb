"""``wait_until``: the one way tests wait, for exactly the condition they then assert.

Used by unit and integration tests alike (``tests/`` is on ``sys.path`` through the root
``conftest.py``). No test sleeps a fixed time: it polls a condition, and a timeout says what
it waited for and what it last saw, so a failure on a busy machine is readable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

MAX_SHOWN = 600
"""Characters of the last observation printed on a timeout."""


def wait_until(
    condition: Callable[[], T],
    timeout: float,
    describe: str,
    *,
    observe: Callable[[], Any] | None = None,
    interval: float = 0.1,
) -> T:
    """Poll ``condition()`` every ``interval`` seconds until it returns a truthy value.

    Returns that value. After ``timeout`` seconds raises ``AssertionError`` naming
    ``describe`` and what was last seen: ``observe()`` if given (call it for a readable
    state when the condition is a bare bool), else the condition's last return value.
    Exceptions from ``condition`` propagate: a condition that cannot be evaluated is a failure.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            seen = observe() if observe is not None else result
            shown = repr(seen)
            if len(shown) > MAX_SHOWN:
                shown = shown[:MAX_SHOWN] + f"... ({len(shown)} chars)"
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {describe}; last saw: {shown}"
            )
        time.sleep(interval)
