"""CRD objects against their ``openAPIV3Schema``: defaulting, pruning, and validation.

The structural schema is turned into a JSON Schema (draft 4, whose boolean
``exclusiveMinimum`` matches OpenAPI 3.0) with the Kubernetes extensions mapped:
``nullable`` adds ``null`` to the type, ``x-kubernetes-int-or-string`` accepts
integers and strings, ``x-kubernetes-preserve-unknown-fields`` keeps unknown
fields.  ``metadata`` is never validated against the schema (kube-apiserver
validates ObjectMeta itself).  Errors become 422 causes in kube-apiserver's words.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

# NB: kube-apiserver validates names: most kinds as DNS subdomains, namespaces as DNS labels.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def name_causes(name: str, *, label: bool) -> list[dict]:
    """Causes for an invalid ``metadata.name`` (empty list when valid)."""
    if label:
        if len(name) <= 63 and DNS1123_LABEL.match(name):
            return []
        msg = (
            f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case alphanumeric '
            "characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  "
            "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    else:
        if len(name) <= 253 and DNS1123_SUBDOMAIN.match(name):
            return []
        msg = (
            f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character "
            "(e.g. 'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return [{"reason": "FieldValueInvalid", "message": msg, "field": "metadata.name"}]


def to_json_schema(schema: dict) -> dict:
    """An OpenAPI v3 structural schema as a draft-4 JSON Schema."""
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "properties":
            out[k] = {name: to_json_schema(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties", "not") and isinstance(v, dict):
            out[k] = to_json_schema(v)
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [to_json_schema(s) for s in v]
        elif k in (
            "type",
            "enum",
            "required",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "minLength",
            "maxLength",
            "pattern",
            "minItems",
            "maxItems",
            "uniqueItems",
            "minProperties",
            "maxProperties",
            "multipleOf",
            "additionalProperties",
        ):
            out[k] = v
    if schema.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", []).append({"type": ["integer", "string"]})
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if out.get("type") == "number":
        out["type"] = ["number"]
    return out


def _go_value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, (int, float)):
        return str(v)
    return json.dumps(v, separators=(",", ":"))


_TYPE_NAMES = {
    "integer": "integer",
    "string": "string",
    "boolean": "boolean",
    "object": "object",
    "array": "array",
    "number": "number",
}


def _field(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (("." if out else "") + str(p))
    return out


def _cause(err: jsonschema.ValidationError) -> dict:
    """One jsonschema error in kube-openapi's words (reason, message, field)."""
    path = list(err.absolute_path)
    # NB: a validator sets these on every error it yields (jsonschema types them "or Unset" for errors built by hand)
    v: Any = err.instance
    val: Any = err.validator_value
    kw = err.validator if isinstance(err.validator, str) else ""
    field = _field(path)
    if kw == "required":
        missing = err.message.split("'")[1]
        return {"reason": "FieldValueRequired", "message": "Required value", "field": _field([*path, missing])}
    if kw == "enum":
        supported = ", ".join(_go_value(x) for x in val if x is not None)
        return {
            "reason": "FieldValueNotSupported",
            "message": f"Unsupported value: {_go_value(v)}: supported values: {supported}",
            "field": field,
        }
    if kw == "type":
        want = val if isinstance(val, str) else next(t for t in val if t != "null")
        return {
            "reason": "FieldValueTypeInvalid",
            "message": f"Invalid value: {_go_value(v)}: {field} in body must be of type "
            f"{_TYPE_NAMES.get(want, want)}: {_go_value(_json_type(v))}",
            "field": field,
        }
    if kw == "maxLength":
        return {"reason": "FieldValueTooLong", "message": f"Too long: may not be more than {val} bytes", "field": field}
    if kw == "maxItems":
        return {
            "reason": "FieldValueTooMany",
            "message": f"Too many: {len(v)}: must have at most {val} items",
            "field": field,
        }
    words = {
        "minLength": f"should be at least {val} chars long",
        "minimum": f"should be greater than or equal to {val}",
        "maximum": f"should be less than or equal to {val}",
        "pattern": f"should match '{val}'",
        "minItems": f"should have at least {val} items",
        "uniqueItems": "shouldn't contain duplicates",
        "minProperties": f"should have at least {val} properties",
        "maxProperties": f"should have at most {val} properties",
        "multipleOf": f"should be a multiple of {val}",
    }
    if (
        kw in ("minimum", "maximum")
        and isinstance(err.schema, Mapping)
        and err.schema.get("exclusive" + kw.capitalize())
    ):
        words[kw] = f"should be {'greater' if kw == 'minimum' else 'less'} than {val}"
    text = words.get(kw, err.message)
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {_go_value(v)}: {field} in body {text}",
        "field": field,
    }


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    if isinstance(v, dict):
        return "object"
    return "null"


def validate(obj: dict, schema: dict | None) -> list[dict]:
    """422 causes for ``obj`` against a CRD schema (empty when valid)."""
    if not schema:
        return []
    js = to_json_schema(schema)
    props = dict(js.get("properties") or {})
    for skip in ("metadata", "apiVersion", "kind"):
        props.pop(skip, None)
    js["properties"] = props
    body = {k: v for k, v in obj.items() if k not in ("metadata", "apiVersion", "kind")}
    validator = jsonschema.Draft4Validator(js)
    causes = [_cause(e) for e in sorted(validator.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))]
    seen, out = set(), []
    for c in causes:
        key = (c["field"], c["message"])
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def prune(obj: Any, schema: dict | None, path: str = "") -> list[str]:
    """Drop fields the schema does not know (in place); returns their paths, e.g. ``spec.foo``.

    ``metadata`` keeps only ObjectMeta (not checked here); ``apiVersion``/``kind`` always stay.
    """
    if not schema:
        return []
    dropped: list[str] = []
    _prune(obj, schema, path, dropped, top=True)
    return dropped


def _prune(obj: Any, schema: dict, path: str, dropped: list[str], *, top: bool = False) -> None:
    if isinstance(obj, dict):
        props = schema.get("properties")
        addl = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields")
        for k in list(obj):
            sub_path = f"{path}.{k}" if path else k
            if top and k in ("apiVersion", "kind", "metadata"):
                continue
            if props and k in props:
                _prune(obj[k], props[k], sub_path, dropped)
            elif isinstance(addl, dict):
                _prune(obj[k], addl, sub_path, dropped)
            elif addl is True or preserve or (props is None and schema.get("type") != "object"):
                continue
            else:
                del obj[k]
                dropped.append(sub_path)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(obj):
            _prune(item, schema["items"], f"{path}[{i}]", dropped)


def apply_defaults(obj: Any, schema: dict | None) -> None:
    """Fill ``default`` values of absent properties (in place), recursively."""
    if not schema or (not isinstance(obj, dict) and not isinstance(obj, list)):
        return
    if isinstance(obj, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name == "metadata":
                continue
            if name not in obj and "default" in sub:
                obj[name] = copy.deepcopy(sub["default"])
            if name in obj:
                apply_defaults(obj[name], sub)
        addl = schema.get("additionalProperties")
        if isinstance(addl, dict):
            for v in obj.values():
                apply_defaults(v, addl)
    elif isinstance(schema.get("items"), dict):
        for item in obj:
            apply_defaults(item, schema["items"])
