"""Feast's Redis keys for the rows of one write call, made cheaply and checked against Feast.

Feast's ``_redis_key`` (``serialize_entity_key`` followed by the project name) is the
definition of a row's Redis key, and costs about 6 us a row: half of the publisher's CPU. For
the shapes it serializes simply (entity-key serialization versions 2 and 3; join values of
type string, bytes, int32, int64 or unix timestamp; distinct join-key names, as many as
values) the key is a constant part per shape (the join-key names, sorted as Feast sorts
them) followed by each value's type tag, length and bytes, then the project name. A template
per shape builds it in well under a microsecond.

Feast stays the definition: in every call the first row of each shape, the last row and a
deterministic sample are also serialized by Feast's own function, and on any difference the
whole call uses Feast's function (with one warning per process), so a Feast upgrade that
changes the format cannot silently change the bytes. Rows of any other shape always go
through Feast's function, as do calls with other serialization versions and calls of at most
``SAMPLE_ROWS`` rows (every row would be checked).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence

from feast.infra.online_stores.helpers import _redis_key
from feast.protos.feast.types.EntityKey_pb2 import EntityKey as EntityKeyProto
from feast.protos.feast.types.Value_pb2 import Value as ValueProto
from feast.protos.feast.types.Value_pb2 import ValueType

log = logging.getLogger(__name__)

FAST_VERSIONS = (2, 3)
"""Entity-key serialization versions the templates cover; others always use Feast's."""

SAMPLE_ROWS = 8
"""Rows of a call, evenly spaced, checked against Feast besides each shape's first and the
last row."""

_U32 = struct.Struct("<I").pack
_I32 = struct.Struct("<i").pack
_I64 = struct.Struct("<q").pack

Encoder = Callable[[ValueProto], bytes]
"""One join value as Feast serializes it: type tag, length, bytes."""


def _string(tag: bytes) -> Encoder:
    def encode(value: ValueProto) -> bytes:
        data = value.string_val.encode("utf8")
        return tag + _U32(len(data)) + data

    return encode


def _bytes(tag: bytes) -> Encoder:
    def encode(value: ValueProto) -> bytes:
        data = value.bytes_val
        return tag + _U32(len(data)) + data

    return encode


def _fixed(head: bytes, field: str, pack: Callable[[int], bytes]) -> Encoder:
    def encode(value: ValueProto) -> bytes:
        return head + pack(getattr(value, field))

    return encode


def _tag(value_type: int, length: int | None = None) -> bytes:
    return _U32(value_type) + (b"" if length is None else _U32(length))


_ENCODERS: dict[str, Encoder] = {
    "string_val": _string(_tag(ValueType.STRING)),
    "bytes_val": _bytes(_tag(ValueType.BYTES)),
    "int32_val": _fixed(_tag(ValueType.INT32, 4), "int32_val", _I32),
    "int64_val": _fixed(_tag(ValueType.INT64, 8), "int64_val", _I64),
    "unix_timestamp_val": _fixed(_tag(ValueType.UNIX_TIMESTAMP, 8), "unix_timestamp_val", _I64),
}
"""Value kinds (``WhichOneof("val")``) the templates cover, for versions 2 and 3 alike."""

Shape = tuple[tuple[str, ...], tuple[str | None, ...]]
"""Join-key names in the entity key's order and the kinds of their values."""

Template = Callable[[Sequence[ValueProto]], bytes]
"""A shape's key builder: the entity key's values (in the entity key's order) to the key."""


def template(shape: Shape, version: int, project: str) -> Template | None:
    """The key builder of one shape, or None when Feast's function must make its keys: no
    join keys, names and values of different lengths, a repeated name (Feast raises
    ``TypeError``), a value kind or version not covered."""
    names, kinds = shape
    if version not in FAST_VERSIONS or not names or len(names) != len(kinds):
        return None
    if len(set(names)) != len(names):
        return None
    found = [_ENCODERS.get(kind or "") for kind in kinds]
    order = sorted(range(len(names)), key=names.__getitem__)  # Feast sorts by name
    encoders = [(i, encode) for i in order if (encode := found[i]) is not None]
    if len(encoders) != len(names):
        return None
    head = [_U32(len(names))] if version > 2 else []
    for i in order:
        name = names[i].encode("utf8")
        head += (
            [_U32(ValueType.STRING), _U32(len(name))] if version > 2 else [_tag(ValueType.STRING)]
        )
        head.append(name)
    prefix = b"".join(head)
    suffix = project.encode("utf-8")
    if len(encoders) == 1:
        encode = encoders[0][1]
        return lambda values: prefix + encode(values[0]) + suffix

    def build(values: Sequence[ValueProto]) -> bytes:
        return prefix + b"".join([encode(values[i]) for i, encode in encoders]) + suffix

    return build


class _Warned:
    fallback = False


def redis_keys(project: str, entity_keys: Sequence[EntityKeyProto], version: int) -> list[bytes]:
    """Feast's Redis key (``_redis_key(project, key, version)``) of each entity key, in order.

    Equal to Feast's function for every row: covered shapes are built by templates, checked
    against Feast per call (see the module docstring); the rest come from Feast's function.
    Raises what Feast's function raises for a key it cannot serialize (``ValueError`` for an
    unsupported value type, ``TypeError`` for repeated join-key names).
    """
    if version not in FAST_VERSIONS or len(entity_keys) <= SAMPLE_ROWS:
        # A small call would have every row checked: Feast's function alone is cheaper.
        return [_feast_key(project, key, version) for key in entity_keys]
    templates: dict[Shape, Template | None] = {}
    firsts: list[int] = []
    keys: list[bytes] = []
    try:
        for index, key in enumerate(entity_keys):
            names, values = key.join_keys, key.entity_values
            if len(names) == 1 and len(values) == 1:
                values = (values[0],)
                shape: Shape = ((names[0],), (values[0].WhichOneof("val"),))
            else:
                shape = (tuple(names), tuple([v.WhichOneof("val") for v in values]))
            try:
                build = templates[shape]
            except KeyError:
                build = templates[shape] = template(shape, version, project)
                firsts.append(index)
            keys.append(_feast_key(project, key, version) if build is None else build(values))
    except (UnicodeError, ValueError, TypeError, IndexError):
        return [_feast_key(project, key, version) for key in entity_keys]
    if not _agrees(project, entity_keys, keys, version, firsts):
        return [_feast_key(project, key, version) for key in entity_keys]
    return keys


def _agrees(
    project: str,
    entity_keys: Sequence[EntityKeyProto],
    keys: list[bytes],
    version: int,
    firsts: list[int],
) -> bool:
    """Whether Feast's function gives ``keys`` for each shape's first row, the last row and
    ``SAMPLE_ROWS`` evenly spaced rows; warns once per process when it does not."""
    count = len(keys)
    step = max(1, count // SAMPLE_ROWS)
    checked = sorted({*firsts, *range(0, count, step), count - 1} - {-1})
    for index in checked:
        expected = _feast_key(project, entity_keys[index], version)
        if keys[index] != expected:
            if not _Warned.fallback:
                _Warned.fallback = True
                log.warning(
                    "Redis key template differs from Feast's serialize_entity_key (version %d, "
                    "join keys %s): using Feast's function for every row of such calls (slower). "
                    "Has Feast's key format changed?",
                    version,
                    list(entity_keys[index].join_keys),
                )
            return False
    return True


def _feast_key(project: str, key: EntityKeyProto, version: int) -> bytes:
    return _redis_key(project, key, entity_key_serialization_version=version)
