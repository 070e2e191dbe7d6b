"""The HTTP server the sidecar runs on (waitress), with its settings in one place.

The benchmark serves its bare baseline app through :func:`create_server` too, so that the two are
compared on the same server with the same settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def create_server(app: Callable, *, host: str, port: int, threads: int, ident: str = "gate-sidecar") -> Any:
    """A waitress server for ``app`` (not started: call ``run()``)."""
    import waitress

    return waitress.create_server(
        app, host=host, port=port, threads=threads, ident=ident,
        channel_timeout=30, connection_limit=1000, clear_untrusted_proxy_headers=True,
    )
