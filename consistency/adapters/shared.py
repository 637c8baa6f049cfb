"""What the checker takes from the replicator's adapters, imported in ONE place.

The checker reads what the replicator writes. Names and layouts (Redis keys, heartbeat fields,
the manifest's S3 key, the version of a write, the partitioner) come from the replicator's
pure core (``replicator.core.keys``, ``replicator.core.version``, ``replicator.core.wire``),
which any checker module may import. What is left here are the means to reach a region: a
Redis connection, the reads of the heartbeat records, S3 reads, and the last-writer-wins
writer that ``repair`` applies through; and the project's one HTTP(S) server, which
``consistency serve`` shares with ``replicator region health``.
This module is the only part of ``consistency`` allowed to import ``replicator.adapters``
(``tests/unit/test_consistency_boundaries.py`` enforces it, name by name).
"""

from __future__ import annotations

from replicator.adapters.http_server import HttpServer, server_context
from replicator.adapters.kafka_config import KafkaConnection, client_config, client_settings
from replicator.adapters.redis_store import (
    RegionStore,
    connect,
    read_applied_heartbeats,
    read_emission,
)
from replicator.adapters.s3 import is_absent, read_object, s3_client

__all__ = [
    "HttpServer",
    "KafkaConnection",
    "RegionStore",
    "client_config",
    "client_settings",
    "connect",
    "is_absent",
    "read_applied_heartbeats",
    "read_emission",
    "read_object",
    "s3_client",
    "server_context",
]
