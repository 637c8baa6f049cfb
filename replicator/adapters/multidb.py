"""The one adapter over redis-py's ``redis.multidb`` (a preview API; redis-py pinned 7.4.x).

``FailoverRedis`` is a ``MultiDBClient`` over the regions' Redis, weighted in read order (the
local region highest), with:

- a custom health check (``check(region) -> bool``, run every health interval on redis-py's
  background loop; it raises when the region is unreachable, returns False when it is stale):
  a failing check opens the region's circuit;
- redis-py's command failure detector: ``failures_to_failover`` failed commands on the active
  region open its circuit at once, and the same call is retried on the next region, so a dead
  Redis costs the caller a few fast retries, not an error;
- failback: every ``failback_seconds`` the client returns to the heaviest region whose circuit
  is closed (closed again only by a passing health check, which carries the hysteresis).

Everything else in the project sees only this class; redis-py's exceptions become
``RegionUnavailable``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.asyncio.multidb.healthcheck import AbstractHealthCheck, HealthCheckPolicies
from redis.backoff import ExponentialBackoff
from redis.multidb.client import MultiDBClient
from redis.multidb.config import DatabaseConfig, InitialHealthCheck, MultiDbConfig
from redis.multidb.exception import NoValidDatabaseException
from redis.multidb.failure_detector import CommandFailureDetector
from redis.retry import Retry

from replicator.adapters.redis_store import tls_options
from replicator.config import ReadSettings
from replicator.errors import TransientError
from replicator.read_plan import ReadRegion

log = logging.getLogger(__name__)

HmgetCommands = Sequence[tuple[bytes, Sequence[bytes | str]]]


class RegionUnavailable(TransientError):
    """No region could serve the read (all unreachable or failed over from)."""


class _RegionHealthCheck(AbstractHealthCheck):
    def __init__(
        self, names: dict[tuple[str, int], str], check: Callable[[str], bool], timeout: float
    ) -> None:
        super().__init__(health_check_probes=1, health_check_delay=0, health_check_timeout=timeout)
        self._names = names
        self._check = check

    async def check_health(self, database: Any, hc_client: Any) -> bool:
        # Our own reader clients measure (sync, short timeouts), off redis-py's event loop.
        return await asyncio.to_thread(self._check, self._names[_address(database.client)])


class _PipelinedRedis(redis.Redis):
    """multidb runs a pipeline as MULTI/EXEC, which reader users may not (and reads do not
    need): its pipelines here are plain, non-transactional ones."""

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return super().pipeline(transaction=False, shard_hint=shard_hint)


def _address(client: redis.Redis) -> tuple[str, int]:
    kwargs = client.get_connection_kwargs()
    return str(kwargs["host"]), int(kwargs["port"])


class FailoverRedis:
    def __init__(
        self, regions: Sequence[ReadRegion], settings: ReadSettings, check: Callable[[str], bool]
    ) -> None:
        self.order = [r.name for r in regions]
        names = {(r.host, r.port): r.name for r in regions}
        timeout = settings.socket_timeout_seconds
        databases = [
            DatabaseConfig(
                weight=float(len(regions) - i),
                client_kwargs={
                    "host": r.host,
                    "port": r.port,
                    "username": r.username,
                    "password": r.password.get_secret_value(),
                    "socket_timeout": timeout,
                    "socket_connect_timeout": timeout,
                    **tls_options(r.tls),
                },
                grace_period=settings.failback_seconds,
            )
            for i, r in enumerate(regions)
        ]
        failures = settings.failures_to_failover
        config = MultiDbConfig(
            databases_config=databases,
            client_class=_PipelinedRedis,
            command_retry=Retry(
                ExponentialBackoff(cap=0.05, base=0.005), failures * len(regions) + 1
            ),
            failure_detectors=[
                CommandFailureDetector(min_num_failures=failures, failure_rate_threshold=0.0)
            ],
            health_checks=[_RegionHealthCheck(names, check, timeout * 4)],
            health_check_interval=settings.health_interval_seconds,
            health_check_policy=HealthCheckPolicies.HEALTHY_ALL,
            failover_attempts=0,
            failover_delay=0,
            auto_fallback_interval=settings.failback_seconds,
            initial_health_check_policy=InitialHealthCheck.ONE_AVAILABLE,
        )
        self._client = MultiDBClient(config)
        self._by_name = {names[_address(db.client)]: db for db, _ in self._client.get_databases()}

    def start(self) -> None:
        """Run the first health checks and start the recurring ones (idempotent).

        Raises ``RegionUnavailable`` when no region passes."""
        if self._client.initialized:
            return
        try:
            self._client.initialize()
        except (redis.RedisError, NoValidDatabaseException) as exc:
            raise RegionUnavailable(f"no region can serve reads: {exc}") from exc

    def active_region(self) -> str | None:
        database = self._client.command_executor.active_database
        return None if database is None else self._name_of(database)

    def hmget(self, commands: HmgetCommands) -> tuple[str, list[Any]]:
        """One pipeline of HMGETs on the active region, failing over as needed.

        Returns (region that answered, replies). Raises ``RegionUnavailable``."""
        self.start()
        pipe = self._client.pipeline()
        for key, fields in commands:
            pipe.hmget(key, list(fields))
        try:
            replies = pipe.execute()
        except (redis.RedisError, NoValidDatabaseException) as exc:
            raise RegionUnavailable(f"no region answered the read: {exc}") from exc
        return self.active_region() or self.order[0], list(replies)

    def hmget_on(self, region: str, commands: HmgetCommands) -> list[Any]:
        """The same read on one named region, without failover. Raises ``RegionUnavailable``."""
        try:
            with self._by_name[region].client.pipeline(transaction=False) as pipe:
                for key, fields in commands:
                    pipe.hmget(key, list(fields))
                return list(pipe.execute())
        except redis.RedisError as exc:
            raise RegionUnavailable(f"region {region} did not answer the read: {exc}") from exc

    def _name_of(self, database: Any) -> str:
        return next(name for name, db in self._by_name.items() if db is database)

    def close(self) -> None:
        self._client.close()
        for db in self._by_name.values():
            db.client.close()
