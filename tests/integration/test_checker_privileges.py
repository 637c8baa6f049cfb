"""The consistency checker's Redis user on real Redis (docs/security.md, "Redis"): it reads
and runs its digest script read-only, and can write nothing, not even through a script.
That the checker works end to end as this user is tests/integration/test_consistency.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from consistency.config import ConsistencySettings
from consistency.ports import ViewLayout
from consistency.wiring import region_reader
from replicator.config import Topology

REGION = "eu-west-1"
WRITE_SCRIPT = "return redis.call('SET', KEYS[1], 'forged')"


@pytest.fixture
def key(redis_admin: Callable[[str], redis.Redis]) -> Iterator[str]:
    name = f"_replicator:test-checker:{uuid.uuid4().hex}"
    yield name
    redis_admin(REGION).delete(name)


def test_the_checker_user_cannot_write_a_key_or_run_a_write_command(
    redis_user: Callable[[str, str], redis.Redis], key: str
) -> None:
    checker, admin = redis_user(REGION, "checker"), redis_user(REGION, "admin")
    for command in [
        ("SET", key, "v"),
        ("HSET", key, "f", "v"),
        ("DEL", key),
        ("EXPIRE", key, "60"),
        ("MULTI",),
        ("EVAL", WRITE_SCRIPT, "1", key),
        ("EVAL_RO", "return 1", "0"),
        ("FUNCTION", "FLUSH"),
        ("FCALL", "f", "0"),
        ("SCRIPT", "FLUSH"),
        ("FLUSHALL",),
        ("KEYS", "*"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("ACL", "SETUSER", "checker", "+@all"),
    ]:
        with pytest.raises(redis.exceptions.NoPermissionError):
            checker.execute_command(*command)
    assert admin.exists(key) == 0


def test_the_checker_user_cannot_write_through_a_script(
    redis_user: Callable[[str, str], redis.Redis], key: str
) -> None:
    checker, admin = redis_user(REGION, "checker"), redis_user(REGION, "admin")
    sha = checker.script_load(WRITE_SCRIPT)
    with pytest.raises(redis.exceptions.NoPermissionError):
        checker.evalsha(sha, 1, key)
    # EVALSHA_RO is allowed, and Redis refuses the script's write (the user's ACL is checked
    # first; a read-only script could not write even for a user that may).
    refused = "can't run this command|[Ww]rite commands are not allowed"
    with pytest.raises(redis.exceptions.ResponseError, match=refused):
        checker.evalsha_ro(sha, 1, key)
    assert admin.exists(key) == 0


def test_the_checker_reads_and_digests_a_view_as_its_user(
    topology: Topology, redis_user: Callable[[str, str], redis.Redis]
) -> None:
    admin = redis_user(REGION, "admin")
    project = f"checker_{uuid.uuid4().hex[:8]}"
    view = ViewLayout("driver_stats", b"\x02\x00\x00\x00checkeruser", (b"\x01\x02\x03\x04",))
    keys = [view.key_prefix + str(i).encode() + project.encode() for i in range(3)]
    for i, name in enumerate(keys):
        admin.hset(name, mapping={view.ts_field: b"\x08\x01", view.fields[0]: str(i)})
    reader = region_reader(topology, REGION, ConsistencySettings())
    try:
        checker = topology.region(REGION).redis.checker
        assert checker is not None
        assert reader.client.connection_pool.connection_kwargs["username"] == checker.username
        digests = reader.scan_digests(view, project, 2)
        assert digests.keys == 3 and digests.digests.entries == 3
        listed = reader.scan_buckets(view, project, 2, list(digests.digests.buckets))
        assert sorted(listed) == sorted(keys)
        rows = reader.read_rows(view, keys, topology.kafka.partitions)
        assert [row.values[1] for row in rows] == [b"0", b"1", b"2"]
    finally:
        reader.close()
        admin.delete(*keys)
