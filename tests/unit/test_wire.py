"""Wire format v1: what the primary writes, a region reads back; anything else is rejected."""

from __future__ import annotations

import random

import msgpack
import pytest
from fakes import FIELDS, VIEW, make_batch, make_row, with_header

from replicator.core import wire
from replicator.core.records import DeleteView, Heartbeat, Kind
from replicator.errors import MalformedRecord

BATCH = make_batch(
    [make_row(b"k1", 1_700_000_000, 5, 1_700_000_001, 6), make_row(b"k2\x00\xff", 1_700_000_123)],
    fingerprint="fp-abc",
    registry_version="reg-42",
    published_ns=1_700_000_200_000_000_123,
)


def decode(headers: wire.Headers | None, payload: bytes) -> object:
    """What a region does with a record: headers first, then the payload of that kind."""
    header = wire.read_header(headers)
    if header.kind is Kind.ROWS:
        return wire.decode_rows(header, payload)
    if header.kind is Kind.DELETE_VIEW:
        return wire.decode_delete_view(header, payload)
    return wire.decode_heartbeat(payload)


def rows_payload(*parts: object) -> bytes:
    return msgpack.packb(list(parts), use_bin_type=False)


def good_row(*values: object) -> list[object]:
    return [b"key", b"ts", 1, 2, 3, 4, *(values or (b"a", b"b"))]


# Round trips -----------------------------------------------------------------------------
def test_row_batch_round_trips_with_every_attribute() -> None:
    headers, payload = wire.encode_rows(BATCH)
    assert decode(headers, payload) == BATCH


def test_empty_row_batch_round_trips() -> None:
    batch = make_batch([])
    assert decode(*wire.encode_rows(batch)) == batch


def test_row_headers_route_without_the_payload() -> None:
    headers, _ = wire.encode_rows(BATCH)
    assert wire.read_header(headers) == wire.RecordHeader(
        kind=Kind.ROWS,
        feature_view=VIEW,
        schema_fingerprint="fp-abc",
        registry_version="reg-42",
        rows=2,
        max_event_s=1_700_000_123,
        published_ns=1_700_000_200_000_000_123,
    )
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in headers)


def test_delete_view_round_trips() -> None:
    delete = DeleteView(VIEW, FIELDS, b"\x02\x00\x00\x00driver_id", "proj", published_ns=77)
    headers, payload = wire.encode_delete_view(delete)
    header = wire.read_header(headers)
    assert (header.kind, header.feature_view, header.published_ns) == (Kind.DELETE_VIEW, VIEW, 77)
    assert decode(headers, payload) == delete


def test_heartbeat_round_trips() -> None:
    heartbeat = Heartbeat(sequence=12, emitted_ns=1_700_000_000_123_456_789)
    headers, payload = wire.encode_heartbeat(heartbeat)
    header = wire.read_header(headers)
    assert (header.kind, header.published_ns) == (Kind.HEARTBEAT, heartbeat.emitted_ns)
    assert decode(headers, payload) == heartbeat


def test_payload_byte_strings_use_the_raw_family_redis_lua_can_read() -> None:
    # Redis 7.0's cmsgpack refuses msgpack's bin types: re-packing the decoded payload with
    # raw strings only must give back the very same bytes.
    for _, payload in (
        wire.encode_rows(make_batch([make_row(b"\x00\xff" * 40, 1)])),
        wire.encode_delete_view(DeleteView(VIEW, FIELDS, b"\x00\xff", "proj")),
    ):
        assert msgpack.packb(msgpack.unpackb(payload, raw=True), use_bin_type=False) == payload


