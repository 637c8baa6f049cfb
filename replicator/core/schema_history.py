"""Which schema versions of each feature view a region admits: the recent ones, not only the live.

After ``feast apply`` changes a view, a process whose Feast registry cache still holds the
previous schema keeps writing rows stamped with the previous fingerprint (Feast refreshes
that cache every ``cache_ttl_seconds``, 600 by default; never with 0), and Feast's own
store accepts them. So a region admits rows of any of a view's last ``RECENT_SCHEMA_VERSIONS``
schema versions released to it, not only of the live one: the manifest lists them per view
(``MANIFEST_FIELD``), newest first, carried from the region's previous manifest on every
release. Only a fingerprint never released to the region (or pushed out of that bound)
waits for its schema (``schema_wait_seconds``).

The rows carry their own field keys (``wire``), so admitting an older schema needs its
fingerprint only. A view removed from the registry leaves the list with its schemas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RECENT_SCHEMA_VERSIONS = 5
"""Schema versions of a view a region admits: the live one and the four before it."""

MANIFEST_FIELD = "recent_schemas"
"""The manifest's ``{view: [fingerprint, ...]}``, newest (the live one) first."""

LIVE_FIELD = "feature_views"
"""The manifest's ``{view: fingerprint}`` of the live registry version."""


def carried(live: Mapping[str, str], previous: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``MANIFEST_FIELD`` of a release: for each view of ``live`` (``{view: fingerprint}`` of
    the released registry), its fingerprint, then those the region's ``previous`` manifest
    admitted for it (none when None or unreadable), without repeats, at most
    ``RECENT_SCHEMA_VERSIONS``."""
    try:
        before = admitted(previous or {})
    except (TypeError, AttributeError, ValueError):  # unreadable: this release replaces it
        before = {}
    recent: dict[str, list[str]] = {}
    for view, fingerprint in live.items():
        versions = [fingerprint]
        versions += [f for f in before.get(view, ()) if f not in versions]
        recent[view] = versions[:RECENT_SCHEMA_VERSIONS]
    return recent


def admitted(manifest: Mapping[str, Any]) -> dict[str, list[str]]:
    """``{view: [fingerprint, ...]}`` a region admits under ``manifest``, newest first: its
    ``MANIFEST_FIELD``, else (a manifest written before it) the live fingerprint alone.
    Raises ``TypeError``/``AttributeError``/``ValueError`` for a manifest of the wrong shape."""
    recent = manifest.get(MANIFEST_FIELD)
    if recent is None:
        return {view: [str(f)] for view, f in dict(manifest.get(LIVE_FIELD) or {}).items()}
    out: dict[str, list[str]] = {}
    for view, fingerprints in dict(recent).items():
        if isinstance(fingerprints, str) or not isinstance(fingerprints, list):
            raise ValueError(f"{MANIFEST_FIELD}.{view} is not a list of fingerprints")
        out[str(view)] = [str(f) for f in fingerprints]
    return out
