"""Label and field selectors, with kube-apiserver's grammar and error messages.

Label selectors: ``a=b``, ``a==b``, ``a!=b``, ``a in (x,y)``, ``a notin (x)``, ``a``,
``!a``, comma-separated (AND).  Field selectors: ``path=value``, ``path==value``,
``path!=value`` over the fields the resource supports (``metadata.name`` and
``metadata.namespace`` everywhere, a few more for events and pods).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sandbox.apiserver import status

Matcher = Callable[[dict], bool]

_REQ = re.compile(
    r"\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<val>[A-Za-z0-9_.-]*)|\s+(?P<setop>in|notin)\s*\((?P<set>[^)]*)\)|)\s*$"
)


def _split_top(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def label_matcher(selector: str | None) -> Matcher:
    if not selector:
        return lambda obj: True
    tests: list[Callable[..., bool]] = []  # NB: called with the labels; each binds its key and values as defaults
    for req in _split_top(selector):
        m = _REQ.match(req)
        if not m or (m.group("neg") and (m.group("op") or m.group("setop"))):
            raise status.bad_request(f"unable to parse requirement: found '{req.strip()}', expected: identifier")
        key, val = m.group("key"), m.group("val")
        if m.group("neg"):
            tests.append(lambda labels, k=key: k not in labels)
        elif m.group("op") in ("=", "=="):
            tests.append(lambda labels, k=key, v=val: labels.get(k) == v)
        elif m.group("op") == "!=":
            tests.append(lambda labels, k=key, v=val: labels.get(k) != v)
        elif m.group("setop"):
            values = {v.strip() for v in m.group("set").split(",") if v.strip()}
            if m.group("setop") == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        else:
            tests.append(lambda labels, k=key: k in labels)

    def match(obj: dict) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(t(labels) for t in tests)

    return match


# NB: kube-apiserver accepts only the field labels each resource registers, and
# answers 400 'field label not supported: X' for others.
COMMON_FIELDS = ("metadata.name", "metadata.namespace")
EXTRA_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("events.k8s.io", "events"): (
        "regarding.kind",
        "regarding.namespace",
        "regarding.name",
        "regarding.uid",
        "reason",
        "type",
        "reportingController",
    ),
    ("", "pods"): (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    ("", "secrets"): ("type",),
    ("", "namespaces"): ("status.phase",),
}


def _dig(obj: dict, path: str) -> str:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    return cur if isinstance(cur, str) else str(cur)


def field_matcher(selector: str | None, key: tuple[str, str], *, kind: str = "") -> Matcher:
    if not selector:
        return lambda obj: True
    allowed = COMMON_FIELDS + EXTRA_FIELDS.get(key, ())
    tests = []
    for req in _split_top(selector):
        m = re.fullmatch(r"\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*", req)
        if not m:
            raise status.bad_request(f"invalid selector: '{selector}'; can't understand '{req}'")
        field, op, value = m.groups()
        if field not in allowed:
            raise status.bad_request(f"field label not supported: {field}")
        if op == "!=":
            tests.append(lambda o, f=field, v=value: _dig(o, f) != v)
        else:
            tests.append(lambda o, f=field, v=value: _dig(o, f) == v)
    return lambda obj: all(t(obj) for t in tests)


def name_from_field_selector(selector: str | None) -> str:
    """The name pinned by ``metadata.name=X`` (used to authorize watches of one object), or ''."""
    for req in _split_top(selector or ""):
        m = re.fullmatch(r"\s*metadata\.name\s*==?\s*(.*?)\s*", req)
        if m:
            return m.group(1)
    return ""
