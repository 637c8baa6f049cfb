"""A worker's counters: what it applied, skipped and dead-lettered, and how late.

Published to the region's Redis (``_replicator:worker:<region>``), logged when the worker
stops, and exported to Prometheus (``replicator.adapters.prometheus``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class WorkerStats:
    rows_applied: int = 0
    rows_skipped_older: int = 0
    batches_applied: int = 0
    dead_letters: int = 0
    views_deleted: int = 0
    first_applied_ns: int = 0
    lag_ms: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    """Per batch: the primary's publish call (``pub_ns``, primary clock) -> the region's Redis
    acknowledged (worker clock). Two clocks: skew shifts it; docs/consistency.md has the
    skew-proof measure."""
    apply_ms: deque[float] = field(default_factory=lambda: deque(maxlen=20_000))
    """Per Redis round trip: how long the apply script took, network included."""
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    assigned_partitions: int = 0

    def summary(self) -> dict[str, float]:
        lags = sorted(self.lag_ms)
        return {
            "assigned_partitions": self.assigned_partitions,
            "rows_applied": self.rows_applied,
            "rows_skipped_older": self.rows_skipped_older,
            "batches_applied": self.batches_applied,
            "dead_letters": self.dead_letters,
            "lag_p50_ms": quantile(lags, 0.50),
            "lag_p99_ms": quantile(lags, 0.99),
            "apply_p99_ms": quantile(sorted(self.apply_ms), 0.99),
        }


def quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank ``q`` quantile (0..1) of an ascending list; 0.0 when it is empty."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
