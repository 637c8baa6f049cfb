"""Registry and model versions live in each region's bucket, read at most every
``VERSIONS_MAX_AGE`` seconds; their skew against the reference is recomputed every round
on the checker's clock, so it keeps growing between reads."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from consistency.core.report import RegionReport
from consistency.core.versions import LiveVersions, compare
from consistency.errors import SourceUnavailable
from consistency.ports import LiveVersionSource

VERSIONS_MAX_AGE = 30.0


class VersionMeter:
    def __init__(
        self,
        source: LiveVersionSource,
        regions: Sequence[str],
        reference: str,
        *,
        clock: Callable[[], int],
        monotonic: Callable[[], float],
    ) -> None:
        self.source = source
        self._regions = list(regions)
        self._reference = reference
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._live: tuple[float, dict[str, LiveVersions], dict[str, str]] = (-math.inf, {}, {})

    def add_to(self, reports: Mapping[str, RegionReport]) -> None:
        """Each region's live versions against the reference's. An unreadable bucket is an
        error of its region (the reference's leaves every skew unknown)."""
        live, failures = self._read()
        now_s = self._clock() / 1e9
        reference = live.get(self._reference)
        for region, report in reports.items():
            if region in failures:
                report.errors.append(failures[region])
            elif region in live:
                report.versions = compare(reference, live[region], now_s)

    def _read(self) -> tuple[dict[str, LiveVersions], dict[str, str]]:
        with self._lock:
            loaded_at, live, failures = self._live
            if self._monotonic() - loaded_at < VERSIONS_MAX_AGE:
                return live, failures
            with ThreadPoolExecutor(len(self._regions), thread_name_prefix="versions") as pool:
                futures = {r: pool.submit(self.source.live, r) for r in self._regions}
            live, failures = {}, {}
            for region, future in futures.items():
                try:
                    live[region] = future.result()
                except SourceUnavailable as exc:
                    failures[region] = str(exc)
            self._live = (self._monotonic(), live, failures)
            return live, failures
