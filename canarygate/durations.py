"""Durations as Kubernetes tools write them: the one parser and the one age format of the product.

* :func:`parse_go` reads a Go duration (``time.ParseDuration``: ``10s``, ``1m30s``, ``500ms``,
  ``0``), as Flagger reads ``interval`` and a webhook's ``timeout``.
* :func:`parse_flag` reads a kubectl duration flag (``--request-timeout``, ``--timeout``): a bare
  number is seconds, anything else a Go duration.
* :func:`short_age` writes an age as ``kubectl get`` does (apimachinery's ShortHumanDuration):
  ``45s``, ``12m``, ``5h``, ``3d``, ``2y``.

(The sandbox has its own copies: it shares no code with the product, so that it cannot share its bugs.)
"""

from __future__ import annotations

import re

#: Go's units, in seconds (``us`` and both spellings of the micro sign, as time.ParseDuration).
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}

_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")  # NB: ASCII digits only, as Go
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_go(text: str) -> float:
    """Seconds in a Go duration string; ValueError with Go's own message when it is not one."""
    quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    rest = text
    sign = -1.0 if rest.startswith("-") else 1.0
    if rest[:1] in ("+", "-"):
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        part = _PART.match(rest)
        assert part is not None  # NB: every group of the pattern may be empty
        whole, fraction, unit = part.groups()
        if not whole and not fraction:
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(f"{whole or 0}.{fraction or 0}") * UNITS[unit]
        rest = rest[part.end() :]
    return sign * total


def parse_flag(text: str) -> float:
    """Seconds in a kubectl duration flag: ``90`` (a bare number is seconds), ``90s``, ``1h30m``.

    ValueError (Go's message) when it is neither; a negative duration is one too (no flag takes it).
    """
    text = text.strip()
    seconds = float(text) if _NUMBER.fullmatch(text) else parse_go(text)
    if seconds < 0:
        raise ValueError(f"negative duration {text!r}")
    return seconds


def short_age(seconds: float) -> str:
    """An age in kubectl's short form: ``45s`` under 2 minutes, ``12m`` under 2 hours, ``5h`` under
    2 days, ``3d`` under 2 years, else ``2y``. A negative age (a clock ahead of ours) is ``0s``."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 120 * 60:
        return f"{s // 60}m"
    hours = s // 3600
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    return f"{hours // 24 // 365}y"
