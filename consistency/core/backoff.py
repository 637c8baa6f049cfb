"""Retry delays as a small pure object (exponential, capped, with optional jitter)."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    initial_seconds: float = 0.5
    factor: float = 2.0
    max_seconds: float = 30.0
    jitter: float = 0.1
    """Each delay is scaled by a random factor in [1 - jitter, 1 + jitter]."""

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Delay before retry number ``attempt`` (1 = the first retry)."""
        base = min(self.max_seconds, self.initial_seconds * self.factor ** max(0, attempt - 1))
        spread = 1.0 + self.jitter * (2.0 * rand() - 1.0)
        return max(0.0, min(self.max_seconds, base * spread))

    def delays(self, retries: int, rand: Callable[[], float] = random.random) -> Iterator[float]:
        for attempt in range(1, retries + 1):
            yield self.delay(attempt, rand)
