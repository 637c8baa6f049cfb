"""Decoding the few byte layouts the checker reads, without protobuf or Feast.

- ``_ts:<view>``: a serialized ``google.protobuf.Timestamp`` (field 1 seconds, field 2 nanos,
  both varints, each omitted when 0).
- the replicator's version hash values: defined once, in ``replicator.core.version``.
- SCAN patterns: Feast key prefixes are binary and may contain glob characters.
"""

from __future__ import annotations


def decode_timestamp(raw: bytes | None) -> tuple[int, int] | None:
    """(seconds, nanos) of a serialized Timestamp; None when absent or not a Timestamp."""
    if raw is None:
        return None
    seconds = nanos = 0
    i = 0
    try:
        while i < len(raw):
            tag = raw[i]
            i += 1
            value, i = _varint(raw, i)
            if tag == 0x08:
                seconds = value - (1 << 64) if value >= 1 << 63 else value
            elif tag == 0x10:
                nanos = value
            else:
                return None
    except IndexError:
        return None
    return seconds, nanos


def encode_timestamp(seconds: int, nanos: int = 0) -> bytes:
    out = b""
    if seconds:
        out += b"\x08" + _encode_varint(seconds & ((1 << 64) - 1))
    if nanos:
        out += b"\x10" + _encode_varint(nanos)
    return out


def _varint(raw: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


_GLOB = {ord(c): b"\\" + c.encode() for c in "*?[]\\"}


def glob_escape(raw: bytes) -> bytes:
    return b"".join(_GLOB.get(b, bytes([b])) for b in raw)


def view_key_pattern(key_prefix: bytes, project: str) -> bytes:
    """SCAN MATCH pattern of every Redis key that may hold a view: prefix ... project."""
    return glob_escape(key_prefix) + b"*" + glob_escape(project.encode())
