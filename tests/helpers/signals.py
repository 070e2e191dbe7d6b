"""Children started as a user's shell starts a command, whatever started the test run.

A suite run in the background (``make test &``) ignores SIGINT and SIGQUIT, under ``nohup`` SIGHUP
too; a child inherits an ignored signal across exec, and a shell cannot even trap a signal that was
ignored when it started. Tests that send a command those signals pass :func:`default_dispositions`
as ``preexec_fn``.
"""

from __future__ import annotations

import signal

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGQUIT", "SIGHUP", "SIGTERM") if hasattr(signal, name))


def default_dispositions() -> None:
    """In the child, before exec: every signal a test sends at its default (only signal(2) calls)."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
