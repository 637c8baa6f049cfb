"""Checkers: judge a run afterwards from its history and the final state of the regions.

Pure functions (no I/O): the runner reads Redis and Kafka, these decide. Every invariant
gives a ``Cell``: ``ok`` True (holds), False (FAIL, with the figures), None (not applicable
or information only).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from chaos.history import History

Final = Mapping[str, Mapping[int, int | None]]
"""region -> entity -> counter value read back (None: key or field missing)."""

INVARIANTS = (
    "no lost writes",
    "identical",
    "converge",
    "flagged",
    "recovered",
    "no false alarm",
    "dead letters",
)


@dataclass(frozen=True)
class Cell:
    ok: bool | None
    figure: str


def lost_writes(history: History, final: Final) -> Cell:
    """Every acknowledged write (or a later one of the same entity) is in every region."""
    acked: dict[int, int] = {}
    attempted: dict[int, int] = {}
    for op in history.ops:
        for entity, value in zip(op.entities, op.values, strict=True):
            attempted[entity] = max(attempted.get(entity, 0), value)
            if op.outcome == "ok":
                acked[entity] = max(acked.get(entity, 0), value)
    n_acked = sum(1 for op in history.ops if op.outcome == "ok")
    n_failed = sum(1 for op in history.ops if op.outcome == "fail")
    problems = []
    for region, values in final.items():
        lost = [e for e, v in acked.items() if (values.get(e) or 0) < v]
        phantom = [e for e, v in values.items() if v is not None and v > attempted.get(e, 0)]
        if lost:
            problems.append(f"{region}: {len(lost)} entities behind their last ack")
        if phantom:
            problems.append(f"{region}: {len(phantom)} values never written")
    figure = f"0 lost of {n_acked} acked calls ({n_failed} failed)"
    return Cell(not problems, "; ".join(problems) or figure)


def identical(diffs: Mapping[str, tuple[int, int, int]], keys: int) -> Cell:
    """``diffs``: region -> (missing, extra, different) Feast keys against the primary."""
    bad = {r: d for r, d in diffs.items() if any(d)}
    if not bad:
        return Cell(True, f"{len(diffs)} regions = primary ({keys} keys)")
    parts = [f"{r}: {m} missing, {x} extra, {d} differ" for r, (m, x, d) in bad.items()]
    return Cell(False, "; ".join(parts) + f" (of {keys})")


def converge(seconds: float | None, limit: float) -> Cell:
    if seconds is None:
        return Cell(False, f"not converged after {limit:.0f} s")
    return Cell(True, f"{seconds:.1f} s")


def first_status(
    history: History, region: str, status: str, after: float, until: float | None = None
) -> float | None:
    for sample in history.samples:
        if sample.at < after or (until is not None and sample.at > until):
            continue
        if sample.regions is not None and sample.regions.get(region) == status:
            return sample.at
    return None


def flagged(
    history: History, regions: list[str], deadlines: Mapping[str, float], start: float | None
) -> Cell:
    """Each region in ``regions`` went VIOLATED within its deadline after ``start``."""
    if not regions:
        return Cell(None, "n/a")
    if start is None:
        return Cell(False, "fault never started")
    parts, ok = [], True
    for region in regions:
        at = first_status(history, region, "violated", start)
        if at is None:
            ok = False
            parts.append(f"{region}: never (bound {deadlines[region]:.0f} s)")
            continue
        delay = at - start
        ok = ok and delay <= deadlines[region]
        parts.append(f"{region}: {delay:.1f} s (<= {deadlines[region]:.0f} s)")
    return Cell(ok, "; ".join(parts))


def recovered(
    history: History, regions: list[str], end: float | None, limit: float, flagged: list[str]
) -> Cell:
    """After the fault ended (and after the flags it raised), every region reads ``ok``
    again in one sample."""
    if end is None:
        return Cell(False, "fault never ended")
    after = end
    for region in flagged:
        at = first_status(history, region, "violated", history.first("fault-start") or 0.0)
        after = max(after, at or 0.0)
    for sample in history.samples:
        if sample.at < after or sample.regions is None:
            continue
        if all(sample.regions.get(r) == "ok" for r in regions):
            return Cell(True, f"{sample.at - end:.1f} s after heal")
    return Cell(False, f"not all ok within {limit:.0f} s after heal: {_last_statuses(history)}")


def false_alarms(history: History, expected: list[str], ready: float, *, control: bool) -> Cell:
    """Regions flagged that the fault should not have touched (a FAIL in the control run)."""
    flagged_regions = sorted(
        {
            region
            for s in history.samples
            if s.at >= ready and s.regions
            for region, status in s.regions.items()
            if status == "violated" and region not in expected
        }
    )
    if not flagged_regions:
        return Cell(True, "none")
    text = "flagged " + ", ".join(flagged_regions)
    return Cell(False if control else None, text)


def dead_letters(count: int, hostile: bool) -> Cell:
    if hostile:
        return Cell(count > 0, f"{count} (bad input injected)")
    return Cell(count == 0, str(count))


def _last_statuses(history: History) -> str:
    for sample in reversed(history.samples):
        if sample.regions is not None:
            return ", ".join(f"{r} {s}" for r, s in sorted(sample.regions.items()))
    return "checker never answered"
