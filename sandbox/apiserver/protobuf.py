"""Decode the few protobuf request bodies kubectl's typed clients send.

``kubectl create namespace``, ``auth whoami`` and ``auth can-i`` post
``application/vnd.kubernetes.protobuf`` bodies and cannot fall back to JSON.  The
envelope is the magic ``k8s\\0`` followed by a ``runtime.Unknown`` (1 typeMeta
{1 apiVersion, 2 kind}, 2 raw); ``raw`` is the object's own message.  Field numbers
come from kubernetes/api ``generated.proto`` and apimachinery ``meta/v1``.
"""

from __future__ import annotations

from typing import Any

from sandbox.apiserver import status

MAGIC = b"k8s\x00"

# A schema maps a field number to (json name, kind): kind is "str", "int", "bool",
# a nested schema dict, ("map", None) for map<string,string>, or ("repeated", kind).
OBJECT_META = {
    1: ("name", "str"),
    2: ("generateName", "str"),
    3: ("namespace", "str"),
    11: ("labels", ("map", None)),
    12: ("annotations", ("map", None)),
    14: ("finalizers", ("repeated", "str")),
}
RESOURCE_ATTRIBUTES = {
    1: ("namespace", "str"),
    2: ("verb", "str"),
    3: ("group", "str"),
    4: ("version", "str"),
    5: ("resource", "str"),
    6: ("subresource", "str"),
    7: ("name", "str"),
}
NON_RESOURCE_ATTRIBUTES = {1: ("path", "str"), 2: ("verb", "str")}
LABEL_SELECTOR = {1: ("matchLabels", ("map", None))}
CONTAINER = {
    1: ("name", "str"),
    2: ("image", "str"),
    3: ("command", ("repeated", "str")),
    4: ("args", ("repeated", "str")),
    6: ("ports", ("repeated", {1: ("name", "str"), 3: ("containerPort", "int"), 4: ("protocol", "str")})),
    7: ("env", ("repeated", {1: ("name", "str"), 2: ("value", "str")})),
}
POD_TEMPLATE = {1: ("metadata", OBJECT_META), 2: ("spec", {2: ("containers", ("repeated", CONTAINER))})}
SCHEMAS: dict[str, dict] = {
    # NB: only the fields `kubectl create deployment` fills in
    "Deployment": {
        1: ("metadata", OBJECT_META),
        2: ("spec", {1: ("replicas", "int"), 2: ("selector", LABEL_SELECTOR), 3: ("template", POD_TEMPLATE)}),
    },
    "Namespace": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("finalizers", ("repeated", "str"))})},
    "SelfSubjectReview": {1: ("metadata", OBJECT_META)},
    "SelfSubjectAccessReview": {
        1: ("metadata", OBJECT_META),
        2: (
            "spec",
            {1: ("resourceAttributes", RESOURCE_ATTRIBUTES), 2: ("nonResourceAttributes", NON_RESOURCE_ATTRIBUTES)},
        ),
    },
    "SelfSubjectRulesReview": {1: ("metadata", OBJECT_META), 2: ("spec", {1: ("namespace", "str")})},
    "ConfigMap": {1: ("metadata", OBJECT_META), 2: ("data", ("map", None))},
    "Secret": {
        1: ("metadata", OBJECT_META),
        2: ("data", ("map", None)),
        3: ("type", "str"),
        4: ("stringData", ("map", None)),
    },
    "ServiceAccount": {1: ("metadata", OBJECT_META)},
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        num, wire = tag >> 3, tag & 7
        val: int | bytes
        if wire == 0:
            val, pos = _varint(buf, pos)
        elif wire == 2:
            n, pos = _varint(buf, pos)
            val, pos = buf[pos : pos + n], pos + n
        elif wire == 1:
            val, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == 5:
            val, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.append((num, val))
    return out


def _bytes(val: int | bytes) -> bytes:
    """A length-delimited field's value; ValueError (so a 400) when the body has a number there."""
    if isinstance(val, int):
        raise ValueError(f"expected a length-delimited field, got the number {val}")
    return val


def decode_message(buf: bytes, schema: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, val in fields(buf):
        if num not in schema:
            continue
        name, kind = schema[num]
        if kind == "str":
            text = val.decode() if isinstance(val, bytes) else str(val)
            if text:  # NB: proto2 sends empty strings as present; drop them
                out[name] = text
        elif kind == "int":
            out[name] = val
        elif kind == "bool":
            out[name] = bool(val)
        elif isinstance(kind, dict):
            out[name] = decode_message(_bytes(val), kind)
        elif kind[0] == "map":
            entry = dict(fields(_bytes(val)))
            out.setdefault(name, {})[_bytes(entry.get(1, b"")).decode()] = _bytes(entry.get(2, b"")).decode()
        elif kind[0] == "repeated":
            item_kind = kind[1]
            item: Any
            if isinstance(item_kind, dict):
                item = decode_message(_bytes(val), item_kind)
            else:
                item = val.decode() if isinstance(val, bytes) else val
            out.setdefault(name, []).append(item)
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A JSON-shaped dict from a kube protobuf body; 415 for kinds not in :data:`SCHEMAS`."""
    if not body.startswith(MAGIC):
        raise status.bad_request("the protobuf body does not start with the k8s magic number")
    try:
        unknown = dict(fields(body[len(MAGIC) :]))
        type_meta = dict(fields(_bytes(unknown.get(1, b""))))
        api_version = _bytes(type_meta.get(1, b"")).decode()
        kind = _bytes(type_meta.get(2, b"")).decode()
        schema = SCHEMAS.get(kind)
        if schema is None:
            raise status.ApiError(
                415,
                f"the sandbox cannot decode protobuf bodies of kind {kind!r}; send JSON",
                reason="UnsupportedMediaType",
            )
        obj = decode_message(_bytes(unknown.get(2, b"")), schema)
    except (ValueError, UnicodeDecodeError) as e:
        raise status.bad_request(f"failed to decode protobuf body: {e}") from e
    obj = {"apiVersion": api_version, "kind": kind, **obj}
    obj.setdefault("metadata", {})
    return obj


# -- encoding (only used by tests and tools that want to speak like kubectl) -----
def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _enc_field(num: int, payload: bytes) -> bytes:
    return _enc_varint(num << 3 | 2) + _enc_varint(len(payload)) + payload


def encode_message(obj: dict, schema: dict) -> bytes:
    out = b""
    for num, (name, kind) in sorted(schema.items()):
        if name not in obj:
            continue
        val = obj[name]
        if kind == "str":
            out += _enc_field(num, val.encode())
        elif isinstance(kind, dict):
            out += _enc_field(num, encode_message(val, kind))
        elif kind[0] == "map":
            for k, v in val.items():
                out += _enc_field(num, _enc_field(1, k.encode()) + _enc_field(2, v.encode()))
        elif kind[0] == "repeated":
            for v in val:
                out += _enc_field(num, v.encode())
    return out


def encode(obj: dict) -> bytes:
    schema = SCHEMAS[obj["kind"]]
    type_meta = _enc_field(1, obj["apiVersion"].encode()) + _enc_field(2, obj["kind"].encode())
    return MAGIC + _enc_field(1, type_meta) + _enc_field(2, encode_message(obj, schema))
