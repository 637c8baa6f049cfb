"""A throwaway replicated project on the running stack, for replication tests.

Each ``ReplicatedProject`` has its own Feast project name, hence its own topics, Redis keys,
consumer groups and registry objects, so tests never see each other's rows. Feature
definitions are the real ``feature_repo/``; data comes from its generator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
import yaml
from confluent_kafka import Consumer
from waiting import wait_until

from benchmarks import processes
from benchmarks.processes import free_port
from replicator.adapters.kafka_config import client_config
from replicator.adapters.redis_store import connect, feast_hashes
from replicator.assembly import build_worker
from replicator.config import Topology, load_topology, read_topology_document
from replicator.core import wire
from replicator.registry_sync import sync_once
from replicator.stack.kafka_security import grant_project
from replicator.worker import Worker

if TYPE_CHECKING:
    import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
FEATURE_REPO = ROOT / "feature_repo"
END = datetime(2026, 11, 1, tzinfo=UTC)
"""Fixed end of the generated data, so every run writes the same rows."""

FeastKeys = dict[bytes, dict[bytes, bytes]]


class ReferenceRedis:
    """A bare redis-server that Feast's own RedisOnlineStore writes: the expected state."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            processes.redis_server_command(self.port, workdir),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.client = redis.Redis(port=self.port)
        wait_until(lambda: _pings(self.client), 10, "reference redis-server to answer PING")

    @property
    def connection_string(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


wait_for = wait_until
"""The former name of ``waiting.wait_until``, for tests written before it; use ``wait_until``."""


class WorkerThread:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self._thread = threading.Thread(target=worker.run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.worker.stop()
        self._thread.join(30)


class ReplicatedProject:
    def __init__(
        self,
        base_config: Path,
        workdir: Path,
        *,
        partitions: int = 3,
        worker: dict[str, Any] | None = None,
        feast: dict[str, Any] | None = None,
    ) -> None:
        """``feast``: feature_store.yaml settings of the primary, and of the reference store,
        beyond the defaults (``online_store`` and ``registry`` merged key by key)."""
        self.name = f"t{uuid.uuid4().hex[:10]}"
        self.feast = feast or {}
        self.workdir = workdir
        raw = read_topology_document(base_config)
        raw["project"] = self.name
        raw.setdefault("kafka", {})["partitions"] = partitions
        raw["worker"] = {**raw.get("worker", {}), **(worker or {})}
        self.topology_path = workdir / "topology.yaml"
        self.topology_path.write_text(yaml.safe_dump(raw))
        self.topology: Topology = load_topology(self.topology_path)
        grant_project(self.topology)  # this project's Kafka ACLs (a secure stack's are per project)
        self.repo = workdir / "repo"
        self.repo.mkdir()
        shutil.copy(FEATURE_REPO / "fraud_features.py", self.repo)
        self._workers: list[WorkerThread] = []
        self._processes: list[subprocess.Popen[bytes]] = []

    # Feast at the primary ---------------------------------------------------------------
    def write_feature_store_yaml(self) -> Path:
        path = self.repo / "feature_store.yaml"
        online_store = {
            "type": "replicator.feast_publisher.ReplicatingOnlineStore",
            "topology": str(self.topology_path),
        }
        path.write_text(yaml.safe_dump(self._feast_config(online_store)))
        return path

    def _feast_config(self, online_store: dict[str, Any]) -> dict[str, Any]:
        """This project's Feast settings with ``online_store``, ``self.feast`` merged in."""
        config: dict[str, Any] = {
            "project": self.name,
            "provider": "local",
            "registry": str(self.repo / "data" / "registry.db"),
            "offline_store": {"type": "file"},
            "online_store": online_store,
            "entity_key_serialization_version": 3,
            "auth": {"type": "no_auth"},
        }
        for name, value in self.feast.items():
            if isinstance(value, dict):
                current = config.get(name) or {}
                value = {**({"path": current} if isinstance(current, str) else current), **value}
            config[name] = value
        return config

    def generate_data(self, **sizes: int) -> None:
        sys.path.insert(0, str(FEATURE_REPO))
        try:
            from generate_data import generate  # type: ignore[import-not-found]
        finally:
            sys.path.remove(str(FEATURE_REPO))
        generate(self.repo / "data", end=END, **sizes)

    def primary_store(self):  # type: ignore[no-untyped-def]
        from feast import FeatureStore

        self.write_feature_store_yaml()
        return FeatureStore(repo_path=str(self.repo))

    def reference_store(self, reference: ReferenceRedis):  # type: ignore[no-untyped-def]
        """Feast's own RedisOnlineStore on the same registry: what Feast would have written."""
        from feast import FeatureStore, RepoConfig

        online_store = {"type": "redis", "connection_string": reference.connection_string}
        config = RepoConfig(**self._feast_config(online_store), repo_path=self.repo)
        return FeatureStore(config=config, repo_path=str(self.repo))

    def feast_stores(self, reference: ReferenceRedis) -> tuple[Any, Any]:
        """``feast apply`` of the repo's objects at the primary, then a registry sync to every
        region; returns the primary's ``FeatureStore`` and Feast's own store on ``reference``
        (same registry), to write the same calls through both."""
        primary = self.primary_store()
        primary.apply(self.feature_objects())
        self.sync_registry()
        return primary, self.reference_store(reference)

    def fresh_rows(self, view: str, rows: int, shift: timedelta) -> pd.DataFrame:
        """One row for each of the first ``rows`` entities of ``view``'s generated data, event
        and created time ``END + shift`` (newer than every generated row for a positive one)."""
        import pandas as pd

        frame = pd.read_parquet(self.repo / "data" / f"{view}.parquet")
        frame = frame.drop_duplicates(subset=[c for c in frame.columns if c.endswith("_id")])
        frame = frame.head(rows).copy()
        frame["event_timestamp"] = END + shift
        frame["created"] = END + shift
        return frame

    def feature_objects(self, *, without: tuple[str, ...] = ()) -> list[Any]:
        import importlib.util

        spec = importlib.util.spec_from_file_location(
            f"fraud_features_{self.name}", self.repo / "fraud_features.py"
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        cwd = os.getcwd()
        os.chdir(self.repo)  # FileSource paths are relative to the repo
        try:
            spec.loader.exec_module(module)
        finally:
            os.chdir(cwd)
        from feast import Entity, FeatureService, FeatureView, PushSource
        from feast.data_source import DataSource

        kinds = (Entity, FeatureView, FeatureService, PushSource, DataSource)
        objects = [v for v in vars(module).values() if isinstance(v, kinds)]
        return [o for o in objects if getattr(o, "name", None) not in without]

    def sync_registry(self) -> None:
        sync_once(self.topology, self.repo / "data" / "registry.db")

    # Regions ------------------------------------------------------------------------------
    @property
    def workers(self) -> list[WorkerThread]:
        return list(self._workers)

    def start_workers(self, regions: list[str] | None = None) -> None:
        for region in regions or list(self.topology.regions):
            self._workers.append(WorkerThread(build_worker(self.topology, region)))

    def run_worker(self, worker: Worker) -> WorkerThread:
        """Run a worker built by the test (e.g. with its own clock); stopped by ``stop()``."""
        thread = WorkerThread(worker)
        self._workers.append(thread)
        return thread

    def start_worker_process(self, region: str, *options: str) -> subprocess.Popen[bytes]:
        return self._replicator(
            f"worker-{region}", "--log-format", "json", "worker", "--region", region, *options
        )

    def start_heartbeats(self, interval: float, *options: str) -> subprocess.Popen[bytes]:
        """The primary's heartbeat emitter for this project (``replicator heartbeats``)."""
        return self._replicator("heartbeats", "heartbeats", "--interval", str(interval), *options)

    def _replicator(self, log_name: str, *args: str) -> subprocess.Popen[bytes]:
        """A ``replicator`` command on this project's topology; stopped by ``stop()``."""
        command = [sys.executable, "-m", "replicator.cli", "--config", str(self.topology_path)]
        proc = processes.start([*command, *args], self.workdir / f"{log_name}.log", cwd=None)
        self._processes.append(proc)
        return proc

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()
        processes.stop(self._processes)

    def admin(self, region: str) -> redis.Redis:
        endpoint = self.topology.region(region).redis
        return connect(endpoint, endpoint.admin)

    def feast_keys(self, client: redis.Redis) -> FeastKeys:
        """Every Feast key of this project with all its fields, as bytes."""
        return feast_hashes(client, self.name)

    def wait_converged(
        self, expected: FeastKeys, regions: list[str] | None = None, timeout: float = 120
    ) -> None:
        """Until every region (default: all) holds exactly ``expected`` on this project's keys."""
        for region in regions or list(self.topology.regions):
            client = self.admin(region)
            wait_until(
                lambda client=client: self.feast_keys(client) == expected,
                timeout,
                f"{region} to hold exactly the reference's {len(expected)} keys",
                observe=lambda client=client: difference(expected, self.feast_keys(client)),
            )


def difference(expected: FeastKeys, actual: FeastKeys) -> str:
    """How ``actual`` differs from ``expected``, in counts of keys."""
    missing = len(expected.keys() - actual.keys())
    extra = len(actual.keys() - expected.keys())
    differ = sum(1 for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    return f"{missing} keys missing, {extra} extra, {differ} with other bytes"


def recent_window(days: int = 400) -> tuple[datetime, datetime]:
    return END - timedelta(days=days), END + timedelta(seconds=1)


def iter_lines(path: Path) -> Iterator[str]:
    with path.open() as handle:
        yield from handle


def primary_fingerprint(store, view: str) -> str:  # type: ignore[no-untyped-def]
    """The schema fingerprint the primary puts on ``view``'s records (Feast store ``store``)."""
    from replicator.feast_layout import schema_fingerprint

    return schema_fingerprint(store.get_feature_view(view), view)


def dead_letter_reasons(topology: Topology, source_topic: str, expect: int) -> dict[str, list[str]]:
    """Region -> reasons of the dead letters of records from ``source_topic``, once at least
    ``expect`` arrived (60 s at most)."""
    consumer = Consumer(
        {
            **client_config(topology, "admin"),
            "group.id": f"dlq-reader-{source_topic}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topology.kafka.dead_letter_topic])
    found: dict[str, list[str]] = {r: [] for r in topology.regions}

    def collected() -> dict[str, list[str]] | None:
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            headers = {k: (v or b"").decode() for k, v in message.headers() or []}
            if headers.get(wire.H_SOURCE, "").startswith(source_topic + ":"):
                found[headers["dlq_region"]].append(headers[wire.H_REASON])
        return found if sum(map(len, found.values())) >= expect else None

    try:
        return wait_until(
            collected, 60, f"{expect} dead letters from {source_topic}", observe=lambda: found
        )
    finally:
        consumer.close()