# Malformed headers -----------------------------------------------------------------------
ROW_HEADERS, ROW_PAYLOAD = wire.encode_rows(BATCH)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(None, id="no headers"),
        pytest.param([], id="empty headers"),
        pytest.param(with_header(ROW_HEADERS, wire.H_WIRE, None), id="no wire version"),
        pytest.param(with_header(ROW_HEADERS, wire.H_WIRE, b"2"), id="wire version 2"),
        pytest.param(with_header(ROW_HEADERS, wire.H_KIND, None), id="no kind"),
        pytest.param(with_header(ROW_HEADERS, wire.H_KIND, b"upsert"), id="unknown kind"),
        pytest.param(with_header(ROW_HEADERS, wire.H_ROWS, b"two"), id="non-numeric row count"),
        pytest.param(with_header(ROW_HEADERS, wire.H_MAX_EVENT_S, b"1e9"), id="bad max event"),
        pytest.param(with_header(ROW_HEADERS, wire.H_PUBLISHED_NS, b""), id="empty published"),
        pytest.param(with_header(ROW_HEADERS, wire.H_VIEW, None), id="no view (payload differs)"),
        pytest.param(with_header(ROW_HEADERS, wire.H_VIEW, b"other"), id="view differs"),
    ],
)
def test_bad_headers_are_malformed(headers: wire.Headers | None) -> None:
    with pytest.raises(MalformedRecord):
        decode(headers, ROW_PAYLOAD)


# Malformed payloads ----------------------------------------------------------------------
ROWS_HEADER = wire.read_header(ROW_HEADERS)
VIEW_B = VIEW.encode()


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="not msgpack"),
        pytest.param(ROW_PAYLOAD[:-3], id="truncated"),
        pytest.param(ROW_PAYLOAD + b"\x01", id="trailing bytes"),
        pytest.param(msgpack.packb({"rows": []}), id="a map"),
        pytest.param(msgpack.packb(1), id="a number"),
        pytest.param(msgpack.packb([]), id="empty array"),
        pytest.param(rows_payload(2, VIEW_B, list(FIELDS), []), id="wire version 2"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS)), id="three items"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), [], 0), id="five items"),
        pytest.param(rows_payload(1, VIEW_B, b"fields", []), id="fields not an array"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), {}), id="rows not an array"),
        pytest.param(rows_payload(1, b"other", list(FIELDS), []), id="view differs from header"),
        pytest.param(rows_payload(1, 7, list(FIELDS), []), id="view not a string"),
        pytest.param(rows_payload(1, b"\xff\xfe", list(FIELDS), []), id="view not utf-8"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), [b"row"]), id="row not an array"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), [good_row(b"a")]), id="row too short"),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [good_row(b"a", b"b", b"c")]), id="row too long"
        ),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [good_row(), good_row(b"a")]),
            id="second row too short",
        ),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [[7, b"ts", 1, 2, 3, 4, b"a", b"b"]]),
            id="key not bytes",
        ),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [[b"k", None, 1, 2, 3, 4, b"a", b"b"]]),
            id="ts not bytes",
        ),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [good_row(b"a", 5)]), id="value an integer"
        ),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), [good_row(b"a", None)]), id="value nil"),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [[b"k", b"ts", b"1", 2, 3, 4, b"a", b"b"]]),
            id="event seconds not an integer",
        ),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [[b"k", b"ts", 1.5, 2, 3, 4, b"a", b"b"]]),
            id="event seconds a float",
        ),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [[b"k", b"ts", 1, 2, 3, None, b"a", b"b"]]),
            id="created nanos nil",
        ),
    ],
)
def test_bad_row_payloads_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedRecord):
        wire.decode_rows(ROWS_HEADER, payload)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(rows_payload(1, VIEW_B, [1, 2], [good_row()]), id="field keys integers"),
        pytest.param(
            rows_payload(1, VIEW_B, list(FIELDS), [[b"k", b"ts", True, 0, 0, 0, b"a", b"b"]]),
            id="event seconds a boolean",
        ),
        pytest.param(
            msgpack.packb([1, VIEW_B, list(FIELDS), [good_row()]], use_bin_type=True),
            id="bin-typed strings",
        ),
    ],
)
def test_decoder_rejects_what_the_apply_script_rejects(payload: bytes) -> None:
    with pytest.raises(MalformedRecord):
        wire.decode_rows(ROWS_HEADER, payload)


