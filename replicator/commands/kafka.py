"""``replicator kafka acls [--apply]``: the Kafka ACLs the topology's principals need."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from replicator.config import load_topology
from replicator.kafka_acls import kafka_acls_commands, required_acls


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kafka",
        help="Kafka security: the ACLs a deployment needs",
        description="Kafka administration derived from the topology (docs/security.md).",
    )
    commands = parser.add_subparsers(dest="kafka_command", metavar="COMMAND", required=True)
    acls = commands.add_parser(
        "acls",
        help="print (or apply) the ACLs of the primary, each region's worker and the checker",
        description=(
            "Print the ALLOW ACLs the topology's principals need, as kafka-acls.sh commands "
            "(or JSON). With --apply, create them through the admin API as kafka.users.admin "
            "and set nothing else. Everything not listed is denied by a broker running "
            "StandardAuthorizer with allow.everyone.if.no.acl.found=false."
        ),
    )
    acls.add_argument("--json", action="store_true", help="one JSON object per ACL")
    acls.add_argument(
        "--command-config",
        default="admin.properties",
        metavar="FILE",
        help="client properties file named in the printed commands (default: admin.properties)",
    )
    acls.add_argument("--apply", action="store_true", help="create them on the broker")
    acls.set_defaults(handler=_acls)


def _acls(args: argparse.Namespace) -> int:
    topology = load_topology(args.config)
    acls = required_acls(topology)
    if args.apply:
        from replicator.adapters.kafka_admin import KafkaAdmin
        from replicator.adapters.kafka_config import client_config

        count = KafkaAdmin(client_config(topology, "admin")).add_acls(acls)
        print(f"applied {count} ACLs")
        return 0
    if args.json:
        for acl in acls:
            print(json.dumps(asdict(acl)))
        return 0
    if not acls:
        print("# no Kafka principals in the topology (kafka.users, regions.*.kafka_user)")
    for line in kafka_acls_commands(acls, topology.kafka.bootstrap_servers, args.command_config):
        print(line)
    return 0
