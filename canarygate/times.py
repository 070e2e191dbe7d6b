"""Kubernetes time stamps (RFC 3339, ``metav1.Time``): one parser for every reader of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """``2026-11-22T10:00:00Z`` (or with an offset or fraction) as an aware UTC datetime; None when
    absent, not a string, or unreadable: a reader treats that as "no time", never as an error."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None
