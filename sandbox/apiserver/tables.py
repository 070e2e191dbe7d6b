"""meta.k8s.io/v1 Table answers for ``kubectl get``.

CRD kinds get their ``additionalPrinterColumns`` (a leading ``Name`` column, and a
lone ``Age`` column when the version declares none), evaluated with the simple
JSONPath subset CRDs use (``.a.b``, ``.a[0].b``, ``.a['x.y']``).  Built-in kinds get
the columns kubectl users know (e.g. pods: NAME READY STATUS RESTARTS AGE).
The server renders ages and dates as human durations, as kube-apiserver does.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any

from sandbox.apiserver.resources import ResourceType

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "priority": 0,
    "description": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an "
    "appropriate name automatically. Name is primarily intended for creation "
    "idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
}
AGE_COLUMN = {
    "name": "Age",
    "type": "date",
    "format": "",
    "priority": 0,
    "description": "CreationTimestamp is a timestamp representing the server time when this object was created.",
}


def parse_time(value: str) -> dt.datetime | None:
    """An RFC 3339 time as metav1.Time accepts it (``Z`` or an offset, fractional seconds or not)."""
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        return None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(timestamp: str | None, now: dt.datetime | None = None) -> str:
    t = parse_time(timestamp or "")
    if t is None:
        return "<unknown>"
    now = now or dt.datetime.now(dt.UTC)
    return human_duration((now - t).total_seconds())


_TOKEN = re.compile(r"\.([A-Za-z0-9_$-]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")


def jsonpath(obj: Any, path: str) -> Any:
    """Evaluate a simple JSONPath (``.a.b[0]['c.d']``, optionally wrapped in ``{}``); None when absent."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    cur = obj
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return None
        pos = m.end()
        if m.group(2) is not None:
            idx = int(m.group(2))
            cur = cur[idx] if isinstance(cur, list) and idx < len(cur) else None
        else:
            key = m.group(1) or m.group(3) or m.group(4)
            cur = cur.get(key) if isinstance(cur, dict) else None
        if cur is None:
            return None
    return cur


def _cell(value: Any, col_type: str) -> Any:
    if value is None:
        return None
    if col_type == "date":
        return age(value) if isinstance(value, str) else value
    if col_type == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if col_type == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if col_type == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


# -- built-in printers ----------------------------------------------------
Column = tuple[str, str, int, Callable[[dict], Any]]  # (name, type, priority, cell function)


def _meta(o: dict) -> dict:
    return o.get("metadata") or {}


def _created(o: dict) -> Any:
    return age(_meta(o).get("creationTimestamp"))


def _pod_ready(o: dict) -> str:
    statuses = (o.get("status") or {}).get("containerStatuses") or []
    total = len((o.get("spec") or {}).get("containers") or []) or len(statuses)
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _svc_ports(o: dict) -> str:
    ports = (o.get("spec") or {}).get("ports") or []
    out = []
    for p in ports:
        s = str(p.get("port"))
        if p.get("nodePort"):
            s += f":{p['nodePort']}"
        out.append(f"{s}/{p.get('protocol', 'TCP')}")
    return ",".join(out) or "<none>"


def _event_object(o: dict) -> str:
    inv = o.get("involvedObject") or o.get("regarding") or {}
    return f"{(inv.get('kind') or '').lower()}/{inv.get('name', '')}"


def _event_last_seen(o: dict) -> str:
    ts = o.get("lastTimestamp") or o.get("eventTime") or _meta(o).get("creationTimestamp")
    if isinstance(ts, str) and "." in ts:
        ts = ts.split(".")[0] + "Z"
    return age(ts)


