"""Each region's fetched bytes and their monthly cost (``consistency.core.cost``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from consistency.config import EgressSettings
from consistency.core.cost import EgressReport, add_subscription_savings, region_egress
from consistency.core.report import RegionReport
from consistency.core.scope import Scope
from consistency.errors import SourceUnavailable
from consistency.ports import RegionData


class EgressMeter:
    """Reads a region's counters (in that region's thread) and prices them."""

    def __init__(
        self,
        scope: Scope,
        settings: EgressSettings,
        regions: Mapping[str, RegionData],
        clock: Callable[[], int],
    ) -> None:
        self._scope = scope
        self._settings = settings
        self._regions = regions
        self._clock = clock

    @property
    def source_region(self) -> str:
        return self._settings.source_region or self._scope.primary_region

    def read(self, region: str, errors: list[str]) -> EgressReport | None:
        """The region's report; None when its workers counted nothing yet (an older worker,
        or none started). An unreadable Redis adds to ``errors``."""
        try:
            counts = self._regions[region].egress(self._scope.groups[region])
        except SourceUnavailable as exc:
            errors.append(str(exc))
            return None
        if counts is None:
            return None
        source = self.source_region
        return region_egress(
            counts,
            self._clock(),
            source_region=source,
            usd_per_gb=self._settings.price(source, region),
            view_of=self._scope.view_of,
        )

    def add_savings(self, reports: Mapping[str, RegionReport], views: Iterable[str]) -> None:
        """What per-region subscription saves each region, from every region's rates."""
        egress = {r: rep.egress for r, rep in reports.items() if rep.egress is not None}
        add_subscription_savings(egress, views, self._scope.subscribes)
