"""``-o jsonpath=TEMPLATE`` and ``-o custom-columns=SPEC`` in kubectl's dialect.

kubectl's JSONPath is a template: text with ``{...}`` expressions; ``{range EXPR}...{end}`` repeats
its body for each match; ``{"\\n"}`` is literal text; a path starting with ``.`` or ``@`` is relative
to the current node (the item inside a range), ``$`` to the root. Several matches print separated
by a space, strings as they are, other values as JSON; a missing key prints nothing (kubectl's
default --allow-missing-template-keys=true). The paths themselves are evaluated by jsonpath-ng
(``jsonpath_ng.ext``: filters ``[?(@.type=="Ready")]``, slices, ``..``, ``[*]``).

custom-columns: ``HEADER:PATH,...``; a path is ``.a.b`` or ``{.a.b}``; several matches join with
commas and nothing found shows ``<none>``, as in kubectl.
"""

from __future__ import annotations

import json
import re
from typing import Any, TypeGuard

import click

PREFIXES = ("jsonpath=", "custom-columns=")


def is_template(output: str | None) -> TypeGuard[str]:
    return output is not None and output.startswith(PREFIXES)


def render(output: str, data: Any) -> str:
    """The text ``-o jsonpath=...`` or ``-o custom-columns=...`` prints for ``data``."""
    kind, _, spec = output.partition("=")
    if kind == "jsonpath":
        return jsonpath(spec, data)
    return custom_columns(spec, data.get("items", [data]) if isinstance(data, dict) else data)


_TOKEN = re.compile(r"\{((?:\"(?:[^\"\\]|\\.)*\"|[^{}\"])*)\}")


def _parse(template: str) -> list[tuple[str, str]]:
    """(kind, value) tokens: ("text", t), ("path", p), ("range", p), ("end", "")."""
    tokens, pos = [], 0
    for match in _TOKEN.finditer(template):
        if match.start() > pos:
            tokens.append(("text", template[pos : match.start()]))
        body = match.group(1).strip()
        if body == "end":
            tokens.append(("end", ""))
        elif body.startswith("range "):
            tokens.append(("range", body[6:].strip()))
        elif body.startswith('"') and body.endswith('"') and len(body) >= 2:
            tokens.append(("text", json.loads(body, strict=False)))
        else:
            tokens.append(("path", body))
        pos = match.end()
    if pos < len(template):
        tokens.append(("text", template[pos:]))
    return tokens


def _find(path: str, root: Any, current: Any) -> list[Any]:
    import jsonpath_ng.ext  # deferred: only -o jsonpath and custom-columns use it

    if not path or path in (".", "@"):
        return [current]
    base = current
    if path.startswith("$"):
        base, path = root, path[1:]
    elif path.startswith("@"):
        path = path[1:]
    if path and not path.startswith((".", "[")):
        path = "." + path
    try:
        expr = jsonpath_ng.ext.parse("$" + path)
    except Exception as e:  # noqa: BLE001 - jsonpath-ng raises several types (lexer, parser)
        raise click.UsageError(f"invalid JSONPath {path!r}: {e}") from None
    return [m.value for m in expr.find(base)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def jsonpath(template: str, data: Any) -> str:
    tokens = _parse(template)
    out: list[str] = []
    _run(tokens, 0, len(tokens), data, data, out)
    return "".join(out)


def _run(tokens: list[tuple[str, str]], start: int, stop: int, root: Any, current: Any, out: list[str]) -> None:
    i = start
    while i < stop:
        kind, value = tokens[i]
        if kind == "text":
            out.append(value)
        elif kind == "path":
            out.append(" ".join(_text(v) for v in _find(value, root, current)))
        elif kind == "range":
            end = _matching_end(tokens, i, stop)
            for item in _items(_find(value, root, current)):
                _run(tokens, i + 1, end, root, item, out)
            i = end
        else:
            raise click.UsageError("JSONPath template: {end} without {range}")
        i += 1


def _items(found: list[Any]) -> list[Any]:
    """``{range .items[*]}`` matches each item; ``{range .items}`` the one list, whose items kubectl walks."""
    if len(found) == 1 and isinstance(found[0], list):
        return found[0]
    return found


def _matching_end(tokens: list[tuple[str, str]], start: int, stop: int) -> int:
    depth = 0
    for i in range(start + 1, stop):
        if tokens[i][0] == "range":
            depth += 1
        elif tokens[i][0] == "end":
            if depth == 0:
                return i
            depth -= 1
    raise click.UsageError("JSONPath template: {range} without {end}")


def custom_columns(spec: str, items: list[Any]) -> str:
    columns = []
    for part in spec.split(","):
        header, sep, path = part.partition(":")
        if not sep or not header or not path:
            raise click.UsageError(f"custom-columns: {part!r} is not HEADER:PATH (e.g. NAME:.metadata.name)")
        path = path.strip()
        if path.startswith("{") and path.endswith("}"):
            path = path[1:-1]
        columns.append((header, path))
    rows = [[h for h, _ in columns]]
    for item in items:
        row = []
        for _, path in columns:
            found = [v for v in _find(path, item, item) if v is not None]
            row.append(",".join(_text(v) for v in found) if found else "<none>")
        rows.append(row)
    # NB: kubectl's tabwriter: cells padded by 3; the last column is not padded
    widths = [max(len(r[i]) for r in rows) + 3 for i in range(len(columns))]
    return "\n".join("".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=False)) + r[-1] for r in rows)
