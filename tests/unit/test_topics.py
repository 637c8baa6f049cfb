"""Topic names of feature views: legal for Kafka, one-to-one, the same everywhere."""

from __future__ import annotations

import re

import pytest

from replicator.core.topics import (
    MAX_TOPIC_CHARS,
    subscription_pattern,
    topic_name,
    view_of_topic,
)
from replicator.errors import ConfigError

LEGAL = re.compile(r"[A-Za-z0-9._-]+")
NAMES = [
    "card_spending_stats",
    "merchant_risk_v2",
    "Händler-Risiko",
    "商户风险",
    "a.b",
    "a_2eb",
    "a-2eb",
    "with space/and slash",
    "emoji 🚀",
    "-",
    "_",
]


def kafka_collision_form(topic: str) -> str:
    return topic.replace(".", "_")


def test_every_view_name_maps_to_a_legal_unique_topic_and_back() -> None:
    topics = [topic_name("feast", "p", name) for name in NAMES]
    assert all(LEGAL.fullmatch(t) for t in topics)
    assert len({kafka_collision_form(t) for t in topics}) == len(NAMES)  # Kafka's '.'/'_' rule
    assert [view_of_topic(t, "feast", "p") for t in topics] == NAMES


def test_plain_view_names_keep_their_topic() -> None:
    assert topic_name("feast", "p", "card_spending_stats") == "feast.p.card_spending_stats"


def test_a_topic_that_is_no_view_spelling_maps_to_no_view() -> None:
    for topic in ("feast.p.", "feast.other.v", "feast.p.a.b", "feast.p.-zz", "feast.p.-41"):
        assert view_of_topic(topic, "feast", "p") is None, topic


def test_a_view_name_too_long_for_a_topic_is_refused_naming_it() -> None:
    name = "é" * MAX_TOPIC_CHARS
    with pytest.raises(ConfigError, match="feature view"):
        topic_name("feast", "p", name)


def test_the_subscription_pattern_matches_exactly_the_views_topics() -> None:
    every = re.compile(subscription_pattern("feast", "p", ["*"]))
    some = re.compile(subscription_pattern("feast", "p", ["商户风险", "a.b"]))
    for name in NAMES:
        topic = topic_name("feast", "p", name)
        assert every.match(topic)
        assert bool(some.match(topic)) == (name in ("商户风险", "a.b"))
    assert not every.match("feast.other.x")
