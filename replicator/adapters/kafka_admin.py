"""Kafka administration as the ``admin`` principal: SCRAM users and ACLs.

Used by the local stack (users and ACLs from the topology) and by operators rotating a
SCRAM secret (``set_scram_password``): Kafka keeps one credential per user and mechanism, so
a rotation is upsert-then-restart-clients; sessions already authenticated stay open
(docs/security.md, "Rotation").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from replicator.adapters.kafka_config import KafkaConnection, client_settings
from replicator.errors import PublishError
from replicator.kafka_acls import Acl

TIMEOUT = 30.0
SCRAM_ITERATIONS = 8192


def _binding(acl: Acl) -> AclBinding:
    return AclBinding(*_pattern(acl))


def _binding_filter(acl: Acl) -> AclBindingFilter:
    """Matches exactly ``acl``'s binding (for ``delete_acls``)."""
    return AclBindingFilter(*_pattern(acl))


def _pattern(acl: Acl) -> tuple[Any, ...]:
    return (
        ResourceType[acl.resource_type],
        acl.resource_name,
        ResourcePatternType[acl.pattern_type],
        acl.principal,
        "*",
        AclOperation[acl.operation],
        AclPermissionType.ALLOW,
    )


class KafkaAdmin:
    """A thin AdminClient wrapper; errors become ``PublishError`` (the broker refused)."""

    def __init__(self, connection: KafkaConnection) -> None:
        self._admin = AdminClient(client_settings(connection))

    def set_scram_password(
        self, username: str, password: str, mechanism: str = "SCRAM-SHA-512"
    ) -> None:
        """Create the user or replace its secret (the old one stops working for new logins)."""
        info = ScramCredentialInfo(ScramMechanism[mechanism.replace("-", "_")], SCRAM_ITERATIONS)
        upsert = UserScramCredentialUpsertion(username, info, password.encode())
        for future in self._admin.alter_user_scram_credentials([upsert]).values():
            self._wait(future, f"setting the SCRAM secret of {username}")

    def add_acls(self, acls: Iterable[Acl]) -> int:
        """Create the ACLs (idempotent); returns how many were requested."""
        bindings = [_binding(acl) for acl in acls]
        if not bindings:
            return 0
        for binding, future in self._admin.create_acls(bindings, request_timeout=TIMEOUT).items():
            self._wait(future, f"creating ACL {binding}")
        return len(bindings)

    def remove_acls(self, acls: Iterable[Acl]) -> int:
        """Delete exactly these ACLs (absent ones are no error); returns how many the broker
        deleted."""
        filters = [_binding_filter(acl) for acl in acls]
        if not filters:
            return 0
        deleted = 0
        for binding, future in self._admin.delete_acls(filters, request_timeout=TIMEOUT).items():
            deleted += len(self._wait(future, f"deleting ACL {binding}"))
        return deleted

    def acls(self) -> list[Acl]:
        """Every ALLOW ACL the broker holds."""
        anything: Any = None  # the filter's wildcard; the stubs type it as str
        match_all = AclBindingFilter(
            ResourceType.ANY,
            anything,
            ResourcePatternType.ANY,
            anything,
            anything,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        bindings = self._wait(self._admin.describe_acls(match_all), "listing ACLs")
        return sorted(
            Acl(
                b.principal,
                b.restype.name,
                b.resource_pattern_type.name,
                b.name,
                b.operation.name,
            )
            for b in bindings
            if b.permission_type == AclPermissionType.ALLOW
        )

    @staticmethod
    def _wait(future: Any, what: str) -> Any:
        try:
            return future.result(timeout=TIMEOUT)
        except KafkaException as exc:
            raise PublishError(f"kafka: {what} failed: {exc.args[0]}") from exc
