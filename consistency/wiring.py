"""Builds the checker from the topology and settings: the only place adapters are chosen."""

from __future__ import annotations

import logging

from consistency.adapters.kafka_log import KafkaLog
from consistency.adapters.manifest import S3Manifest
from consistency.adapters.redis_region import RedisRegion
from consistency.adapters.shared import client_config, connect
from consistency.adapters.versions import S3Versions
from consistency.adapters.webhook import WebhookSender
from consistency.checker import Checker
from consistency.config import ConsistencySettings
from consistency.core.backoff import Backoff
from consistency.core.scope import Scope
from consistency.errors import SettingsError
from replicator.config import RedisUser, Topology
from replicator.core.wire import partition_for

log = logging.getLogger(__name__)

SOCKET_TIMEOUT = 10.0
"""Seconds a Redis reply may take before the connection is dropped."""


def scope_of(topology: Topology, settings: ConsistencySettings) -> Scope:
    reference = settings.reference_region or topology.primary_region
    if reference not in topology.regions:
        raise SettingsError(
            f"reference_region {reference!r} is not a region of the topology "
            f"({', '.join(sorted(topology.regions))})"
        )
    return Scope(
        project=topology.project,
        topic_prefix=topology.kafka.topic_prefix,
        partitions=topology.kafka.partitions,
        primary_region=topology.primary_region,
        reference_region=reference,
        subscriptions={n: tuple(r.feature_views) for n, r in topology.regions.items()},
        groups={n: topology.consumer_group(n) for n in topology.regions},
    )


def checker_user(topology: Topology, region: str) -> RedisUser:
    """The Redis user the checker reads ``region`` as: its ``checker`` user (read-only), else
    the writer, with a warning naming the region and the fix. ``repair`` writes, so it uses
    the writer explicitly (``consistency.cli``), never this."""
    endpoint = topology.region(region).redis
    if endpoint.checker is not None:
        return endpoint.checker
    log.warning(
        "regions.%s.redis.checker is not set: the consistency checker logs into %s's Redis "
        "as the writer %r, which can write; create a read-only checker user and add it to "
        "the topology (docs/security.md, Redis)",
        region,
        region,
        endpoint.writer.username,
        extra={"event": "checker_uses_writer", "region": region},
    )
    return endpoint.writer


def region_reader(topology: Topology, region: str, settings: ConsistencySettings) -> RedisRegion:
    endpoint = topology.region(region).redis
    user = checker_user(topology, region)
    return RedisRegion(
        region,
        # A read that outlives the round's deadline is abandoned by the checker; the socket
        # timeout ends it (full-check script calls take ~10 ms each, far below it).
        lambda: connect(endpoint, user, timeout=SOCKET_TIMEOUT),
        scan_count=settings.full.scan_count,
    )


def build_checker(topology: Topology, settings: ConsistencySettings) -> Checker:
    scope = scope_of(topology, settings)
    return Checker(
        scope,
        settings,
        regions={name: region_reader(topology, name, settings) for name in topology.regions},
        log_admin=KafkaLog(
            client_config(topology, "checker"),
            timeout_seconds=settings.schedule.read_timeout_seconds,
        ),
        manifest=S3Manifest(topology.region(scope.reference_region).s3, topology.project),
        partition_of=partition_for,
        versions=S3Versions(
            {name: region.s3 for name, region in topology.regions.items()}, topology.project
        ),
    )


def build_webhook(settings: ConsistencySettings) -> WebhookSender | None:
    hook = settings.webhook
    if not hook.url:
        return None
    return WebhookSender(
        hook.url,
        timeout_seconds=hook.timeout_seconds,
        max_attempts=hook.max_attempts,
        backoff=Backoff(hook.initial_backoff_seconds, 2.0, hook.max_backoff_seconds),
        queue_size=hook.queue_size,
    )


def close_checker(checker: Checker) -> None:
    checker.close()
    for region in checker.regions.values():
        region.close()
    checker.log.close()
    if checker.versions is not None:
        checker.versions.close()
