"""Digest arithmetic for full divergence checks (the Python twin of ``adapters/digest.lua``).

An *entry* is what one feature view holds at one Redis key: the key and the bytes of the
view's ``_ts:<view>`` field and feature fields, in a fixed order. Its hash is

    sha1( msgpack(key) msgpack([value or false, ...]) )

with msgpack exactly as Redis's Lua ``cmsgpack.pack`` writes it (str8 for 32-255 bytes,
which msgpack-python's raw mode does not use: hence the small encoder here). One C call in
Redis, unambiguous, a missing field distinct from an empty one.

Keys fall into ``16 ** hex_digits`` buckets by the first hex digits of ``sha1(key)``, so a
key lands in the same bucket in every region. A bucket's digest is the count of its entries
and two lane sums of 24-bit slices of their hashes: a multiset hash, independent of the
order Redis scans keys in, and additive, so partial digests from scan chunks just add up.
Two regions agree on a bucket when count and lanes are equal (a differing bucket passes as
equal with odds of about 2**-48); otherwise the bucket's keys are listed and compared one by
one (the drill-down).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

LANES = 2
LANE_HEX = 6


def _mp_str(raw: bytes) -> bytes:
    n = len(raw)
    if n < 32:
        return bytes([0xA0 | n]) + raw
    if n <= 0xFF:
        return b"\xd9" + bytes([n]) + raw
    if n <= 0xFFFF:
        return b"\xda" + struct.pack(">H", n) + raw
    return b"\xdb" + struct.pack(">I", n) + raw


def _mp_array(n: int) -> bytes:
    if n <= 15:
        return bytes([0x90 | n])
    if n <= 0xFFFF:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def entry_bytes(key: bytes, values: Sequence[bytes | None]) -> bytes:
    """``cmsgpack.pack(key, values)`` as Redis's Lua writes it (missing field: false)."""
    parts = [_mp_str(key), _mp_array(len(values))]
    parts.extend(b"\xc2" if v is None else _mp_str(v) for v in values)
    return b"".join(parts)


def entry_hash(key: bytes, values: Sequence[bytes | None]) -> str:
    """Hex sha1 of an entry; ``values`` = [ts field, feature fields...] in manifest order."""
    return hashlib.sha1(entry_bytes(key, values)).hexdigest()


def bucket_of(key: bytes, hex_digits: int) -> str:
    return hashlib.sha1(key).hexdigest()[:hex_digits]


def lanes_of(hex_hash: str) -> tuple[int, ...]:
    return tuple(int(hex_hash[i * LANE_HEX : (i + 1) * LANE_HEX], 16) for i in range(LANES))


@dataclass
class BucketDigests:
    """Digests of every bucket of one view in one region, built up chunk by chunk."""

    hex_digits: int
    buckets: dict[str, list[int]]
    entries: int = 0

    @classmethod
    def empty(cls, hex_digits: int) -> BucketDigests:
        return cls(hex_digits, {})

    def add_entry(self, key: bytes, hex_hash: str) -> None:
        self._add(bucket_of(key, self.hex_digits), (1, *lanes_of(hex_hash)))

    def add_partial(self, bucket: str, lanes: Sequence[int]) -> None:
        """Merge a partial digest (count, lanes...) as returned by one scan chunk."""
        if len(lanes) != LANES + 1:
            raise ValueError(f"a partial digest has {LANES + 1} numbers, got {len(lanes)}")
        self._add(bucket, lanes)

    def _add(self, bucket: str, lanes: Sequence[int]) -> None:
        current = self.buckets.setdefault(bucket, [0] * (LANES + 1))
        for i, value in enumerate(lanes):
            current[i] += int(value)
        self.entries += int(lanes[0])

    def get(self, bucket: str) -> tuple[int, ...]:
        return tuple(self.buckets.get(bucket, (0,) * (LANES + 1)))


def mismatched_buckets(left: BucketDigests, right: BucketDigests) -> list[str]:
    """Buckets whose digests differ (present on one side only included), sorted."""
    if left.hex_digits != right.hex_digits:
        raise ValueError("digests built with different bucket widths cannot be compared")
    names = set(left.buckets) | set(right.buckets)
    return sorted(b for b in names if left.get(b) != right.get(b))


def digest_entries(
    entries: Iterable[tuple[bytes, Sequence[bytes | None]]], hex_digits: int
) -> BucketDigests:
    """Digests of (key, values) entries; entries with every value missing are not in the view."""
    digests = BucketDigests.empty(hex_digits)
    for key, values in entries:
        if any(v is not None for v in values):
            digests.add_entry(key, entry_hash(key, values))
    return digests


def diff_entries(
    reference: Mapping[bytes, str], region: Mapping[bytes, str]
) -> Iterator[tuple[bytes, str | None, str | None]]:
    """Keys whose entry hash differs: (key, reference hash or None, region hash or None)."""
    for key in sorted(set(reference) | set(region)):
        ref, reg = reference.get(key), region.get(key)
        if ref != reg:
            yield key, ref, reg
