"""What the topology says the checker looks at: project, topics, regions and their groups."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from replicator.core.topics import topic_name, view_of_topic


@dataclass(frozen=True)
class Scope:
    """The checker's view of the topology (built once by ``wiring.scope_of``)."""

    project: str
    topic_prefix: str
    partitions: int
    primary_region: str
    reference_region: str
    subscriptions: Mapping[str, tuple[str, ...]]
    """Region -> feature views it subscribes to (``*``: all)."""
    groups: Mapping[str, str]
    """Region -> its worker's consumer group."""

    @property
    def regions(self) -> list[str]:
        return list(self.subscriptions)

    def subscribes(self, region: str, view: str) -> bool:
        views = self.subscriptions.get(region, ())
        return "*" in views or view in views

    def topic(self, view: str) -> str:
        return topic_name(self.topic_prefix, self.project, view)

    def view_of(self, topic: str) -> str | None:
        """``<prefix>.<project>.<view>`` -> ``<view>``; None for another project's topic."""
        return view_of_topic(topic, self.topic_prefix, self.project)

    def views_of_region(self, region: str, topics: Mapping[str, int]) -> dict[str, tuple[str, int]]:
        """View -> (topic, partitions) for the topics the region subscribes to."""
        mine: dict[str, tuple[str, int]] = {}
        for topic, partitions in topics.items():
            view = self.view_of(topic)
            if view is not None and self.subscribes(region, view):
                mine[view] = (topic, partitions)
        return mine
