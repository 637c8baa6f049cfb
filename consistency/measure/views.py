"""The feature views' Redis layouts, read from the manifest at most every ``max_age`` s."""

from __future__ import annotations

import math
from collections.abc import Callable

from consistency.ports import Manifest, ViewLayout


class ViewCache:
    def __init__(self, manifest: Manifest, monotonic: Callable[[], float]) -> None:
        self.manifest = manifest
        self._monotonic = monotonic
        self._loaded: tuple[float, dict[str, ViewLayout]] = (-math.inf, {})

    def get(self, *, max_age: float = 60.0) -> dict[str, ViewLayout]:
        """View name -> layout. Raises what ``Manifest.views`` raises (``NoManifest``,
        ``SourceUnavailable``) when a reload is due and fails."""
        loaded_at, views = self._loaded
        if self._monotonic() - loaded_at > max_age:
            views = self.manifest.views()
            self._loaded = (self._monotonic(), views)
        return views
