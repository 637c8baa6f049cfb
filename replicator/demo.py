"""``replicator demo``: the whole flow on the local stack, end to end.

Stack up -> generate data -> ``feast apply`` at the primary -> registry to every region ->
one worker per region and the heartbeat emitter -> materialize and push through Feast at the
primary -> read the same entities through the Feast SDK in every region -> a table of what
reached where -> the consistency checker's report; then, until Ctrl-C, the checker's status
page. The checker runs as its own command (``consistency``): the replicator never imports it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import redis
import yaml

from replicator import demo_repo
from replicator.adapters.redis_store import (
    connect,
    feast_hashes,
    read_applied_heartbeats,
    read_emission,
)
from replicator.config import DEFAULT_CONFIG_PATH, Topology
from replicator.core.keys import worker_stats_key
from replicator.regional_config import feast_env, write_regional_repo
from replicator.registry_sync import sync_once
from replicator.stack.local import LocalStack
from replicator.stack.prometheus import scrape_summary, worker_metrics_port

Say = Callable[[str], None]
T = TypeVar("T")
POLL_SECONDS = 0.2
ONE_SHOT_READ_TIMEOUT = "15"
"""``schedule.read_timeout_seconds`` of the demo's one-shot consistency check (3 by default)."""


@dataclass
class RegionReport:
    region: str
    rows_applied: int
    lag_p50_ms: float
    lag_p99_ms: float
    keys: int
    identical: bool
    reads_match: bool


