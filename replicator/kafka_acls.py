"""The Kafka ACLs a deployment needs, derived from the topology (no I/O).

Least privilege per principal (docs/security.md):

- primary (``kafka.users.primary``): create, describe, write and read the configs of every
  feature topic of the project (prefix ``<topic_prefix>.<project>.``; the publisher reads each
  topic's record limit); heartbeats go into those same topics; write and describe the
  transactional ids of the Feast publisher (prefix ``feast-primary-<project>-``);
- each region's worker (``regions.R.kafka_user``): read and describe only the topics of the
  views R subscribes to (the whole project prefix for ``*``), read its own consumer group
  (prefix ``<group>`` so ``<group>-rebuild`` and ``-redrive`` are covered), write the
  dead-letter topic and read it (``replicator region redrive`` replays it as the worker);
- checker (``kafka.users.checker``): read and describe the project's topics and their
  configs, describe the workers' groups (committed offsets), read its own probe groups.
  It writes nothing.

``replicator kafka acls`` prints them as ``kafka-acls.sh`` commands; the local stack applies
them with ``adapters.kafka_admin``. Anything not allowed here is denied
(``allow.everyone.if.no.acl.found=false``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from replicator.config import Topology

ResourceType = Literal["TOPIC", "GROUP", "CLUSTER", "TRANSACTIONAL_ID"]
PatternType = Literal["LITERAL", "PREFIXED"]

CHECKER_PROBE_GROUP_PREFIX = "consistency-probe-"
"""Group id prefix of the checker's probe consumer (consistency/adapters/kafka_log.py)."""


@dataclass(frozen=True, order=True)
class Acl:
    principal: str
    """``User:<name>``."""
    resource_type: ResourceType
    pattern_type: PatternType
    resource_name: str
    operation: str
    """Kafka operation name: READ, WRITE, CREATE, DESCRIBE, DESCRIBE_CONFIGS..."""


def _grant(
    user: str, kind: ResourceType, pattern: PatternType, name: str, *operations: str
) -> list[Acl]:
    return [Acl(f"User:{user}", kind, pattern, name, op) for op in operations]


def project_topic_prefix(topology: Topology) -> str:
    return f"{topology.kafka.topic_prefix}.{topology.project}."


def primary_client_id(topology: Topology) -> str:
    """``client.id`` of the primary's Feast publisher; its transactional ids are this, ``-``
    and a unique suffix (unless the store's ``transactional_id`` names another)."""
    return f"feast-primary-{topology.project}"


def required_acls(topology: Topology) -> list[Acl]:
    """Every ALLOW ACL the topology's principals need, sorted. Principals without
    credentials in the topology (plaintext or pass-through auth) are left out."""
    prefix = project_topic_prefix(topology)
    users = topology.kafka.users
    acls: list[Acl] = []
    if users.primary is not None:
        name = users.primary.username
        acls += _grant(
            name, "TOPIC", "PREFIXED", prefix, "CREATE", "DESCRIBE", "WRITE", "DESCRIBE_CONFIGS"
        )
        transactions = f"{primary_client_id(topology)}-"
        acls += _grant(name, "TRANSACTIONAL_ID", "PREFIXED", transactions, "WRITE", "DESCRIBE")
    if users.checker is not None:
        name = users.checker.username
        acls += _grant(name, "TOPIC", "PREFIXED", prefix, "READ", "DESCRIBE", "DESCRIBE_CONFIGS")
        groups = f"{topology.worker.consumer_group_prefix}-{topology.project}-"
        acls += _grant(name, "GROUP", "PREFIXED", groups, "DESCRIBE")
        acls += _grant(name, "GROUP", "PREFIXED", CHECKER_PROBE_GROUP_PREFIX, "READ")
    for region in topology.regions:
        acls += worker_acls(topology, region)
    return sorted(set(acls))


def worker_acls(topology: Topology, region: str) -> list[Acl]:
    """What region ``region``'s worker principal may do (none without ``kafka_user``)."""
    config = topology.region(region)
    if config.kafka_user is None:
        return []
    name = config.kafka_user.username
    acls: list[Acl] = []
    if "*" in config.feature_views:
        acls += _grant(
            name, "TOPIC", "PREFIXED", project_topic_prefix(topology), "READ", "DESCRIBE"
        )
    else:
        for view in config.feature_views:
            acls += _grant(name, "TOPIC", "LITERAL", topology.topic_for(view), "READ", "DESCRIBE")
    dead = topology.kafka.dead_letter_topic
    acls += _grant(name, "TOPIC", "LITERAL", dead, "CREATE", "DESCRIBE", "WRITE", "READ")
    acls += _grant(name, "GROUP", "PREFIXED", topology.consumer_group(region), "READ")
    return acls


def project_acls(topology: Topology) -> list[Acl]:
    """The ACLs of ``required_acls`` that name the project (its topics, consumer groups and
    transactional ids); the rest (the dead-letter topic, the checker's probe groups) every
    project on the broker shares."""
    return [acl for acl in required_acls(topology) if topology.project in acl.resource_name]


def kafka_acls_commands(acls: list[Acl], bootstrap: str, config_file: str) -> list[str]:
    """One ``kafka-acls.sh --add`` command per ACL (``config_file``: the admin's client
    properties with its SASL/TLS settings)."""
    flag = {
        "TOPIC": "--topic",
        "GROUP": "--group",
        "CLUSTER": "--cluster",
        "TRANSACTIONAL_ID": "--transactional-id",
    }
    lines = []
    for acl in acls:
        operation = "".join(word.title() for word in acl.operation.split("_"))
        resource = [flag[acl.resource_type]]
        if acl.resource_type != "CLUSTER":
            resource.append(acl.resource_name)
        parts = [
            "kafka-acls.sh",
            "--bootstrap-server",
            bootstrap,
            "--command-config",
            config_file,
            "--add",
            "--allow-principal",
            acl.principal,
            "--operation",
            operation,
            *resource,
            "--resource-pattern-type",
            acl.pattern_type.lower(),
        ]
        lines.append(shlex.join(parts))
    return lines
