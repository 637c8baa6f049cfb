"""``replicator demo``: the whole flow on the local stack, end to end.

Stack up -> generate data -> ``feast apply`` at the primary -> registry to every region ->
one worker per region and the heartbeat emitter -> materialize and push through Feast at the
primary -> read the same entities through the Feast SDK in every region -> a table of what
reached where -> the consistency checker's report; then, until Ctrl-C, the checker's status
page. The checker runs as its own command (``consistency``): the replicator never imports it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis

from replicator.adapters.redis_store import connect, feast_hashes, worker_stats_key
from replicator.config import Topology
from replicator.regional_config import feast_env, write_regional_repo
from replicator.registry_sync import sync_once
from replicator.stack.local import LocalStack
from replicator.stack.prometheus import scrape_summary, worker_metrics_port

Say = Callable[[str], None]


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
    def __init__(self, topology: Topology, repo: Path, config_path: Path, say: Say = print) -> None:
        self.topology = topology
        self.repo = repo.resolve()
        self.config_path = config_path.resolve()
        self.say = say
        self.state_dir = Path(topology.stack.state_dir).resolve()
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.helpers: dict[str, subprocess.Popen[bytes]] = {}
        """Heartbeat emitter and checker server: stopped with the workers."""

    # Steps --------------------------------------------------------------------------------
    def run(self, *, once: bool) -> list[RegionReport]:
        started = time.monotonic()
        self.step("starting the local stack")
        LocalStack(self.topology, progress=lambda m: self.say(f"    {m}"), prometheus=True).up()
        self.step("generating feature data")
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        _generator(self.repo).generate(self.repo / "data", end=end)
        self.step("feast apply at the primary (importing Feast takes a few seconds)")
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
        store.materialize(end - timedelta(days=400), end + timedelta(seconds=1))
        fresh = self._fresh_rows(end)
        store.push("card_spending_push", fresh)
        self.say(f"    materialized 3 views and pushed {len(fresh)} fresh card aggregates")
        self.step("waiting for every region to apply them")
        self._wait_settled()
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

    def _consistency(self, *args: str) -> list[str]:
        return ["-m", "consistency.cli", "--topology", str(self.config_path), *args]

    def _consistency_report(self) -> None:
        # Staleness needs a heartbeat round applied everywhere: give the emitter a moment.
        time.sleep(2)
        done = subprocess.run(
            [sys.executable, *self._consistency("check", "--once")],
            capture_output=True,
            text=True,
            timeout=300,
        )
        for line in (done.stdout or done.stderr).splitlines():
            self.say(f"    {line}")

    def step(self, text: str) -> None:
        self.say(f"==> {text}")

    def _primary_store(self) -> Any:
        from feast import FeatureStore
        from feast.repo_config import load_repo_config
        from feast.repo_operations import apply_total

        # The replicating store in feature_store.yaml must see the demo's topology.
        os.environ["REPLICATOR_CONFIG"] = str(self.config_path)
        config = load_repo_config(self.repo, self.repo / "feature_store.yaml")
        cwd = Path.cwd()
        os.chdir(self.repo)
        sys.path.insert(0, str(self.repo))  # as the feast CLI does, to import the definitions
        try:
            apply_total(config, self.repo, skip_source_validation=True)
        finally:
            sys.path.remove(str(self.repo))
            os.chdir(cwd)
        return FeatureStore(repo_path=str(self.repo))

    def _fresh_rows(self, end: datetime) -> Any:
        import pandas as pd

        frame = pd.read_parquet(self.repo / "data" / "card_spending_stats.parquet")
        frame = frame.drop_duplicates("card_id").head(200).copy()
        now = pd.Timestamp(datetime.now(UTC))
        frame["event_timestamp"] = now
        frame["created"] = now
        frame["txn_count_1h"] = frame["txn_count_1h"] + 1
        return frame

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
        log = open(self._log_dir() / f"{name}.log", "ab")  # noqa: SIM115
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
        config = self.topology.region(region).redis
        return connect(config, config.admin)

    def _stats(self, region: str) -> dict[str, float]:
        raw = cast(dict[bytes, bytes], self._admin(region).hgetall(worker_stats_key(region)))
        return {k.decode(): float(v) for k, v in raw.items()}

    def _wait_assigned(self, timeout: float = 60) -> None:
        """Until every worker holds its partitions, so the lag shown is replication's own."""
        deadline = time.monotonic() + timeout
        waiting = set(self.topology.regions)
        while waiting and time.monotonic() < deadline:
            self._check_workers_alive()
            waiting = {r for r in waiting if not self._stats(r).get("assigned_partitions")}
            time.sleep(0.2)

    def _check_workers_alive(self) -> None:
        for region, proc in self.workers.items():
            if proc.poll() is not None:
                raise SystemExit(
                    f"worker for {region} exited ({proc.returncode}); see "
                    f"{self._log_dir() / f'worker-{region}.log'}"
                )

    def _wait_settled(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        last: dict[str, float] = {}
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            self._check_workers_alive()
            now = {r: self._stats(r).get("rows_applied", 0.0) for r in self.topology.regions}
            if now != last or not all(now.values()):
                last, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since > 2:
                return
            time.sleep(0.25)
        self.say("    (some region is still applying; reporting what is there)")

    def _feast_keys(self, region: str) -> dict[bytes, dict[bytes, bytes]]:
        return feast_hashes(self._admin(region), self.topology.project)

    def _report(self, primary_store: Any) -> list[RegionReport]:
        from feast import FeatureStore

        entity_rows = _sample_entities(self.repo)
        service = primary_store.get_feature_service("fraud_model_v1")
        expected = primary_store.get_online_features(service, entity_rows).to_dict()
        reference = self._feast_keys(self.topology.primary_region)
        reports = []
        for region in self.topology.regions:
            repo = write_regional_repo(self.topology, region, self.state_dir / "regions" / region)
            os.environ.update(feast_env(self.topology, region))
            regional = FeatureStore(repo_path=str(repo.parent))
            reads = regional.get_online_features(service, entity_rows).to_dict()
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
                    reads_match=reads == expected,
                )
            )
        return reports

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
        self.say(
            "workers keep replicating; write more with Feast at the primary "
            f"(cd {self.repo.name} && feast ...). Ctrl-C stops the workers, heartbeats and "
            "checker; `make stack-down` stops the stack."
        )
        try:
            while all(p.poll() is None for p in self.workers.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            self.say("\nstopping workers")
        finally:
            self.stop_workers()


def _generator(repo: Path) -> Any:
    sys.path.insert(0, str(repo))
    try:
        import generate_data
    finally:
        sys.path.remove(str(repo))
    return generate_data


def _sample_entities(repo: Path, count: int = 25) -> list[dict[str, Any]]:
    import pandas as pd

    pairs = pd.read_parquet(repo / "data" / "card_merchant_affinity.parquet")
    pairs = pairs[["card_id", "merchant_id"]].drop_duplicates().head(count)
    return [{"card_id": int(c), "merchant_id": str(m)} for c, m in pairs.itertuples(index=False)]
