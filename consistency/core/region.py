"""One region's staleness and lag report, assembled from the round's readings (no I/O)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from consistency.core.lag import TopicPartition
from consistency.core.report import PartitionReport, RegionReport, ViewReport
from consistency.core.stall import added_staleness
from replicator.core.staleness import AppliedHeartbeat, Emission, partition_staleness, worst


@dataclass(frozen=True)
class RegionReadings:
    """What was read for one region in one staleness round."""

    views: Mapping[str, tuple[str, int]]
    """View -> (topic, partitions) the region subscribes to."""
    applied: Mapping[TopicPartition, AppliedHeartbeat] | None
    """Newest applied heartbeat per partition; None when the region could not be read."""
    lag: Mapping[TopicPartition, int] = field(default_factory=dict)
    """Records not consumed yet (absent where Kafka did not answer)."""
    lag_seconds: Mapping[TopicPartition, float] = field(default_factory=dict)


def region_report(
    emission: Emission | None, round_age_seconds: float, readings: RegionReadings
) -> RegionReport:
    """Per-partition, per-view and region staleness and lag.

    Staleness is ``math.inf`` ("unmeasurable") for every view when there is no emission or
    the region's heartbeats could not be read; a view's figure is its worst partition's, a
    region's its worst view's. ``round_age_seconds`` (since the newest round was made) is
    added as ``consistency.core.stall.added_staleness`` says: to every partition behind that
    round, and to every partition once the emitter stalls.
    """
    report = RegionReport()
    unmeasurable = emission is None or readings.applied is None
    applied = readings.applied or {}
    for view, (topic, partitions) in sorted(readings.views.items()):
        vr = ViewReport()
        for p in range(partitions):
            pos = (topic, p)
            pr = PartitionReport(
                lag_offsets=readings.lag.get(pos), lag_seconds=readings.lag_seconds.get(pos)
            )
            if not unmeasurable and emission is not None:
                behind = partition_staleness(emission, topic, applied.get(pos))
                pr.staleness_seconds = behind + added_staleness(
                    behind, round_age_seconds, emission.interval_seconds
                )
            vr.partitions[p] = pr
        vr.staleness_seconds = (
            math.inf if unmeasurable else worst(r.staleness_seconds for r in vr.partitions.values())
        )
        vr.lag_offsets = sum(r.lag_offsets or 0 for r in vr.partitions.values())
        vr.lag_seconds = worst(r.lag_seconds for r in vr.partitions.values())
        report.feature_views[view] = vr
    report.staleness_seconds = worst(v.staleness_seconds for v in report.feature_views.values())
    report.lag_offsets = sum(readings.lag.values()) if readings.lag else None
    report.lag_seconds = worst(readings.lag_seconds.values())
    return report
