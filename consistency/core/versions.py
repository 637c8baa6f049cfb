"""Registry and model versions live in each region, and how long a region has differed from
the reference region.

An artifact is the project's Feast registry or one model. A region's *skew* for it is 0
while it serves the reference's version. Otherwise it is how long the two have differed at
least: now minus the later of the two release times (a side without the artifact adds no
time), never negative. A region left behind therefore counts from the moment the reference
moved on, while a canary that just got a version the reference does not have yet starts at
0, so a rollout's own canary wait is not reported as long-standing skew.

Release times come from the releaser's clock (``released_at`` in the bucket), "now" from the
checker's: a few seconds of clock offset do not matter against bounds of minutes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

REGISTRY = "registry"
MODEL_PREFIX = "model:"


@dataclass(frozen=True, slots=True)
class LiveVersion:
    version: str
    released_at: datetime | None
    """When the version went live in the region (timezone-aware); None if not recorded."""


@dataclass(frozen=True)
class LiveVersions:
    """What one region's bucket says is live: the registry and every released model."""

    registry: LiveVersion | None = None
    models: Mapping[str, LiveVersion] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ArtifactSkew:
    version: str | None
    """Live in the region (None: none is)."""
    released_at: datetime | None
    reference_version: str | None
    reference_released_at: datetime | None
    skew_seconds: float | None
    """0 on the reference's version; None when it cannot be told (no reference reading, or a
    release time missing)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "reference_version": self.reference_version,
            "released_at": _iso(self.released_at),
            "reference_released_at": _iso(self.reference_released_at),
            "skew_seconds": None if self.skew_seconds is None else round(self.skew_seconds, 3),
        }


@dataclass(frozen=True)
class VersionsReport:
    registry: ArtifactSkew
    models: dict[str, ArtifactSkew]

    def artifacts(self) -> Iterator[tuple[str, ArtifactSkew]]:
        """("registry", ...) then ("model:<name>", ...) by name: the names bounds and alerts use
        in place of a feature view."""
        yield REGISTRY, self.registry
        for name, skew in sorted(self.models.items()):
            yield MODEL_PREFIX + name, skew

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": self.registry.to_dict(),
            "models": {name: s.to_dict() for name, s in sorted(self.models.items())},
        }


def skew(
    reference: LiveVersion | None, region: LiveVersion | None, now_s: float, *, known: bool = True
) -> ArtifactSkew:
    """One artifact; ``known=False`` when the reference could not be read."""
    version = region.version if region else None
    released = region.released_at if region else None
    ref_version = reference.version if reference else None
    ref_released = reference.released_at if reference else None
    seconds: float | None
    if not known:
        seconds = None
    elif version == ref_version:
        seconds = 0.0
    else:
        since = [v.released_at for v in (reference, region) if v is not None]
        if not since or any(t is None for t in since):
            seconds = None
        else:
            latest = max(t.timestamp() for t in since if t is not None)
            seconds = max(0.0, now_s - latest)
    return ArtifactSkew(version, released, ref_version, ref_released, seconds)


def compare(reference: LiveVersions | None, region: LiveVersions, now_s: float) -> VersionsReport:
    """Every artifact live in the region or at the reference; ``reference`` None when it could
    not be read (versions reported, skew unknown)."""
    known = reference is not None
    ref = reference or LiveVersions()
    names = sorted(set(ref.models) | set(region.models))
    return VersionsReport(
        registry=skew(ref.registry, region.registry, now_s, known=known),
        models={
            name: skew(ref.models.get(name), region.models.get(name), now_s, known=known)
            for name in names
        },
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
