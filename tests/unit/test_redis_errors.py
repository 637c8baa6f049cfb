"""Which Redis errors a retry can fix: decided by redis-py's class or the Redis error code."""

from __future__ import annotations

import pytest
import redis
from redis._parsers.base import BaseParser

from replicator.adapters.redis_store import error_code, is_transient


def reply(text: str) -> redis.RedisError:
    """The exception redis-py makes of this error reply from the server."""
    error = BaseParser.parse_error(text)
    assert isinstance(error, redis.RedisError)
    return error


@pytest.mark.parametrize(
    "text",
    [
        "LOADING Redis is loading the dataset in memory",
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
        "OOM command not allowed when used memory > 'maxmemory'.",
        "READONLY You can't write against a read only replica.",
        "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist",
        "NOSCRIPT No matching script. Please use EVAL.",
        "NOPERM User writer has no permissions to run the 'hset' command",
        "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
        "TRYAGAIN Multiple keys request during rehashing of slot",
    ],
)
def test_the_servers_state_is_transient(text: str) -> None:
    assert is_transient(reply(text))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        (
            "ERR user_script:151: too many results to unpack script: 9a3f, on @user_script:151.",
            "ERR",
        ),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", "WRONGTYPE"),
        ("MALFORMED row 3 must be {key, ts, 4 numbers, 2 values}", "MALFORMED"),
        ("ERR Error running script (call to f_0a1b): @user_script:1: Script attempted", "ERR"),
    ],
)
def test_a_scripts_error_about_its_record_is_deterministic(text: str, code: str) -> None:
    error = reply(text)
    assert not is_transient(error)
    assert error_code(error) == code


def test_unreachable_and_timeouts_are_transient() -> None:
    assert is_transient(redis.ConnectionError("Connection refused"))
    assert is_transient(redis.TimeoutError("Timeout reading from socket"))
    assert not is_transient(redis.DataError("Invalid input of type: 'dict'"))
