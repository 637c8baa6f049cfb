"""One ``redis-server`` per region, loopback only, with ACL users from the topology.

Users (``docs/local-stack.md`` and ``docs/security.md`` explain why):
- writer: read, write and transactions on all keys, minus every ``@dangerous`` command
  (FLUSHALL, KEYS, CONFIG, ...), plus PING and INFO; of scripting only what redis-py's
  registered scripts use (EVALSHA, SCRIPT LOAD, SCRIPT EXISTS), plus EVALSHA_RO, with which
  the consistency checker runs its digest script read-only: no EVAL, no FUNCTION, no
  SCRIPT FLUSH. Redis 7.0 cannot limit EVALSHA to given scripts, so a writer can still
  SCRIPT LOAD its own; a script runs with the writer's command rights, no more;
- reader: read and connection commands only, minus ``@dangerous`` (KEYS): no write, no
  scripting;
- checker (optional): the reader's rights plus what the consistency checker's full check
  needs, loading its digest script and running it read-only (SCRIPT LOAD, EVALSHA_RO): no
  write, no EVAL, no EVALSHA (a script run that way could write);
- admin: everything;
- ``default``: disabled and without passwords, so no client can authenticate as it (a client
  without credentials can do nothing), yet allowed every command: Redis replays its
  append-only file as ``default``, and up to at least 7.4 re-checks ``default``'s rights at
  every ``EXEC`` of that replay and drops the transactions it may not run (redis/redis#14541,
  fixed upstream by PR #14545). Every Lua script's writes reach the file as a
  ``MULTI``/``EXEC``, so with a ``default`` of ``-@all`` a restart (even a clean one) silently
  lost every row applied since the file was last rewritten, while plain writes, such as the
  worker's applied marks, survived it (``DEFAULT_RULES``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from replicator.adapters.redis_store import connect
from replicator.config import RedisEndpoint, RedisUser, Topology
from replicator.errors import ConfigError
from replicator.secret_files import write_secret_file
from replicator.stack.pki import StackPki
from replicator.stack.prereqs import Port, env_override, port_in_use
from replicator.stack.service import Service

logger = logging.getLogger(__name__)

WRITER_RULES = (
    "~* +@read +@write +@transaction +@connection -@dangerous +ping +info"
    " +evalsha +evalsha_ro +script|load +script|exists"
)
READER_RULES = "~* -@all +@read +@connection -@dangerous"
CHECKER_RULES = f"{READER_RULES} +evalsha_ro +script|load"
ADMIN_RULES = "~* &* +@all"
ROLE_RULES = {
    "writer": WRITER_RULES,
    "reader": READER_RULES,
    "admin": ADMIN_RULES,
    "checker": CHECKER_RULES,
}
"""Rules per ``RedisEndpoint.users()`` role."""
DEFAULT_RULES = "off resetpass ~* &* +@all"
"""``off``: no login; ``resetpass``: no password; the rights: for the append-only file's
replay only (module docstring; tests/integration/test_region_lifecycle.py proves the rows
survive kill -9 and a restart)."""
PERSISTENCE = {"save": "300 1", "appendonly": "yes", "appendfsync": "everysec"}
"""Redis persistence of every region (docker-compose.yml too): an append-only file synced
every second, so a plain restart or kill -9 loses at most about a second of writes (which the
worker re-applies, docs/replication.md: self-healing), plus an RDB snapshot every 5 minutes."""


def acl_rules(endpoint: RedisEndpoint) -> dict[str, str]:
    """ACL rules per user name, without passwords (``ACL SETUSER name <rules>`` syntax)."""
    rules = {user.username: ROLE_RULES[role] for role, user in endpoint.users().items()}
    return rules | {"default": DEFAULT_RULES}


def acl_file(endpoint: RedisEndpoint) -> str:
    """An ACL file; passwords appear only as SHA-256 hashes."""
    users: dict[str, RedisUser] = {u.username: u for u in endpoint.users().values()}
    lines = []
    for name, rules in acl_rules(endpoint).items():
        user = users.get(name)
        if user is None:
            lines.append(f"user {name} {rules}")
            continue
        digest = hashlib.sha256(user.password.get_secret_value().encode()).hexdigest()
        lines.append(f"user {name} on #{digest} {rules}")
    return "\n".join(lines) + "\n"


def admin_client(endpoint: RedisEndpoint, *, timeout: float = 2.0, retries: int = 3) -> redis.Redis:
    """A client logged in as the region's admin user."""
    return connect(
        endpoint,
        endpoint.admin,
        timeout=timeout,
        connect_timeout=timeout,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries),
    )


class RedisServer(Service):
    tool = "redis-server"
    startup_timeout = 20.0

    def __init__(
        self, topology: Topology, region: str, state_dir: Path, *, pki: StackPki | None = None
    ) -> None:
        """``pki``: the certificates of a TLS port (default: the stack's, in state_dir/tls)."""
        super().__init__(state_dir / "redis" / region)
        self.region = region
        self.endpoint = topology.region(region).redis
        if self.endpoint.host not in ("127.0.0.1", "localhost"):
            raise ConfigError(
                f"regions.{region}.redis.host: the local stack runs Redis on loopback, so it "
                f"must be 127.0.0.1 (got {self.endpoint.host!r})"
            )
        self.key = f"redis:{region}"
        self.label = f"redis {region}"
        self.config_file = self.workdir / "redis.conf"
        self.acl_path = self.workdir / "users.acl"
        self.log_path = self.workdir / "redis.log"
        self.pki = pki or StackPki(state_dir / "tls")

    @property
    def ports(self) -> list[Port]:
        return [
            Port(
                self.endpoint.port,
                self.label,
                env_override("regions", self.region, "redis", "port"),
            )
        ]

    def log_files(self) -> list[Path]:
        return [self.log_path, self.output_file]

    def describe(self) -> dict[str, Any]:
        return {"host": self.endpoint.host, "port": self.endpoint.port, "tls": self.tls}

    @property
    def tls(self) -> bool:
        return self.endpoint.tls.enabled

    def listener(self) -> list[str]:
        """The port: plaintext, or TLS only (the plaintext port closed) with the stack's CA;
        client certificates are accepted and checked when offered, not required."""
        if not self.tls:
            return [f"port {self.endpoint.port}"]
        return [
            "port 0",
            f"tls-port {self.endpoint.port}",
            f'tls-cert-file "{self.pki.server_cert}"',
            f'tls-key-file "{self.pki.server_key}"',
            f'tls-ca-cert-file "{self.pki.ca_file}"',
            "tls-auth-clients optional",
        ]

    def config(self) -> str:
        return "\n".join(
            [
                "# Generated by `replicator stack`; edits are overwritten on the next start.",
                "bind 127.0.0.1",
                "protected-mode yes",
                *self.listener(),
                "daemonize no",
                f'dir "{self.workdir}"',
                f'logfile "{self.log_path}"',
                f'aclfile "{self.acl_path}"',
                *(f"{name} {value}" for name, value in PERSISTENCE.items()),
                "",
            ]
        )

    def prepare(self, tools: dict[str, str], jars: Path | None) -> list[str]:
        if self.tls:
            self.pki.ensure()
        write_secret_file(self.acl_path, acl_file(self.endpoint))
        self.config_file.write_text(self.config(), encoding="utf-8")
        return []

    def command(self, tools: dict[str, str], jars: Path | None) -> list[str]:
        return [tools["redis-server"], str(self.config_file)]

    def probe(self) -> bool:
        if not port_in_use(self.endpoint.port):
            return False
        client = admin_client(self.endpoint, timeout=1.0, retries=0)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()
