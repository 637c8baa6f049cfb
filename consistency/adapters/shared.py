"""What the checker shares with the replicator's adapters, imported in ONE place.

The checker reads what the replicator writes, so it needs the replicator's names for it:
Redis key formats (the version hashes, the heartbeat records), the schema manifest's S3 key,
and the means to reach a region (a Redis connection, an S3 client, the last-writer-wins
writer that ``repair`` applies through). Today several of them live in the replicator's
adapters; this module is the only part of ``consistency`` allowed to import them
(``tests/unit/test_consistency_boundaries.py`` enforces it, name by name). When they move
to a shared, non-adapter home (``replicator.core``: the version layout, the heartbeat key
format, the object-store port), repoint the imports below and drop the exception in that
test. Everything else in ``consistency`` imports these names from here.
"""

from __future__ import annotations

from replicator.adapters.kafka_config import KafkaConnection, client_config, client_settings
from replicator.adapters.redis_store import RegionStore, connect, version_key
from replicator.adapters.s3 import is_absent, read_object, s3_client
from replicator.adapters.s3_catalog import manifest_key
from replicator.core.wire import partition_for
from replicator.heartbeat import (
    F_EMITTED_NS,
    F_INTERVAL_NS,
    F_SEQUENCE,
    TOPIC_FIELD_PREFIX,
    applied_key,
    emission_key,
)

__all__ = [
    "F_EMITTED_NS",
    "F_INTERVAL_NS",
    "F_SEQUENCE",
    "TOPIC_FIELD_PREFIX",
    "KafkaConnection",
    "RegionStore",
    "applied_key",
    "client_config",
    "client_settings",
    "connect",
    "emission_key",
    "is_absent",
    "manifest_key",
    "partition_for",
    "read_object",
    "s3_client",
    "version_key",
]
