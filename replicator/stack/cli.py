"""``replicator stack up | down | status [--json]``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from replicator.commands import add_insecure_option, config_argument
from replicator.config import load_topology


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="run the local stack (Kafka, S3Proxy, one Redis per region) without Docker",
        description="Start, stop or inspect the local stack. State, logs and data live in "
        "the topology's stack.state_dir (default .stack). The stack runs secure (TLS, Kafka "
        "SASL and ACLs); --insecure runs it in plaintext, for debugging only.",
    )
    commands = parser.add_subparsers(dest="stack_command", metavar="ACTION", required=True)
    up = commands.add_parser("up", help="start what is not running and wait until it answers")
    up.set_defaults(handler=_up)
    down = commands.add_parser("down", help="stop every process the stack started")
    down.set_defaults(handler=_down)
    status = commands.add_parser("status", help="health, pids and ports; exit 1 if any is down")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_status)
    for action in (up, down, status):
        add_insecure_option(action)


def _stack(args: argparse.Namespace) -> Any:
    from replicator.stack.local import LocalStack  # boto3/confluent_kafka only for `stack`

    return LocalStack(load_topology(config_argument(args)), progress=_say)


def _say(message: str) -> None:
    print(message, flush=True)


def _up(args: argparse.Namespace) -> int:
    _stack(args).up()
    return 0


def _down(args: argparse.Namespace) -> int:
    _stack(args).down()
    return 0


def _status(args: argparse.Namespace) -> int:
    report = _stack(args).status()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_status(report))
    return 0 if report["ok"] else 1


def format_status(report: dict[str, Any]) -> str:
    rows = [("SERVICE", "STATE", "PID", "ADDRESS")]
    kafka = report["kafka"]
    rows.append(
        (
            "kafka",
            _state(kafka),
            _pid(kafka),
            f"{kafka['bootstrap_servers']} (controller :{kafka['controller_port']})",
        )
    )
    rows.append(("s3", _state(report["s3"]), _pid(report["s3"]), report["s3"]["endpoint_url"]))
    for region, services in report["regions"].items():
        redis = services["redis"]
        rows.append(
            (f"redis {region}", _state(redis), _pid(redis), f"{redis['host']}:{redis['port']}")
        )
    if "prometheus" in report:
        prom = report["prometheus"]
        rows.append(("prometheus", _state(prom), _pid(prom), prom["url"]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]
    lines.append(f"state dir: {report['state_dir']}")
    return "\n".join(lines)


def _state(entry: dict[str, Any]) -> str:
    return "up" if entry["ok"] else "DOWN"


def _pid(entry: dict[str, Any]) -> str:
    return str(entry["pid"]) if entry.get("pid") else "-"
