"""Ctrl-C ends kubectl-gate even when CPython's own check misses it (kubectl_gate.interrupts).

The race (a SIGINT landing just before a blocking read) is made certain here: the SIGINT is sent
to another thread of the process (``pthread_kill``), so CPython's C handler runs there and the
main thread, blocked reading a pipe nobody writes, is not interrupted by it. Without the watcher
the child blocks until it is killed; with it, the KeyboardInterrupt comes at once.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from helpers import signals

CHILD = """
import os, signal, sys, threading, time
from kubectl_gate import interrupts
installed = {install} and interrupts.install()
def elsewhere():
    time.sleep(0.3)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # handled in this thread, not the main one
threading.Thread(target=elsewhere, daemon=True).start()
r, _ = os.pipe()
print("installed" if installed else "plain", flush=True)
try:
    os.read(r, 1)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="no pthread_kill on this system")


def _run(install: bool, wait: float) -> tuple[int | None, str, float]:
    started = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.format(install=install)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=signals.default_dispositions,
    )
    try:
        out, _ = child.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate(timeout=10)
        return None, out, time.monotonic() - started
    return child.returncode, out, time.monotonic() - started


def test_a_sigint_the_main_thread_missed_still_interrupts_its_blocking_read():
    code, out, took = _run(install=True, wait=20)
    assert out.split() == ["installed", "interrupted"] and code == 130, out
    assert took < 10


def test_without_the_watcher_the_same_sigint_is_lost():
    """The bench itself: the same child without install() stays blocked (what the watcher fixes)."""
    code, out, _ = _run(install=False, wait=3)
    assert code is None and out.split() == ["plain"], out
