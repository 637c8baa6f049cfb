"""Kafka topic names of feature views: the one mapping, both ways. Pure: no I/O.

A view's rows go to ``<topic_prefix>.<project>.<view>``. Feast accepts view names Kafka does
not (non-ASCII, spaces, ``/``...), so the view part is escaped: ``A-Z a-z 0-9 _`` stay as they
are, every other character becomes ``-`` followed by the two lowercase hex digits of each of
its UTF-8 bytes (``é`` -> ``-c3-a9``, ``.`` -> ``-2e``, ``-`` -> ``-2d``). The view part thus
holds no ``.``, so no two views' topics differ only by ``.`` against ``_`` (which Kafka
refuses as colliding), and the mapping is one-to-one: the checker and staleness readers get
the view back from a topic name. A view whose topic would exceed Kafka's 249 characters is
refused when the primary first uses it (``feast apply``), naming the view.
See docs/wire-format.md, "Topics".
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from replicator.errors import ConfigError

MAX_TOPIC_CHARS = 249
"""Kafka's limit on a topic name's length."""
_KEPT = re.compile(r"[A-Za-z0-9_]")
_HEX_PAIR = re.compile(r"[0-9a-f]{2}")


def topic_head(topic_prefix: str, project: str) -> str:
    """What every view topic of the project starts with: ``<prefix>.<project>.``."""
    return f"{topic_prefix}.{project}."


def escape_view(view: str) -> str:
    """The view part of a topic name (see the module docstring)."""
    return "".join(
        ch if _KEPT.fullmatch(ch) else "".join(f"-{b:02x}" for b in ch.encode("utf-8"))
        for ch in view
    )


def unescape_view(part: str) -> str | None:
    """The view a topic's view part names; None when it is not an escaped view name."""
    out = bytearray()
    i = 0
    while i < len(part):
        if part[i] == "-":
            pair = part[i + 1 : i + 3]
            if not _HEX_PAIR.fullmatch(pair):
                return None
            out.append(int(pair, 16))
            i += 3
        elif _KEPT.fullmatch(part[i]):
            out += part[i].encode()
            i += 1
        else:
            return None
    try:
        view = out.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return view if escape_view(view) == part else None  # one spelling per view


def topic_name(topic_prefix: str, project: str, view: str) -> str:
    """The topic of a feature view (its Redis name). Raises ``ConfigError`` naming the view
    when the name would exceed ``MAX_TOPIC_CHARS``."""
    topic = topic_head(topic_prefix, project) + escape_view(view)
    if len(topic) > MAX_TOPIC_CHARS:
        raise ConfigError(
            f"feature view {view!r}: its Kafka topic name would be {len(topic)} characters, "
            f"over Kafka's {MAX_TOPIC_CHARS}; use a shorter name (docs/wire-format.md, Topics)"
        )
    return topic


def view_of_topic(topic: str, topic_prefix: str, project: str) -> str | None:
    """The view whose rows a topic carries; None for another project's (or no view's) topic."""
    head = topic_head(topic_prefix, project)
    if not topic.startswith(head) or len(topic) == len(head):
        return None
    return unescape_view(topic[len(head) :])


def subscription_pattern(topic_prefix: str, project: str, feature_views: Iterable[str]) -> str:
    """A librdkafka regex subscription to the views' topics (``*``: every view of the
    project); new views' topics are picked up as they appear."""
    base = re.escape(topic_head(topic_prefix, project))
    views = list(feature_views)
    if "*" in views:
        return rf"^{base}[A-Za-z0-9_-]+$"
    return f"^{base}({'|'.join(re.escape(escape_view(v)) for v in views)})$"
