"""The status page: one self-contained HTML document (``status_page.html``, no CDN, no
external asset).

The server embeds the current status and history as JSON, so the first paint needs no
request, and the unit tables of ``core.units``, so the page formats durations with the same
rule as the CLI; the page then refreshes itself from ``/api/status`` and ``/api/history``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from consistency.core import units

_PAGE = (resources.files("consistency") / "status_page.html").read_text(encoding="utf-8")


def _embed(value: Any) -> str:
    # JSON inside <script>: "</" must not close the element.
    return json.dumps(value, default=str).replace("</", "<\\/")


def render(status: dict[str, Any], history: list[dict[str, Any]]) -> str:
    project = str(status.get("project") or "")
    safe_project = "".join(c for c in project if c.isalnum() or c in "-_.")
    return (
        _PAGE.replace("__PROJECT__", safe_project)
        .replace("__STATUS__", _embed(status))
        .replace("__HISTORY__", _embed(history))
        .replace("__UNITS__", _embed(units.tables()))
    )