class Demo:
    """The demo's steps. It runs Feast in this process only with explicit configuration:
    ``feast apply`` and every region's reads run as child processes with their own
    environment and working directory, so this process's environment, working directory and
    ``sys.path`` are never changed. Redis connections are opened once and closed at the end."""

    def __init__(self, topology: Topology, repo: Path, config_path: Path, say: Say = print) -> None:
        self.topology = topology
        self.repo = repo.resolve()
        self.config_path = config_path.resolve()
        self.say = say
        self.state_dir = Path(topology.stack.state_dir).resolve()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.helpers: dict[str, subprocess.Popen[bytes]] = {}
        """Heartbeat emitter and checker server: stopped with the workers."""
        self._admins: dict[str, redis.Redis] = {}

    # Steps --------------------------------------------------------------------------------
    def run(self, *, once: bool) -> list[RegionReport]:
        try:
            return self._run(once=once)
        except BaseException:
            self.stop_workers()  # a failed demo leaves no worker behind
            raise
        finally:
            self.close()

    def _run(self, *, once: bool) -> list[RegionReport]:
        started = time.monotonic()
        self.step("starting the local stack")
        LocalStack(self.topology, progress=lambda m: self.say(f"    {m}"), prometheus=True).up()
        self.step("generating feature data")
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        self._run_logged(
            "generate-data",
            [str(self.repo / "generate_data.py"), "--out", str(self.repo / "data")],
            end=end.isoformat(),
        )
        self.step("feast apply at the primary (importing Feast takes a few seconds)")
        self._feast_apply()
        store = self._primary_store()
        self.step("copying the registry to every region's bucket")
        result = sync_once(self.topology)
        self.say(f"    registry {result.version}: {len(result.regions_updated)} region(s) updated")
        self.step(f"starting {len(self.topology.regions)} workers (logs in {self._log_dir()})")
        for region in self.topology.regions:
            self.workers[region] = self._start_worker(region)
        self._wait_assigned()
        self.helpers["heartbeats"] = self._spawn(
            "heartbeats", ["-m", "replicator.cli", "--config", str(self.config_path), "heartbeats"]
        )
        self.step("materializing everything and pushing fresh rows through Feast at the primary")
        views = store.list_feature_views()
        store.materialize(end - timedelta(days=400), end + timedelta(seconds=1))
        push, fresh = demo_repo.fresh_rows(store, self.repo)
        store.push(push, fresh)
        written_ns = time.time_ns()
        self.say(f"    materialized {len(views)} views and pushed {len(fresh)} fresh rows ({push})")
        self.step("waiting for every region to apply them")
        self._wait_applied(written_ns)
        self.step("reading the same entities through the Feast SDK in every region")
        reports = self._report(store)
        self._print_table(reports)
        self.step("the consistency checker's report (consistency check --once)")
        self._consistency_report()
        self.step(scrape_summary(self.topology))
        self.say(f"done in {time.monotonic() - started:.0f}s")
        if once:
            self.stop_workers()
        else:
            self._serve_until_interrupted()
        return reports

    def close(self) -> None:
        for client in self._admins.values():
            client.close()
        self._admins.clear()

    def _consistency(self, *args: str) -> list[str]:
        return ["-m", "consistency.cli", "--topology", str(self.config_path), *args]

    def _consistency_report(self) -> None:
        # _wait_applied waited for a heartbeat round applied in every region: staleness is
        # measurable now.
        # A one-shot check opens every Kafka client inside its only round (TLS and SCRAM
        # handshakes: seconds on a busy 2-core machine), which a serving checker does once,
        # before its rounds; the round's deadline leaves room for that here.
        env = self._child_env({"CONSISTENCY_SCHEDULE__READ_TIMEOUT_SECONDS": ONE_SHOT_READ_TIMEOUT})
        done = subprocess.run(
            [sys.executable, *self._consistency("check", "--once")],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        for line in (done.stdout or done.stderr).splitlines():
            self.say(f"    {line}")

    def step(self, text: str) -> None:
        self.say(f"==> {text}")

    def _child_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """A child's environment: ours, the demo's topology, and ``extra``."""
        return {**os.environ, "REPLICATOR_CONFIG": str(self.config_path), **(extra or {})}

    def _feast_apply(self) -> None:
        """``feast apply`` in the repo, as a user runs it (the Feast CLI imports the repo's
        definitions from its working directory)."""
        self._run_logged(
            "feast-apply", ["-m", "feast.cli.cli", "apply", "--skip-source-validation"]
        )

    def _run_logged(self, name: str, args: list[str], **options: str) -> None:
        """A Python child in the repo with the demo's topology; output to ``<name>.log``."""
        flags = [f"--{k}={v}" for k, v in options.items()]
        log = self._log_dir() / f"{name}.log"
        with log.open("ab") as out:
            done = subprocess.run(
                [sys.executable, *args, *flags],
                cwd=self.repo,
                env=self._child_env(),
                stdout=out,
                stderr=out,
            )
        if done.returncode != 0:
            raise SystemExit(f"{name} failed (exit {done.returncode}); see {log}")

    def _primary_store(self) -> Any:
        """The primary's FeatureStore, told the demo's topology explicitly."""
        from feast import FeatureStore, RepoConfig

        document = yaml.safe_load((self.repo / "feature_store.yaml").read_text())
        document["online_store"] = {**document["online_store"], "topology": str(self.config_path)}
        if isinstance(document.get("registry"), dict):
            document["registry"] = {**document["registry"], "topology": str(self.config_path)}
        config = RepoConfig(**document, repo_path=self.repo)
        return FeatureStore(config=config, repo_path=str(self.repo))

    def _log_dir(self) -> Path:
        path = self.state_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _start_worker(self, region: str) -> subprocess.Popen[bytes]:
        args = ["--config", str(self.config_path), "--log-format", "json"]
        metrics = ["--metrics-port", str(worker_metrics_port(self.topology, region))]
        return self._spawn(
            f"worker-{region}",
            ["-m", "replicator.cli", *args, "worker", "--region", region, *metrics],
        )

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with (self._log_dir() / f"{name}.log").open("ab") as log:  # the child keeps its copy
            return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT)

    def stop_workers(self) -> None:
        processes = [*self.workers.values(), *self.helpers.values()]
        for proc in processes:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()

    def _admin(self, region: str) -> redis.Redis:
        """One admin connection per region for the whole demo (closed by ``close``)."""
        if region not in self._admins:
            config = self.topology.region(region).redis
            self._admins[region] = connect(config, config.admin)
        return self._admins[region]

    def _stats(self, region: str) -> dict[str, float]:
        raw = cast(dict[bytes, bytes], self._admin(region).hgetall(worker_stats_key(region)))
        return {k.decode(): float(v) for k, v in raw.items()}

    def _poll(self, condition: Callable[[], T | None], timeout: float) -> T | None:
        """``condition()`` every POLL_SECONDS until it returns a value (returned) or
        ``timeout`` seconds pass (None); fails at once if a worker died."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_workers_alive()
            found = condition()
            if found is not None or time.monotonic() > deadline:
                return found
            time.sleep(POLL_SECONDS)

    def _wait_assigned(self, timeout: float = 60) -> None:
        """Until every worker holds its partitions, so the lag shown is replication's own."""

        def assigned() -> bool | None:
            stats = {r: self._stats(r) for r in self.topology.regions}
            return True if all(s.get("assigned_partitions") for s in stats.values()) else None

        if self._poll(assigned, timeout) is None:
            self.say("    (some worker holds no partition yet; going on)")

    def _check_workers_alive(self) -> None:
        for region, proc in self.workers.items():
            if proc.poll() is not None:
                raise SystemExit(
                    f"worker for {region} exited ({proc.returncode}); see "
                    f"{self._log_dir() / f'worker-{region}.log'}"
                )

    def _wait_applied(self, written_ns: int, timeout: float = 120) -> None:
        """Until a heartbeat round emitted after the writes is applied in every region (so
        is every row before it, partition by partition) and every worker's counters were
        published after that."""

        def applied() -> bool | None:
            fence = self._heartbeat_fence(written_ns)
            if fence is None:
                return None
            stats_ns = [self._stats(r).get("updated_ns", 0) for r in self.topology.regions]
            return True if all(ns > fence for ns in stats_ns) else None

        if self._poll(applied, timeout) is None:
            self.say("    (some region is still applying; reporting what is there)")

    def _heartbeat_fence(self, after_ns: int) -> int | None:
        """The newest heartbeat round's emission time if it is later than ``after_ns`` and
        applied in every partition of every region; else None."""
        emission = read_emission(self._admin(self.topology.primary_region), self.topology.project)
        if emission is None or emission.emitted_ns <= after_ns:
            return None
        positions = [
            (topic, partition)
            for topic, info in emission.topics.items()
            for partition in range(info.partitions)
        ]
        for region in self.topology.regions:
            applied = read_applied_heartbeats(self._admin(region), positions)
            if not positions or any(
                pos not in applied or applied[pos].emitted_ns < emission.emitted_ns
                for pos in positions
            ):
                return None
        return emission.emitted_ns

    def _feast_keys(self, region: str) -> dict[bytes, dict[bytes, bytes]]:
        return feast_hashes(self._admin(region), self.topology.project)

    def _report(self, primary_store: Any) -> list[RegionReport]:
        service = demo_repo.feature_service(primary_store)
        entity_rows = demo_repo.sample_entities(primary_store, service, self.repo)
        expected = demo_repo.as_json(
            primary_store.get_online_features(service, entity_rows).to_dict()
        )
        reads = dict(self._regional_reads(service.name, entity_rows))
        reference = self._feast_keys(self.topology.primary_region)
        reports = []
        for region in self.topology.regions:
            stats = self._stats(region)
            keys = self._feast_keys(region)
            reports.append(
                RegionReport(
                    region=region,
                    rows_applied=int(stats.get("rows_applied", 0)),
                    lag_p50_ms=stats.get("lag_p50_ms", 0.0),
                    lag_p99_ms=stats.get("lag_p99_ms", 0.0),
                    keys=len(keys),
                    identical=keys == reference,
                    reads_match=reads.get(region) == expected,
                )
            )
        return reports

    def _regional_reads(
        self, service: str, entity_rows: list[dict[str, Any]]
    ) -> Iterator[tuple[str, Any]]:
        """Each region's Feast SDK reads, from a child process configured as an inference
        service there (its ``feature_store.yaml`` and ``feast.env``); all regions at once."""
        rows = json.dumps(entity_rows)
        children = {}
        for region in self.topology.regions:
            repo = write_regional_repo(self.topology, region, self.state_dir / "regions" / region)
            children[region] = subprocess.Popen(
                [sys.executable, "-m", "replicator.demo_repo", str(repo.parent), service, rows],
                env=self._child_env(feast_env(self.topology, region)),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        for region, child in children.items():
            out, err = child.communicate(timeout=300)
            if child.returncode != 0:
                self.say(f"    {region}: Feast read failed: {err.decode()[-500:]}")
                yield region, None
            else:
                yield region, json.loads(out)

    def _print_table(self, reports: list[RegionReport]) -> None:
        header = (
            f"{'region':<16}{'rows applied':>14}{'lag p50':>10}{'lag p99':>10}"
            f"{'Feast keys':>12}  {'identical to primary':<22}{'Feast SDK reads':<16}"
        )
        self.say("")
        self.say(header)
        self.say("-" * len(header))
        for r in reports:
            role = " (primary)" if r.region == self.topology.primary_region else ""
            self.say(
                f"{r.region:<16}{r.rows_applied:>14,}{r.lag_p50_ms:>8.0f}ms{r.lag_p99_ms:>8.0f}ms"
                f"{r.keys:>12,}  {('yes' if r.identical else 'NO') + role:<22}"
                f"{'same as primary' if r.reads_match else 'DIFFERENT':<16}"
            )
        self.say("")
        self.say(
            "lag: from Feast's write call at the primary to the region's Redis "
            "acknowledging the batch, per batch, since each worker started."
        )

    def _serve_until_interrupted(self) -> None:
        self.helpers["consistency"] = self._spawn("consistency-serve", self._consistency("serve"))
        self.say("status page, JSON and metrics: http://127.0.0.1:9108/ (consistency serve)")
        default = self.config_path == DEFAULT_CONFIG_PATH.resolve()
        config = self.config_path
        env = "" if default else f"REPLICATOR_CONFIG={config} "
        down = "make stack-down" if default else f"replicator --config {config} stack down"
        self.say(
            "workers keep replicating; write more with Feast at the primary "
            f"(cd {self.repo.name} && {env}feast ...). Ctrl-C stops the workers, heartbeats "
            f"and checker; `{down}` stops the stack."
        )
        try:
            while all(p.poll() is None for p in self.workers.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            self.say("\nstopping workers")
        finally:
            self.stop_workers()
