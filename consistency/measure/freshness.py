"""The newest event time seen per region and view (by divergence checks), and freshness."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from consistency.core.report import RegionReport


class NewestEvents:
    """Thread-safe: divergence jobs note, the staleness job and reports read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._newest: dict[tuple[str, str], int] = {}

    def note(self, region: str, view: str, newest_s: int | None) -> None:
        if newest_s is None:
            return
        with self._lock:
            key = (region, view)
            self._newest[key] = max(newest_s, self._newest.get(key, newest_s))

    def add_to(self, reports: Mapping[str, RegionReport], now_s: float) -> None:
        """Set ``newest_event_s`` and ``freshness_seconds`` (now - newest, checker's clock,
        never negative) of every view with a newest event seen."""
        with self._lock:
            newest = dict(self._newest)
        for region, report in reports.items():
            for view, vr in report.feature_views.items():
                seen = newest.get((region, view))
                if seen is not None:
                    vr.newest_event_s = seen
                    vr.freshness_seconds = max(0.0, now_s - seen)
