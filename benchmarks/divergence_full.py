"""``divergence_full``: a full divergence check of N keys in three regions (target <= 30 s
for 1,000,000 keys), and the keys scanned per second.

Three throwaway ``redis-server`` processes stand in for the regions (the stack's Redis is
shared with tests and other benchmarks: a million keys in each would get in their way).
Keys have Feast's shape: binary entity-key prefix + id + project, ``_ts:<view>`` and nine
4-byte feature fields. One region is left identical to the reference, the other gets known
damage (conflicting, missing and extra keys); the check must find exactly that.

Baseline: the same comparison done client-side (pipelined HMGET of every key in every region,
hashed in Python), measured on a slice and extrapolated.

Standalone (the benchmarks runner is still being written):
    python -m benchmarks.divergence_full [--quick]
``run(quick)`` returns {"unit", "value", "baselines", "params", "target", "met", ...}.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from benchmarks.processes import free_port, redis_server_command
from consistency.adapters.memory import MemoryLog, MemoryManifest
from consistency.adapters.redis_region import RedisRegion
from consistency.checker import Checker, Scope
from consistency.config import ConsistencySettings, FullSettings
from consistency.core.digest import entry_hash
from consistency.ports import ViewLayout
from replicator.core.wire import partition_for

NAME = "divergence_full"
TARGET_SECONDS = 30.0
PROJECT = "bench_divergence"
PREFIX = b"\x02\x00\x00\x00\x06\x00\x00\x00card_id"
VIEW = ViewLayout(
    "card_spending_stats",
    PREFIX,
    tuple(sorted(hashlib.sha1(b"f%d" % i).digest()[:4] for i in range(9))),
)
REGIONS = ("ref", "damaged", "clean")
DAMAGE = {"conflicting": 100, "missing": 100, "extra": 50}

# Fills keys server-side: Python would spend a minute per million keys just sending them.
FILL_LUA = """
local prefix, project, first, last = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local nf = #ARGV - 4
local function varint(n)
  local out = {}
  repeat
    local b = n % 128
    n = math.floor(n / 128)
    if n > 0 then b = b + 128 end
    out[#out + 1] = string.char(b)
  until n == 0
  return table.concat(out)
end
for i = first, last do
  local key = prefix .. struct.pack('>I8', i) .. project
  local args = {key, '_ts:card_spending_stats', '\\8' .. varint(1790000000 + i % 86400)}
  for j = 1, nf do
    args[#args + 1] = ARGV[4 + j]
    args[#args + 1] = '\\33' .. struct.pack('<d', i * 0.37 + j)
  end
  redis.call('HSET', unpack(args))
end
return last - first + 1
"""


def key_of(i: int) -> bytes:
    return PREFIX + i.to_bytes(8, "big") + PROJECT.encode()


@contextmanager
def redis_servers(count: int) -> Iterator[list[int]]:
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server not found: run `make setup`")
    root = Path(tempfile.mkdtemp(prefix="bench-divergence-"))
    procs, ports = [], []
    try:
        for i in range(count):
            port = free_port()
            workdir = root / str(i)
            workdir.mkdir()
            procs.append(
                subprocess.Popen(
                    redis_server_command(port, workdir),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            ports.append(port)
        for port in ports:
            _wait_ping(port)
        yield ports
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


def _wait_ping(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if redis.Redis(port=port).ping():
                return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def fill(port: int, keys: int, chunk: int = 50_000) -> None:
    client = redis.Redis(port=port, socket_timeout=600)
    script = client.register_script(FILL_LUA)
    for first in range(0, keys, chunk):
        last = min(keys, first + chunk) - 1
        script(args=[PREFIX, PROJECT, first, last, *VIEW.fields])
    client.close()


def damage(port: int, keys: int) -> None:
    client: Any = redis.Redis(port=port)  # binary keys: redis-py's hints want str
    step = keys // (DAMAGE["conflicting"] + DAMAGE["missing"] + 1)
    picked = [key_of(i * step + 7) for i in range(DAMAGE["conflicting"] + DAMAGE["missing"])]
    with client.pipeline(transaction=False) as pipe:
        for key in picked[: DAMAGE["conflicting"]]:
            pipe.hset(key, VIEW.fields[3], b"\x21corrupted")
        for key in picked[DAMAGE["conflicting"] :]:
            pipe.delete(key)
        for i in range(DAMAGE["extra"]):
            pipe.hset(
                key_of(keys + 1000 + i), mapping={VIEW.ts_field: b"\x08\x01", VIEW.fields[0]: b"x"}
            )
        pipe.execute()
    client.close()


def checker_for(ports: list[int], partitions: int = 6) -> Checker:
    scope = Scope(
        project=PROJECT,
        topic_prefix="feast",
        partitions=partitions,
        primary_region="ref",
        reference_region="ref",
        subscriptions={r: ("*",) for r in REGIONS},
        groups={r: f"g-{r}" for r in REGIONS},
    )
    settings = ConsistencySettings(full=FullSettings(bucket_hex_digits=3, scan_count=2000))
    regions = {
        name: RedisRegion(
            name, functools.partial(redis.Redis, port=port, socket_timeout=600), scan_count=2000
        )
        for name, port in zip(REGIONS, ports, strict=True)
    }
    return Checker(
        scope,
        settings,
        regions=regions,
        log_admin=MemoryLog(),
        manifest=MemoryManifest({VIEW.name: VIEW}),
        partition_of=partition_for,
    )


def client_side_keys_per_second(ports: list[int], sample: int) -> float:
    """Baseline: read every key of a slice in every region client-side and compare hashes."""
    fields = list(VIEW.read_fields)
    keys = [key_of(i) for i in range(sample)]
    started = time.perf_counter()

    def read(port: int) -> dict[bytes, str]:
        client: Any = redis.Redis(port=port)  # binary keys: redis-py's hints want str
        out = {}
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            with client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hmget(key, fields)
                for key, values in zip(chunk, pipe.execute(), strict=True):
                    out[key] = entry_hash(key, values)
        client.close()
        return out

    with ThreadPoolExecutor(max_workers=len(ports)) as pool:
        sides = list(pool.map(read, ports))
    _ = [k for k in keys if len({side[k] for side in sides}) > 1]
    return len(ports) * sample / (time.perf_counter() - started)


def run(quick: bool = False) -> dict[str, Any]:
    keys = 100_000 if quick else 1_000_000
    with redis_servers(len(REGIONS)) as ports:
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(lambda p: fill(p, keys), ports))
        fill_seconds = time.perf_counter() - began
        damage(ports[1], keys)
        checker = checker_for(ports)
        started = time.perf_counter()
        found = checker.measure_divergence("full")
        seconds = time.perf_counter() - started
        damaged = found[("damaged", VIEW.name)].report
        clean = found[("clean", VIEW.name)].report
        scanned = damaged.reference_keys + damaged.keys_checked + clean.keys_checked
        correct = (damaged.conflicting, damaged.missing, damaged.extra) == tuple(
            DAMAGE.values()
        ) and clean.diverged == 0
        baseline_kps = client_side_keys_per_second(ports, min(keys, 100_000))
        for region in checker.regions.values():
            region.close()
    keys_per_second = scanned / seconds
    return {
        "unit": "s",
        "value": round(seconds, 2),
        "keys_per_second": round(keys_per_second),
        "baselines": {
            "client_side_hmget_compare_s": round(scanned / baseline_kps, 2),
            "client_side_hmget_keys_per_second": round(baseline_kps),
        },
        "params": {
            "keys_per_region": keys,
            "regions": len(REGIONS),
            "fields_per_key": len(VIEW.read_fields),
            "bucket_hex_digits": 3,
            "scan_count": 2000,
            "damage": DAMAGE,
            "mismatched_buckets": damaged.mismatched_buckets,
            "fill_seconds": round(fill_seconds, 1),
            "found": {
                "conflicting": damaged.conflicting,
                "missing": damaged.missing,
                "extra": damaged.extra,
                "clean_region_diverged": clean.diverged,
            },
            "correct": correct,
        },
        "target": f"<= {TARGET_SECONDS:.0f} s for 1,000,000 keys x 3 regions",
        "met": bool(correct and seconds <= TARGET_SECONDS * keys / 1_000_000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.divergence_full")
    parser.add_argument("--quick", action="store_true", help="100,000 keys instead of 1,000,000")
    print(json.dumps({NAME: run(parser.parse_args().quick)}, indent=2))


if __name__ == "__main__":
    main()
