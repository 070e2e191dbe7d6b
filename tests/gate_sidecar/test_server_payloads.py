"""Hostile webhook payloads: never a 500, always a 4xx that says why.

Property-based (hypothesis) on :func:`gate_sidecar.answers.decode_body` and on the app: any bytes,
any JSON value (lone surrogates included), and payload-shaped objects with fields of any type either
decode to a payload whose fields are what the contract promises (and whose answer can be encoded),
or are refused with BadRequest; well-formed payloads are always accepted; through the app, every
gate and /event answers 200, 403, 503 or 400, with a JSON body, never 500.

Explicit cases from raw sockets against the real sidecar: 60,000 ``[`` (400, nested too deep),
100,000 ``[`` (413, over 64 KiB), lone surrogates, invalid UTF-8, a BOM, numbers of thousands of
digits, non-object JSON, wrongly typed fields; none reaches the sidecar's "bug" handler.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_harness import SidecarUnderAttack, exchange, post
from werkzeug.exceptions import BadRequest
from werkzeug.test import Client

from canarygate import gates
from gate_sidecar import answers
from gate_sidecar.app import create_app
from gate_sidecar.cache import GateCache, StaticHealth

#: No example database: nothing is written into the work tree.
SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
#: Any code point, lone surrogates included (hypothesis leaves them out unless asked).
ANY_CHAR = st.characters(exclude_categories=())
ANY_TEXT = st.text(ANY_CHAR, max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=20,
)
NAME = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)
FIELDS = {
    "name": JSON_VALUES | NAME,
    "namespace": JSON_VALUES | NAME,
    "phase": JSON_VALUES | st.sampled_from(["Progressing", "Waiting", "Promoting"]),
    "checksum": JSON_VALUES | st.text("0123456789abcdef", max_size=16),
    "metadata": JSON_VALUES | st.dictionaries(ANY_TEXT, ANY_TEXT | JSON_VALUES, max_size=4),
}
PAYLOAD_SHAPED = st.fixed_dictionaries({}, optional=FIELDS)


def check_contract(payload: answers.Payload) -> None:
    """What decode_body promises of what it accepts."""
    for field in ("name", "namespace"):
        assert isinstance(payload[field], str) and 0 < len(payload[field]) <= answers.MAX_NAME
    for field in ("phase", "checksum"):
        assert payload.get(field) is None or isinstance(payload[field], str)
    metadata = payload.get("metadata")
    assert metadata is None or all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    # Everything the sidecar echoes or writes can be encoded (no lone surrogate).
    answers.encode({k: payload.get(k) for k in ("name", "namespace", "phase", "checksum", "metadata")})


def decode(raw: bytes):
    try:
        payload = answers.decode_body(raw)
    except BadRequest as e:
        assert e.description
        return None
    check_contract(payload)
    return payload


@SETTINGS
@given(st.binary(max_size=512))
def test_any_bytes_decode_or_are_refused(raw):
    decode(raw)


@SETTINGS
@given(JSON_VALUES)
def test_any_json_value_decodes_or_is_refused(value):
    decode(json.dumps(value).encode())  # ensure_ascii: lone surrogates travel as \\udXXX


@SETTINGS
@given(PAYLOAD_SHAPED)
def test_payload_shaped_objects_decode_or_are_refused(value):
    decode(json.dumps(value).encode())


@SETTINGS
@given(NAME, NAME, st.dictionaries(st.text(max_size=10), st.text(max_size=30), max_size=4))
def test_well_formed_payloads_are_accepted(name, namespace, metadata):
    body = {"name": name, "namespace": namespace, "phase": "Progressing", "checksum": "abc", "metadata": metadata}
    for raw in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=False).encode()):
        assert decode(raw) == body


@SETTINGS
@given(st.integers(min_value=answers.MAX_DEPTH + 1, max_value=10000), st.booleans())
def test_deep_nesting_is_refused_with_a_reason(depth, objects):
    raw = ('{"a":' * depth + "1" + "}" * depth) if objects else ("[" * depth + "]" * depth)
    with pytest.raises(BadRequest, match="nested over 16 levels"):
        answers.decode_body(raw.encode())


@pytest.fixture(scope="module")
def app_client():
    cache = GateCache(health=[StaticHealth(synced=True)], fail_closed_after=10.0)
    return Client(create_app(cache=cache))


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.sampled_from([*gates.GATES, "event"]),
    st.one_of(
        st.binary(max_size=256),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        PAYLOAD_SHAPED.map(lambda v: json.dumps(v).encode()),
    ),
)
def test_the_app_never_answers_500(app_client, hook, raw):
    response = app_client.post(f"/{hook}", data=raw, content_type="application/json")
    assert response.status_code in (200, 403, 503, 400), (response.status_code, response.data)
    body = response.get_json()
    assert isinstance(body, dict)
    if response.status_code == 400:
        assert body["code"] == 400 and body["message"]


# -- the real sidecar, from raw sockets ------------------------------------------------------------------


@pytest.fixture(scope="module")
def sidecar(kubeconfig, crds, tmp_path_factory):
    process = SidecarUnderAttack(kubeconfig, tmp_path_factory.mktemp("payloads"))
    yield process
    process.stop()


def payload(**fields) -> bytes:
    body = {"name": "demo", "namespace": "demo-ns", "phase": "Progressing", "checksum": "85d557f47b"}
    body.update(fields)
    return json.dumps(body).encode()


HOSTILE = {
    "60k [": (b"[" * 60000, 400, "nested"),
    "100k [": (b"[" * 100000, 413, "64 KiB"),
    "deep objects": (b'{"a":' * 10000 + b"1" + b"}" * 10000, 400, "nested"),
    "lone surrogate in name": (payload(name="\ud800"), 400, "surrogate"),
    "lone surrogate in metadata": (payload(metadata={"gate_name": "\udfff"}), 400, "surrogate"),
    "surrogate as raw bytes": (b'{"name":"\xed\xa0\x80","namespace":"x"}', 400, "UTF-8"),
    "invalid UTF-8": (b'{"name":"\xff\xfe","namespace":"x"}', 400, "UTF-8"),
    "UTF-8 BOM": (b"\xef\xbb\xbf" + payload(), 400, "not valid JSON"),
    "UTF-16": (payload().decode().encode("utf-16"), 400, "UTF-8"),
    "5000-digit number": (b'{"name":"d","namespace":"n","x":' + b"9" * 5000 + b"}", 400, "digits"),
    "huge exponent": (payload(name=1e308 * 10), 400, "'name'"),
    "array": (b"[]", 400, "JSON object"),
    "string": (b'"demo"', 400, "JSON object"),
    "number": (b"42", 400, "JSON object"),
    "null": (b"null", 400, "JSON object"),
    "name a number": (payload(name=7), 400, "'name'"),
    "name empty": (payload(name=""), 400, "'name'"),
    "name too long": (payload(name="a" * 300), 400, "253"),
    "name with a newline": (payload(name="demo\nINFO forged log line"), 400, "control"),
    "metadata a list": (payload(metadata=["gate_name"]), 400, "metadata"),
    "metadata value a number": (payload(metadata={"gate_name": 1}), 400, "metadata"),
    "metadata value an object": (payload(metadata={"gate_name": {"x": "y"}}), 400, "metadata"),
    "phase an object": (payload(phase={}), 400, "'phase'"),
    "checksum a list": (payload(checksum=[]), 400, "'checksum'"),
    "NaN": (b'{"name":"d","namespace":"n","phase":NaN}', 400, "'phase'"),
}


@pytest.mark.parametrize("hook", ["confirm-rollout", "rollback", "event"])
@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_bodies_get_a_4xx_with_a_reason(sidecar, hook, name):
    raw, status, fragment = HOSTILE[name]
    answer = exchange(sidecar.port, post(f"/{hook}", raw), timeout=10)
    assert answer.status == status, answer
    assert answer.json()["code"] == status and fragment in answer.json()["message"], answer


def test_no_hostile_body_reached_the_bug_handler(sidecar):
    for raw, _, _ in HOSTILE.values():
        exchange(sidecar.port, post("/confirm-rollout", raw), timeout=10)
    assert exchange(sidecar.port, post("/confirm-rollout", payload())).status == 200
    assert "bug while answering" not in sidecar.log() and "Traceback" not in sidecar.log()
