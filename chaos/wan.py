"""The WAN between regions: which links exist, and their normal round-trip times.

Kafka and the checker live in the primary region (us-east-1). Every other region's worker
reaches the brokers through the link ``kafka:<region>`` (one proxy per broker, at the ports
the brokers advertise on that region's listener: ``stack.kafka_listeners``), and the checker
reads every region's Redis through ``redis:<region>`` (proxy port = Redis port +
``REDIS_PROXY_OFFSET``). Workers write their own region's Redis directly.

Round-trip times (ms, median) between AWS regions, rounded, from public measurements:
cloudping.co's AWS inter-region latency grid (https://www.cloudping.co/grid, p50) and
Sachin Agarwal's ping heat-maps (https://www.bigbitbus.com/2018/05/07/What-Is-Your-Ping-AWS-And-Google-Cloud/).
Both put us-east-1 <-> eu-west-1 at 70-80 ms and us-east-1 <-> ap-southeast-1 at 210-230 ms.
Half the RTT is added in each direction, with jitter of 10 % of the one-way delay.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaos.toxiproxy import Link, Proxy, Toxiproxy
from replicator.config import Topology

RTT_MS: dict[frozenset[str], float] = {
    frozenset({"us-east-1", "eu-west-1"}): 76.0,
    frozenset({"us-east-1", "ap-southeast-1"}): 220.0,
    frozenset({"eu-west-1", "ap-southeast-1"}): 170.0,
}
LOCAL_RTT_MS = 1.0
"""Inside one region (the checker reading the primary's Redis)."""
JITTER_RATIO = 0.10
REDIS_PROXY_OFFSET = 100
BASELINE = "wan"
"""Tag of the normal latency toxics; faults use other tags and never remove this one."""


def rtt_ms(a: str, b: str) -> float:
    """Round-trip time between two regions in ms (``LOCAL_RTT_MS`` for the same region)."""
    return LOCAL_RTT_MS if a == b else RTT_MS[frozenset({a, b})]


@dataclass
class Wan:
    """Every link of a topology, created on one Toxiproxy server."""

    topology: Topology
    client: Toxiproxy

    def __post_init__(self) -> None:
        self.links: dict[str, Link] = {}
        primary = self.topology.primary_region
        listeners = self.topology.stack.kafka_listeners
        brokers = self.topology.stack.kafka_brokers
        for region, config in self.topology.regions.items():
            listener = listeners.get(region.replace("-", "_").upper())
            if region != primary and listener is not None:
                proxies = [
                    Proxy(
                        f"kafka-{region}-{n}",
                        listener.advertised_port + n - 1,
                        listener.port + n - 1,
                    )
                    for n in range(1, brokers + 1)
                ]
                self.links[f"kafka:{region}"] = Link(self.client, f"kafka:{region}", proxies)
            port = config.redis.port
            redis_proxy = Proxy(f"redis-{region}", port + REDIS_PROXY_OFFSET, port)
            self.links[f"redis:{region}"] = Link(self.client, f"redis:{region}", [redis_proxy])

    def link(self, name: str) -> Link:
        return self.links[name]

    def region_links(self, region: str) -> list[Link]:
        """Every link that crosses into ``region`` (cut them all to isolate it)."""
        return [link for name, link in self.links.items() if name.endswith(f":{region}")]

    def create(self) -> None:
        """(Re)create every proxy, then add each link's normal latency."""
        self.client.reset()
        primary = self.topology.primary_region
        for name, link in self.links.items():
            link.create()
            one_way = rtt_ms(primary, name.split(":", 1)[1]) / 2
            link.latency(BASELINE, one_way, one_way * JITTER_RATIO)

    def checker_env(self) -> dict[str, str]:
        """Environment that points the checker at every region's Redis through its link."""
        env = {}
        for region, config in self.topology.regions.items():
            key = region.replace("-", "_").upper()
            env[f"REPLICATOR_REGIONS__{key}__REDIS__PORT"] = str(
                config.redis.port + REDIS_PROXY_OFFSET
            )
        return env
