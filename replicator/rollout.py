"""Canary rollouts of a registry or model version, recorded step by step in the bucket.

``start`` releases the version to the canary region, watches that region's health (the
consistency checker's bounds) for the wait, then releases region by region, checking each.
An unhealthy region stops the rollout and puts every region it reached back on the version
it had before. Every step (who, what, when, outcome) is written to
``rollouts/<project>/<id>.json`` in the primary bucket as it happens, so ``status`` shows a rollout
in progress and ``rollback`` can undo one that stopped half way.
"""

from __future__ import annotations

import json
import logging
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from replicator.adapters.s3 import S3ObjectStore
from replicator.config import Topology
from replicator.core.ports import ObjectStore
from replicator.errors import ConfigError
from replicator.models import ModelStore, who
from replicator.registry_sync import RegistryReleaser

log = logging.getLogger(__name__)


class Artifact(Protocol):
    kind: str
    name: str

    def live_version(self, region: str) -> str | None: ...
    def release(self, version: str, region: str) -> None: ...


class RegistryArtifact:
    kind = "registry"

    def __init__(self, releaser: RegistryReleaser) -> None:
        self._releaser = releaser
        self.name = releaser.project

    def live_version(self, region: str) -> str | None:
        manifest = self._releaser.live(region)
        return manifest["version"] if manifest else None

    def release(self, version: str, region: str) -> None:
        self._releaser.release(self._releaser.load(version), [region])


class ModelArtifact:
    kind = "model"

    def __init__(self, store: ModelStore, name: str) -> None:
        self._store = store
        self.name = name

    def live_version(self, region: str) -> str | None:
        live = self._store.live(region, self.name)
        return live["version"] if live else None

    def release(self, version: str, region: str) -> None:
        self._store.release(self._store.load(self.name, version), [region])


class Health(Protocol):
    def check(self, region: str) -> tuple[bool, str]:
        """Whether the region is within its bounds, and why not."""


class CheckerHealth:
    """Asks the consistency checker (``consistency check --once --json``), in a subprocess:
    the replicator never imports the checker. Version skew is not held against a region: a
    rollout creates it on purpose; what it watches is the region's data (staleness,
    divergence, freshness)."""

    IGNORED = frozenset({"version_skew"})

    def __init__(self, command: Sequence[str]) -> None:
        self._command = list(command)

    def check(self, region: str) -> tuple[bool, str]:
        try:
            done = subprocess.run(self._command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"cannot run {' '.join(self._command)}: {exc}"
        try:
            report = json.loads(done.stdout)
            region_report = report["regions"][region]
        except (ValueError, KeyError, TypeError):
            return False, f"checker gave no status for {region}: {done.stderr.strip()[-300:]}"
        if region_report.get("errors"):
            return False, f"not measurable: {'; '.join(region_report['errors'])[:500]}"
        violations = [
            v
            for v in report.get("violations", [])
            if v.get("region") == region and v.get("measure") not in self.IGNORED
        ]
        if not violations:
            return True, "within bounds"
        return False, f"violated: {json.dumps(violations)[:500]}"


@dataclass
class Rollout:
    id: str
    kind: str
    name: str
    version: str
    canary: str
    order: list[str]
    wait_seconds: float
    started_by: str
    started_at: str
    status: str = "running"
    previous: dict[str, str | None] = field(default_factory=dict)
    reached: list[str] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)

    def running_text(self) -> str:
        """What refusals say of a running rollout: which it is, and how to end the wait."""
        return (
            f"{self.kind} rollout {self.id} ({self.name} {self.version}, canary {self.canary}) "
            f"is in progress; wait for it (`replicator rollout status --id {self.id}`) or end "
            f"it (`replicator rollout rollback --id {self.id}`)"
        )