BUILTIN_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("", "namespaces"): [
        ("Status", "string", 0, lambda o: (o.get("status") or {}).get("phase", "")),
        ("Age", "string", 0, _created),
    ],
    ("", "pods"): [
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, lambda o: (o.get("status") or {}).get("phase", "Pending")),
        (
            "Restarts",
            "string",
            0,
            lambda o: str(
                sum(s.get("restartCount", 0) for s in (o.get("status") or {}).get("containerStatuses") or [])
            ),
        ),
        ("Age", "string", 0, _created),
        ("IP", "string", 1, lambda o: (o.get("status") or {}).get("podIP") or "<none>"),
        ("Node", "string", 1, lambda o: (o.get("spec") or {}).get("nodeName") or "<none>"),
    ],
    ("", "services"): [
        ("Type", "string", 0, lambda o: (o.get("spec") or {}).get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0, lambda o: (o.get("spec") or {}).get("clusterIP") or "<none>"),
        ("External-IP", "string", 0, lambda o: ",".join((o.get("spec") or {}).get("externalIPs") or []) or "<none>"),
        ("Port(s)", "string", 0, _svc_ports),
        ("Age", "string", 0, _created),
        (
            "Selector",
            "string",
            1,
            lambda o: (
                ",".join(f"{k}={v}" for k, v in ((o.get("spec") or {}).get("selector") or {}).items()) or "<none>"
            ),
        ),
    ],
    ("", "configmaps"): [
        ("Data", "integer", 0, lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {})),
        ("Age", "string", 0, _created),
    ],
    ("", "secrets"): [
        ("Type", "string", 0, lambda o: o.get("type", "Opaque")),
        ("Data", "integer", 0, lambda o: len(o.get("data") or {})),
        ("Age", "string", 0, _created),
    ],
    ("", "serviceaccounts"): [
        ("Secrets", "integer", 0, lambda o: len(o.get("secrets") or [])),
        ("Age", "string", 0, _created),
    ],
    ("apps", "deployments"): [
        (
            "Ready",
            "string",
            0,
            lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/{(o.get('spec') or {}).get('replicas', 1)}",
        ),
        ("Up-to-date", "integer", 0, lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "integer", 0, lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
        ("Age", "string", 0, _created),
        (
            "Containers",
            "string",
            1,
            lambda o: ",".join(
                c.get("name", "")
                for c in ((((o.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
            ),
        ),
        (
            "Images",
            "string",
            1,
            lambda o: ",".join(
                c.get("image", "")
                for c in ((((o.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [])
            ),
        ),
    ],
    ("", "events"): [
        ("Last Seen", "string", 0, _event_last_seen),
        ("Type", "string", 0, lambda o: o.get("type", "")),
        ("Reason", "string", 0, lambda o: o.get("reason", "")),
        ("Object", "string", 0, _event_object),
        ("Message", "string", 0, lambda o: o.get("message") or o.get("note") or ""),
    ],
    ("rbac.authorization.k8s.io", "roles"): [("Created At", "date", 0, lambda o: _meta(o).get("creationTimestamp"))],
    ("rbac.authorization.k8s.io", "clusterroles"): [
        ("Created At", "date", 0, lambda o: _meta(o).get("creationTimestamp"))
    ],
    ("rbac.authorization.k8s.io", "rolebindings"): [
        (
            "Role",
            "string",
            0,
            lambda o: f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}",
        ),
        ("Age", "string", 0, _created),
    ],
    ("rbac.authorization.k8s.io", "clusterrolebindings"): [
        (
            "Role",
            "string",
            0,
            lambda o: f"{(o.get('roleRef') or {}).get('kind')}/{(o.get('roleRef') or {}).get('name')}",
        ),
        ("Age", "string", 0, _created),
    ],
    ("apiextensions.k8s.io", "customresourcedefinitions"): [
        ("Created At", "date", 0, lambda o: _meta(o).get("creationTimestamp"))
    ],
}


def _path_cell(path: str, col_type: str) -> Callable[[dict], Any]:
    """The cell of a CRD's printer column: its jsonPath's value, formatted for its type."""
    return lambda o: _cell(jsonpath(o, path), col_type)


def _columns(rt: ResourceType) -> tuple[list[dict], list[Callable[[dict], Any]]]:
    defs = [dict(NAME_COLUMN)]
    cells: list[Callable[[dict], Any]] = [lambda o: _meta(o).get("name")]
    if rt.printer_columns is not None:
        cols = list(rt.printer_columns)
        if not cols:
            defs.append(dict(AGE_COLUMN))
            cells.append(lambda o: age(_meta(o).get("creationTimestamp")))
        for col in cols:
            ctype = col.get("type", "string")
            defs.append(
                {
                    "name": col["name"],
                    "type": ctype,
                    "format": col.get("format", ""),
                    "description": col.get("description", ""),
                    "priority": col.get("priority", 0),
                }
            )
            cells.append(_path_cell(col.get("jsonPath", ""), ctype))
        return defs, cells
    builtin = BUILTIN_COLUMNS.get(rt.key)
    if builtin is None:
        defs.append(dict(AGE_COLUMN))
        cells.append(_created)
        return defs, cells
    for name, ctype, prio, fn in builtin:
        defs.append({"name": name, "type": ctype, "format": "", "description": "", "priority": prio})
        cells.append(fn)  # NB: built-in "Created At" columns print the raw timestamp, as kubectl shows them
    return defs, cells


def partial_metadata(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata", {})}


def build_table(
    rt: ResourceType,
    objects: list[dict],
    *,
    resource_version: str = "",
    include_object: str = "Metadata",
    headers: bool = True,
) -> dict:
    """A Table of ``objects``; ``include_object`` is None/Metadata/Object as in ``?includeObject=``."""
    defs, cells = _columns(rt)
    rows = []
    for o in objects:
        row: dict[str, Any] = {"cells": [fn(o) for fn in cells]}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = partial_metadata(o)
        rows.append(row)
    table: dict[str, Any] = {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version} if resource_version else {},
    }
    table["columnDefinitions"] = defs if headers else None
    table["rows"] = rows
    return table
