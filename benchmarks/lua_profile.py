"""Where a region's Redis spends its time applying rows: ``python -m benchmarks.lua_profile``.

An investigation, not one of ``make bench``'s figures. A private ``redis-server`` (no other
users, no ACL) runs the real ``apply_rows.lua`` and two cut-down scripts on the same
payloads, so the differences split the per-row cost:

- ``unpack_only``: ``cmsgpack.unpack`` of the batch, nothing written;
- ``unpack_hset``: unpack, then one ``HSET key _ts:<view> ts f1 v1 ...`` per row, no
  validation and no last-writer-wins bookkeeping: the least any Lua apply can cost;
- ``unpack_hget_hset``: the same, plus one ``HGET key <field>`` per row first: the least an
  apply that keeps each key's version inside the key's own hash can cost (one read, one write);
- ``apply_rows``: the real script (validation, version reads, comparison, version writes);
- ``client_hset``: the same HSETs sent by redis-py in a pipeline, no script.

The figure is Redis CPU (``INFO cpu``, user + sys) per row, best of 3, so it does not depend
on the client; rows/s at 100% of one core is its inverse.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from benchmarks.dataset import FastRows
from replicator.adapters.redis_store import script_source
from replicator.core import wire

UNPACK_ONLY = """
local ok, batch = pcall(cmsgpack.unpack, ARGV[1])
return {#batch[4], 0}
"""
UNPACK_HSET = """
local call, unpack = redis.call, unpack
local batch = cmsgpack.unpack(ARGV[1])
local view, fields, rows = batch[2], batch[3], batch[4]
local nf = #fields
local ts_field = '_ts:' .. view
local args = {}
for i = 1, #rows do
  local r = rows[i]
  args[1] = r[1]; args[2] = ts_field; args[3] = r[2]
  for j = 1, nf do args[2 * j + 2] = fields[j]; args[2 * j + 3] = r[6 + j] end
  call('HSET', unpack(args, 1, 3 + 2 * nf))
end
return {#rows, 0}
"""


UNPACK_HGET_HSET = UNPACK_HSET.replace(
    "local r = rows[i]", "local r = rows[i]\n  local stored = call('HGET', r[1], '\\255v')"
)


def profile(rows: int, batch_sizes: list[int], repetitions: int = 3) -> dict[str, Any]:
    script = script_source("apply_rows.lua")
    scripts = {
        "unpack_only": UNPACK_ONLY,
        "unpack_hset": UNPACK_HSET,
        "unpack_hget_hset": UNPACK_HGET_HSET,
        "apply_rows": script,
    }
    fast = FastRows("luaprofile", "lua_fv")
    with _redis_server() as client:
        out: dict[str, Any] = {}
        for size in batch_sizes:
            batches = [
                b for _, b in fast.batches(rows, partitions=1, max_rows=size, fingerprint="x")
            ]
            payloads = [(wire.encode_rows(b)[1], b.max_event_s) for b in batches]
            figures: dict[str, float] = {}
            for name, text in scripts.items():
                sha = client.script_load(text)
                figures[name] = _best_cpu(client, repetitions, rows, _scripted(sha, payloads))
            out[f"rows_per_batch_{size}"] = figures
        ts_field = b"_ts:lua_fv"
        plain = [
            (row.key, {ts_field: row.ts, **dict(zip(b.fields, row.values, strict=True))})
            for _, b in fast.batches(rows, partitions=1, max_rows=rows, fingerprint="x")
            for row in b.rows
        ]
        out["client_hset"] = _best_cpu(client, repetitions, rows, _pipelined(plain))
    return out


def _scripted(sha: str, payloads: list[tuple[bytes, int]]) -> Callable[[redis.Redis], None]:
    def send(client: redis.Redis) -> None:
        for first in range(0, len(payloads), 50):
            with client.pipeline(transaction=False) as pipe:
                for offset, (payload, max_ev) in enumerate(payloads[first : first + 50]):
                    pipe.evalsha(sha, 0, payload, first + offset, "0", "vkey", "lua_fv", max_ev)
                pipe.execute()

    return send


def _pipelined(rows: list[tuple[bytes, dict[bytes, bytes]]]) -> Callable[[redis.Redis], None]:
    def send(client: redis.Redis) -> None:
        for first in range(0, len(rows), 10_000):
            with client.pipeline(transaction=False) as pipe:
                for key, mapping in rows[first : first + 10_000]:
                    pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
                pipe.execute()

    return send


def _best_cpu(
    client: redis.Redis, repetitions: int, rows: int, send: Callable[[redis.Redis], None]
) -> float:
    """Least Redis CPU microseconds per row over the repetitions, on an empty database."""
    best = float("inf")
    for _ in range(repetitions):
        client.flushall()
        before = _cpu(client)
        send(client)
        best = min(best, _cpu(client) - before)
    return round(best * 1e6 / rows, 2)


def _cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


class _redis_server:
    def __enter__(self) -> redis.Redis:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        self._dir = tempfile.TemporaryDirectory(prefix="lua-profile-")
        command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", self._dir.name]
        self._proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        self.client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.client.ping()
                return self.client
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self._proc.terminate()
        self._proc.wait(10)
        self._dir.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lua_profile", description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    figures = profile(args.rows, [33, 2000])
    print("Redis CPU, microseconds per row (best of 3):")
    print(json.dumps(figures, indent=2))
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
