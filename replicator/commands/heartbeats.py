"""``replicator heartbeats [--interval 1.0]``: the primary's heartbeat emitter."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from replicator.config import load_topology


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "heartbeats",
        help="emit heartbeats into every feature-view partition (run at the primary)",
        description=(
            "Every INTERVAL seconds, produce a heartbeat stamped with the primary's clock into "
            "every partition of every feature-view topic of the project, then record the round "
            "in the primary region's Redis. Workers apply heartbeats in log order, so the "
            "consistency checker measures each region's staleness against them, skew-free. "
            "Stops on SIGTERM or Ctrl-C."
        ),
    )
    parser.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="default: 1.0"
    )
    parser.add_argument(
        "--relist",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how often to look for new feature-view topics (default: 10)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from confluent_kafka.admin import AdminClient

    from replicator.adapters.kafka_config import client_config
    from replicator.adapters.kafka_publisher import KafkaPublisher
    from replicator.adapters.redis_store import connect
    from replicator.heartbeat import HeartbeatEmitter, KafkaTopicLister, RedisEmissionRecord

    if args.interval <= 0:
        raise SystemExit("replicator: error: --interval must be positive")
    topology = load_topology(args.config)
    kafka = client_config(topology, "primary")
    primary = topology.region(topology.primary_region).redis
    record = RedisEmissionRecord(
        lambda: connect(primary, primary.writer), topology.project, args.interval
    )
    emitter = HeartbeatEmitter(
        topics=KafkaTopicLister(
            AdminClient(dict(kafka)),
            topology.kafka.topic_prefix,
            topology.project,
        ),
        producer=KafkaPublisher(
            kafka,
            client_id=f"heartbeats-{topology.project}",
            options={"linger.ms": 0},
        ),
        record=record,
        interval_seconds=args.interval,
        relist_seconds=args.relist,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: emitter.stop())
    try:
        emitter.run()
    finally:
        record.close()
    return 0
