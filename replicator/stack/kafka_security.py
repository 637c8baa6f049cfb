"""The local broker's secure mode: SASL_SSL with SCRAM users and ``StandardAuthorizer`` ACLs.

Chosen by ``kafka.security.protocol: SASL_SSL`` in the topology (``PLAINTEXT`` keeps the open
broker). Then:

- clients connect on ``SASL_SSL`` only; the broker's certificate comes from the stack's CA
  (``replicator.stack.pki``);
- the KRaft controller listener is TLS with client certificates required, so only the broker
  itself (its certificate maps to principal ``User:replicator-stack``) reaches it;
- the admin SCRAM user is written into the metadata when the storage is formatted
  (``kafka-storage format --add-scram``); every other principal's secret is set through the
  admin API once the broker answers, then the topology's ACLs are applied
  (``replicator.kafka_acls``). Anything without an ACL is denied.
"""

from __future__ import annotations

from replicator.adapters.kafka_admin import KafkaAdmin
from replicator.adapters.kafka_config import client_config
from replicator.config import Topology
from replicator.config_security import Credentials
from replicator.errors import ConfigError
from replicator.kafka_acls import project_acls, required_acls
from replicator.stack.pki import SERVER_CN, StackPki

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


def admin_user(topology: Topology) -> Credentials:
    security = topology.kafka.security
    if security.protocol not in ("PLAINTEXT", "SASL_SSL"):
        raise ConfigError(
            f"kafka.security.protocol: the local stack runs PLAINTEXT or SASL_SSL "
            f"(got {security.protocol})"
        )
    if security.sasl_mechanism != "SCRAM-SHA-512":
        raise ConfigError("kafka.security.sasl_mechanism: the local stack uses SCRAM-SHA-512")
    user = topology.kafka.users.admin
    if user is None:
        raise ConfigError("kafka.users.admin is required: the local stack's broker runs SASL_SSL")
    return user


def secure_properties(
    port: int, controller_port: int, pki: StackPki, admin: Credentials
) -> dict[str, object]:
    """Broker properties that replace the plaintext listeners (they hold the admin's
    password: the file is written 0600)."""
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin.username}" password="{admin.password.get_secret_value()}";'
    )
    return {
        "listeners": f"SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{port}",
        "inter.broker.listener.name": "SASL_SSL",
        "listener.security.protocol.map": "CONTROLLER:SSL,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": pki.server_pem,
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": pki.ca_file,
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*),.*$/$1/,DEFAULT",
        "authorizer.class.name": AUTHORIZER,
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin.username};User:{SERVER_CN}",
    }


def scram_format_args(admin: Credentials) -> list[str]:
    """``kafka-storage format`` arguments that create the admin SCRAM user."""
    secret = admin.password.get_secret_value()
    return ["--add-scram", f"SCRAM-SHA-512=[name={admin.username},password={secret}]"]


def grant_project(topology: Topology) -> int:
    """Apply ``topology``'s ACLs on a running secure broker (idempotent): what a new project
    on the local stack needs, its principals being the stack's (tests and benchmarks make a
    project per run). Returns the number of ACLs; 0 on a plaintext broker."""
    if not topology.kafka.security.uses_sasl:
        return 0
    return KafkaAdmin(client_config(topology, "admin")).add_acls(required_acls(topology))


def revoke_project(topology: Topology) -> int:
    """Delete the ACLs of a throwaway project that ``grant_project`` applied, its own only
    (``project_acls``: the ones every project shares stay). Returns how many the broker
    deleted, 0 on a plaintext broker."""
    if not topology.kafka.security.uses_sasl:
        return 0
    return KafkaAdmin(client_config(topology, "admin")).remove_acls(project_acls(topology))


def provision(topology: Topology) -> list[str]:
    """Set every principal's SCRAM secret and apply the topology's ACLs the broker lacks
    (idempotent). Says what it did only when an ACL was missing (a first start, a changed
    topology), so a second ``stack up`` stays "nothing to do"."""
    admin = KafkaAdmin(client_config(topology, "admin"))
    users = [u for u in (topology.kafka.users.primary, topology.kafka.users.checker) if u]
    users += [r.kafka_user for r in topology.regions.values() if r.kafka_user is not None]
    for user in users:
        admin.set_scram_password(user.username, user.password.get_secret_value())
    missing = sorted(set(required_acls(topology)) - set(admin.acls()))
    if not missing:
        return []
    count = admin.add_acls(missing)
    return [f"kafka: {len(users)} SCRAM users set, {count} ACLs applied"]