class RolloutLog:
    """Rollout records in the primary bucket, under ``rollouts/<project>/``: one
    ``<id>.json`` per rollout and ``latest`` naming the newest. S3 failures raise
    ``ObjectStoreUnavailable`` / ``ObjectStoreRefused``."""

    def __init__(self, topology: Topology, *, store: ObjectStore | None = None) -> None:
        self._store = store or S3ObjectStore.at(topology.region(topology.primary_region).s3)
        self._prefix = f"rollouts/{topology.project}/"

    def save(self, rollout: Rollout) -> None:
        body = json.dumps(asdict(rollout), indent=2).encode()
        self._store.put(f"{self._prefix}{rollout.id}.json", body, content_type="application/json")
        self._store.put(f"{self._prefix}latest", rollout.id.encode())

    def in_progress(self, kind: str | None = None) -> Rollout | None:
        """The latest rollout when it is of ``kind`` (``registry``, ``model``; None: any) and
        still ``running`` (also one whose process died: ``rollback`` ends it); else None.
        Only the latest counts: ``rollout start`` refuses while one runs."""
        latest = self._store.get(f"{self._prefix}latest")
        if latest is None:
            return None
        rollout = self.load(latest.decode())
        if kind is not None and rollout.kind != kind:
            return None
        return rollout if rollout.status == "running" else None

    def load(self, rollout_id: str | None = None) -> Rollout:
        if rollout_id is None:
            latest = self._store.get(f"{self._prefix}latest")
            if latest is None:
                raise ConfigError("no rollout recorded yet")
            rollout_id = latest.decode()
        body = self._store.get(f"{self._prefix}{rollout_id}.json")
        if body is None:
            raise ConfigError(f"no rollout {rollout_id}")
        try:
            return Rollout(**json.loads(body))
        except (ValueError, TypeError):
            raise ConfigError(
                f"{self._store.where(f'{self._prefix}{rollout_id}.json')} is not a rollout record"
            ) from None


class Rollouts:
    def __init__(
        self,
        topology: Topology,
        artifact: Artifact,
        health: Health,
        records: RolloutLog,
        *,
        say: Callable[[str], None] = print,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        check_interval: float = 5.0,
    ) -> None:
        self.topology = topology
        self.artifact = artifact
        self.health = health
        self.records = records
        self.say = say
        self.sleep = sleep
        self.clock = clock
        self.check_interval = check_interval

    def start(self, version: str, canary: str, wait_seconds: float) -> Rollout:
        self.topology.region(canary)  # names the regions when it is not one
        order = [canary, *(r for r in self.topology.regions if r != canary)]
        rollout = Rollout(
            id=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6],
            kind=self.artifact.kind,
            name=self.artifact.name,
            version=version,
            canary=canary,
            order=order,
            wait_seconds=wait_seconds,
            started_by=who(),
            started_at=datetime.now(UTC).isoformat(),
            previous={r: self.artifact.live_version(r) for r in order},
        )
        self._step(rollout, "-", "start", "ok", f"{rollout.kind} {rollout.name} {version}")
        for region in order:
            self.artifact.release(version, region)
            rollout.reached.append(region)
            self._step(rollout, region, "release", "ok", f"{version} live")
            watch = wait_seconds if region == canary else 0.0
            healthy, detail = self._watch(region, watch)
            self._step(rollout, region, "check", "ok" if healthy else "violated", detail)
            if not healthy:
                self._restore(rollout, f"{region} out of bounds")
                rollout.status = "rolled_back"
                self._save(rollout)
                return rollout
        rollout.status = "completed"
        self._step(rollout, "-", "finish", "ok", f"{version} live in {len(order)} regions")
        return rollout

    def rollback(self, rollout: Rollout) -> Rollout:
        self._restore(rollout, "rollback requested")
        rollout.status = "rolled_back"
        self._save(rollout)
        return rollout

    def _watch(self, region: str, seconds: float) -> tuple[bool, str]:
        deadline = self.clock() + seconds
        while True:
            healthy, detail = self.health.check(region)
            if not healthy or self.clock() >= deadline:
                return healthy, detail
            self.sleep(min(self.check_interval, max(0.0, deadline - self.clock())))

    def _restore(self, rollout: Rollout, why: str) -> None:
        for region in reversed(rollout.reached):
            previous = rollout.previous.get(region)
            if previous is None:
                self._step(rollout, region, "restore", "skipped", f"{why}; no earlier version")
                continue
            self.artifact.release(previous, region)
            self._step(rollout, region, "restore", "ok", f"{why}; {previous} live again")

    def _step(self, rollout: Rollout, region: str, action: str, outcome: str, detail: str) -> None:
        rollout.steps.append(
            {
                "at": datetime.now(UTC).isoformat(),
                "by": who(),
                "region": region,
                "action": action,
                "outcome": outcome,
                "detail": detail,
            }
        )
        self.say(f"{region:<16} {action:<8} {outcome:<9} {detail}")
        self._save(rollout)

    def _save(self, rollout: Rollout) -> None:
        self.records.save(rollout)
        log.info(
            "rollout %s: %s",
            rollout.id,
            rollout.status,
            extra={"event": "rollout_step", "rollout": rollout.id, "status": rollout.status},
        )


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``1h`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        if text and text[-1] in units:
            return float(text[:-1]) * units[text[-1]]
        return float(text)
    except ValueError:
        raise ConfigError(f"bad duration {text!r}: use e.g. 30s, 10m, 1h") from None
