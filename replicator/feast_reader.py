"""The read-side Feast online store of a region: health-aware, staleness-aware, read-only.

``replicator region feast-config R`` writes it into R's ``feature_store.yaml``::

    online_store:
      type: replicator.feast_reader.RegionalOnlineStore
      plan: {project, topic_prefix, regions: [R, fallbacks nearest first], primary, reads}
      feature_service_max_staleness: {fraud_model_v1: 2.0}   # optional, seconds

The Feast SDK is unchanged (``get_online_features``, ``feast serve``): every read is Feast's
own ``RedisOnlineStore`` code (keys, fields, decoding) whose one Redis round trip
(``_read_hash_fields``) goes through ``RegionalReader`` instead of one Redis. A feature
service's bound comes from ``feature_service_max_staleness`` or from its tag
``max_staleness_seconds``; per call, wrap the call in ``replicator.regional_reads.read_scope``.
Which region served each read, and how stale it was: ``read_scope(...).reads`` or
``last_read()`` (docs/regional-reads.md). Writes are refused: inference regions are read-only.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Sequence
from typing import Any, Literal

from feast import FeatureService, RepoConfig
from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig
from feast.infra.supported_async_methods import SupportedAsyncMethods
from pydantic import model_validator

from replicator.adapters.redis_store import connection_string
from replicator.config_security import Credentials
from replicator.errors import ConfigError
from replicator.read_plan import ReadPlan
from replicator.regional_reads import RegionalReader, read_scope

STORE_TYPE = "replicator.feast_reader.RegionalOnlineStore"
SERVICE_TAG = "max_staleness_seconds"


class RegionalOnlineStoreConfig(RedisOnlineStoreConfig):
    type: Literal["replicator.feast_reader.RegionalOnlineStore"] = STORE_TYPE  # type: ignore[assignment]
    plan: ReadPlan
    feature_service_max_staleness: dict[str, float] = {}
    """Feature service name -> seconds (wins over the service's ``max_staleness_seconds`` tag)."""

    @model_validator(mode="after")
    def _local_connection(self) -> RegionalOnlineStoreConfig:
        # Feast's own client (not used for reads, which go through RegionalReader) gets the
        # same login and TLS as the reader's.
        local = self.plan.regions[0]
        login = Credentials(username=local.username, password=local.password)
        self.connection_string = connection_string(local.host, local.port, login, local.tls)
        return self


_readers: dict[str, RegionalReader] = {}
_readers_lock = threading.Lock()


def reader_for(plan: ReadPlan) -> RegionalReader:
    """One reader (one set of health checks) per plan and process, however many stores."""
    key = plan.model_dump_json()
    with _readers_lock:
        if key not in _readers:
            _readers[key] = RegionalReader(plan)
        return _readers[key]


def close_readers() -> None:
    """Stop the health checks of every reader of this process and forget them (the next read
    starts new ones). Runs at interpreter exit; call it sooner when the regions go away."""
    with _readers_lock:
        readers = list(_readers.values())
        _readers.clear()
    for reader in readers:
        reader.close()


atexit.register(close_readers)


class RegionalOnlineStore(RedisOnlineStore):
    @property
    def async_supported(self) -> SupportedAsyncMethods:
        # Reads go through the (sync) failover client: Feast then serves them on its sync path.
        return SupportedAsyncMethods(read=False, write=False)

    def get_online_features(
        self,
        config: RepoConfig,
        features: list[str] | FeatureService,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        bound = _service_bound(config, features)
        with read_scope(max_staleness=bound):
            return super().get_online_features(config, features, *args, **kwargs)

    def _read_hash_fields(
        self, config: RepoConfig, commands: list[tuple[bytes, list[str | bytes]]]
    ) -> list[Any]:
        store_config = config.online_store
        assert isinstance(store_config, RegionalOnlineStoreConfig)
        return reader_for(store_config.plan).hmget(commands)

    def online_write_batch(self, config: RepoConfig, *args: Any, **kwargs: Any) -> None:
        raise ConfigError(
            "this is a regional, read-only Feast config (replicator.feast_reader): write at the "
            "primary, whose feature_store.yaml uses replicator.feast_publisher"
        )


def _service_bound(config: RepoConfig, features: Sequence[str] | FeatureService) -> float | None:
    if not isinstance(features, FeatureService):
        return None
    store_config = config.online_store
    assert isinstance(store_config, RegionalOnlineStoreConfig)
    if features.name in store_config.feature_service_max_staleness:
        return store_config.feature_service_max_staleness[features.name]
    tag = (features.tags or {}).get(SERVICE_TAG)
    try:
        return float(tag) if tag is not None else None
    except ValueError:
        raise ConfigError(
            f"feature service {features.name}: tag {SERVICE_TAG}={tag!r} is not a number"
        ) from None
