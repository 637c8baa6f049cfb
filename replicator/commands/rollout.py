"""``replicator rollout start | status | rollback``: canary rollouts of registry or model."""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from replicator.config import Topology, load_topology

DEFAULT_HEALTH = "consistency check --once --json"


def register(subparsers: Any) -> None:
    rollout = subparsers.add_parser("rollout", help="canary rollouts of registry or model versions")
    commands = rollout.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)

    start = commands.add_parser(
        "start",
        help="release a version to a canary region, watch it, then to every region",
        description=(
            "Releases VERSION to the canary region, asks the consistency checker about that "
            "region every --interval for --wait, then releases it region by region, checking "
            "each. A region out of bounds stops the rollout and restores the previous version "
            "everywhere it reached. Without --version, the primary's current registry is "
            "snapshotted and rolled out. Exit code 0 when completed, 3 when rolled back."
        ),
    )
    start.add_argument("--version", help="registry version (default: snapshot the primary's)")
    start.add_argument(
        "--model", metavar="NAME", help="roll out model NAME instead of the registry"
    )
    start.add_argument("--canary", required=True, help="region that gets the version first")
    start.add_argument("--wait", default="10m", help="how long to watch the canary (e.g. 90s, 10m)")
    start.add_argument("--interval", default="5s", help="time between checks while watching")
    start.add_argument(
        "--health-command",
        default=DEFAULT_HEALTH,
        help=f"prints the checker's JSON report (default: {DEFAULT_HEALTH!r})",
    )
    start.set_defaults(handler=_start)

    status = commands.add_parser("status", help="a rollout's steps (default: the latest)")
    status.add_argument("--id")
    status.set_defaults(handler=_status)

    rollback = commands.add_parser(
        "rollback", help="restore the previous version everywhere a rollout reached"
    )
    rollback.add_argument("--id")
    rollback.set_defaults(handler=_rollback)


def _artifact(topology: Topology, kind: str, name: str | None) -> Any:
    from replicator.models import ModelStore
    from replicator.registry_sync import RegistryReleaser
    from replicator.rollout import ModelArtifact, RegistryArtifact

    if kind == "model":
        assert name
        return ModelArtifact(ModelStore(topology), name)
    return RegistryArtifact(RegistryReleaser(topology))


def _rollouts(args: argparse.Namespace, topology: Topology, artifact: Any) -> Any:
    from replicator.rollout import CheckerHealth, RolloutLog, Rollouts, parse_duration

    command = shlex.split(getattr(args, "health_command", DEFAULT_HEALTH))
    return Rollouts(
        topology,
        artifact,
        CheckerHealth(command),
        RolloutLog(topology),
        check_interval=parse_duration(getattr(args, "interval", "5s")),
    )


def _start(args: argparse.Namespace) -> int:
    from replicator.errors import RolloutInProgress
    from replicator.registry_sync import RegistryReleaser
    from replicator.rollout import RolloutLog, parse_duration

    topology = load_topology(args.config)
    running = RolloutLog(topology).in_progress()
    if running is not None:  # a second one would hide it from the schema gate and registry sync
        raise RolloutInProgress(
            f"{running.running_text()}: one rollout at a time", rollout=running.id
        )
    version = args.version
    if version is None and args.model:
        print("replicator: error: --model needs --version")
        return 2
    if version is None:
        version = RegistryReleaser(topology).snapshot().version
    artifact = _artifact(topology, "model" if args.model else "registry", args.model)
    rollout = _rollouts(args, topology, artifact).start(
        version, args.canary, parse_duration(args.wait)
    )
    print(f"rollout {rollout.id}: {rollout.status}")
    return 0 if rollout.status == "completed" else 3


def _status(args: argparse.Namespace) -> int:
    from replicator.rollout import RolloutLog

    topology = load_topology(args.config)
    rollout = RolloutLog(topology).load(args.id)
    print(
        f"rollout {rollout.id}: {rollout.kind} {rollout.name} {rollout.version}, canary "
        f"{rollout.canary}, started by {rollout.started_by} at {rollout.started_at}: "
        f"{rollout.status}"
    )
    for step in rollout.steps:
        print(
            f"  {step['at']}  {step['region']:<16} {step['action']:<8} {step['outcome']:<9} "
            f"{step['detail']}"
        )
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from replicator.rollout import RolloutLog

    topology = load_topology(args.config)
    rollout = RolloutLog(topology).load(args.id)
    artifact = _artifact(topology, rollout.kind, rollout.name)
    done = _rollouts(args, topology, artifact).rollback(rollout)
    print(f"rollout {done.id}: {done.status}")
    return 0