DELETE_HEADERS, DELETE_PAYLOAD = wire.encode_delete_view(DeleteView(VIEW, FIELDS, b"p", "proj"))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\xc1", id="not msgpack"),
        pytest.param(rows_payload(2, VIEW_B, list(FIELDS), b"p", b"proj"), id="wire version 2"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), b"p"), id="four items"),
        pytest.param(rows_payload(1, VIEW_B, b"f", b"p", b"proj"), id="fields not an array"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), 5, b"proj"), id="prefix not bytes"),
        pytest.param(rows_payload(1, VIEW_B, list(FIELDS), b"p", 5), id="project not a string"),
        pytest.param(rows_payload(1, 5, list(FIELDS), b"p", b"proj"), id="view not a string"),
    ],
)
def test_bad_delete_view_payloads_are_malformed(payload: bytes) -> None:
    with pytest.raises(MalformedRecord):
        decode(DELETE_HEADERS, payload)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"", id="empty"),
        pytest.param(msgpack.packb([1, 2]), id="two items"),
        pytest.param(msgpack.packb([1, 2, 3, 4]), id="four items"),
        pytest.param(msgpack.packb([1, b"2", 3]), id="sequence not an integer"),
        pytest.param(msgpack.packb([1, 2, 3.5]), id="emitted_ns a float"),
        pytest.param(msgpack.packb([9, 2, 3]), id="wire version 9"),
    ],
)
def test_bad_heartbeat_payloads_are_malformed(payload: bytes) -> None:
    headers, _ = wire.encode_heartbeat(Heartbeat(1, 2))
    with pytest.raises(MalformedRecord):
        decode(headers, payload)


# split_rows and partition_for ------------------------------------------------------------
def test_split_rows_keeps_order_and_attributes() -> None:
    rows = [make_row(b"k%d" % i, 100 + i) for i in range(7)]
    batch = make_batch(rows, fingerprint="fp-x", registry_version="r-9", published_ns=55)
    keep = [i % 3 != 1 for i in range(7)]
    kept, rejected = wire.split_rows(batch, keep)
    assert kept.rows == tuple(r for r, k in zip(rows, keep, strict=True) if k)
    assert rejected.rows == tuple(r for r, k in zip(rows, keep, strict=True) if not k)
    for part in (kept, rejected):
        assert (part.feature_view, part.fields, part.schema_fingerprint) == (VIEW, FIELDS, "fp-x")
        assert (part.registry_version, part.published_ns) == ("r-9", 55)
    # What the worker applies after a split is a valid record in its own right.
    assert decode(*wire.encode_rows(kept)) == kept


def test_split_rows_refuses_a_mask_of_the_wrong_length() -> None:
    with pytest.raises(ValueError):
        wire.split_rows(make_batch([make_row(b"k", 1)]), [True, False])


def test_partition_for_is_stable_and_in_range() -> None:
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randint(0, 40)) for _ in range(500)]
    for partitions in (1, 3, 6, 64):
        seen = {wire.partition_for(k, partitions) for k in keys}
        assert seen <= set(range(partitions))
        if partitions > 1:
            assert len(seen) == partitions  # 500 random keys reach every partition
    # Stable across processes and releases (no salted hash): the primary and every region
    # must agree on a key's partition without talking to each other.
    key = b"driver_id\x00\x01global_fraud"
    assert [wire.partition_for(key, n) for n in (6, 12, 1000)] == [3, 9, 749]


def test_the_primary_feast_settings_travel_in_the_headers() -> None:
    from dataclasses import replace

    from replicator.core.records import Row, RowBatch

    row = Row(b"k", b"ts", 1, 0, 1, 0, (b"v",))
    batch = RowBatch("v", (b"f" * 4,), (row,), "fp", published_ns=5)
    for ttl, lead in ((None, 0), (0, 0), (3600, 9 * 3600)):
        sent = replace(batch, key_ttl_seconds=ttl, accepted_lead_s=lead)
        headers, payload = wire.encode_rows(sent)
        header = wire.read_header(headers)
        assert (header.key_ttl_seconds, header.accepted_lead_s) == (ttl, lead)
        assert wire.decode_rows(header, payload) == sent
