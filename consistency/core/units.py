"""Figures as a person reads them: durations and sizes in the unit that fits their size.

One rule for the CLI, the status page and the docs: the page receives ``DURATION_UNITS``
and ``SIZE_UNITS`` as JSON and applies the same table (``status_page.html``), so
``duration(83_604)`` is ``23.2 h`` everywhere, never ``1393.4min``.
"""

from __future__ import annotations

import math

DURATION_UNITS: tuple[tuple[float, float, str, int], ...] = (
    # (below this many seconds, divide by, unit, decimals)
    (1.0, 1e-3, "ms", 0),
    (120.0, 1.0, "s", 1),
    (7_200.0, 60.0, "min", 1),
    (172_800.0, 3_600.0, "h", 1),
    (math.inf, 86_400.0, "d", 1),
)
"""A value uses the first row whose limit it is below (by magnitude)."""

SIZE_UNITS: tuple[tuple[float, float, str, int], ...] = (
    (1024.0, 1.0, "B", 0),
    (1024.0**2, 1024.0, "KiB", 1),
    (1024.0**3, 1024.0**2, "MiB", 1),
    (1024.0**4, 1024.0**3, "GiB", 1),
    (math.inf, 1024.0**4, "TiB", 1),
)

NOT_MEASURED = "n/a"
UNMEASURABLE = "unmeasurable"


def _scaled(value: float, table: tuple[tuple[float, float, str, int], ...]) -> str:
    for limit, divisor, unit, decimals in table:
        if abs(value) < limit:
            return f"{value / divisor:.{decimals}f} {unit}"
    raise AssertionError("the last row's limit is infinite")


def duration(seconds: float | None) -> str:
    """``0.2`` -> ``200 ms``, ``4.5`` -> ``4.5 s``, ``1200`` -> ``20.0 min``, ``83604`` ->
    ``23.2 h``, ``259200`` -> ``3.0 d``; None -> ``n/a``; infinite -> ``unmeasurable``."""
    if seconds is None or math.isnan(seconds):
        return NOT_MEASURED
    if math.isinf(seconds):
        return UNMEASURABLE
    if seconds == 0:
        return "0 s"
    return _scaled(seconds, DURATION_UNITS)


def size(n_bytes: float | None) -> str:
    """``512`` -> ``512 B``, ``1536`` -> ``1.5 KiB``, ``12_000_000`` -> ``11.4 MiB``; None ->
    ``n/a``."""
    if n_bytes is None or math.isnan(n_bytes):
        return NOT_MEASURED
    return _scaled(n_bytes, SIZE_UNITS)


def usd(amount: float | None) -> str:
    """``1234.5`` -> ``$1,234.50``, ``0.0123`` -> ``$0.0123`` (4 decimals below a dollar, so a
    small cost does not read as zero); None -> ``n/a``. The status page applies the same rule."""
    if amount is None or math.isnan(amount):
        return NOT_MEASURED
    return f"${amount:,.4f}" if abs(amount) < 1 else f"${amount:,.2f}"


def tables() -> dict[str, list[list[float | str | int | None]]]:
    """The unit tables as JSON for the status page (infinity as null)."""
    return {
        name: [[None if math.isinf(row[0]) else row[0], *row[1:]] for row in table]
        for name, table in (("duration", DURATION_UNITS), ("size", SIZE_UNITS))
    }
