"""Ctrl-C always ends ``kubectl-gate``, even when it lands just before a blocking read.

CPython runs a Python signal handler only between bytecodes: its C handler sets a flag, and a
blocking system call returns EINTR so the flag is seen. A SIGINT delivered after the last check of
the flag but before the thread enters ``read``/``poll`` (a few microseconds, much longer when the
process is preempted there) is not seen until that call returns: ``kubectl gate show`` against an
API server that holds its request stayed blocked until the server answered (measured: 1 run in
~20 with the signal sent as the request arrived, both transports).

:func:`install` closes that window: the C handler also writes the signal's number to a wakeup
pipe (``signal.set_wakeup_fd``), a daemon thread (with SIGINT blocked, so the kernel delivers
SIGINT to the main thread) reads it and, while the main thread has not raised the
KeyboardInterrupt for that press, sends SIGINT again to the main thread only
(``signal.pthread_kill``) every KICK_INTERVAL: each one interrupts a blocking call. The handler
raises once per press; a repeat that arrives after the press was raised is ignored. Signals the
main thread holds back (the key's private-file fallback in canarygate.kube.light) stay held.
"""

from __future__ import annotations

import os
import signal
import threading
import time

KICK_INTERVAL = 0.1  #: seconds between two repeats of a SIGINT the main thread has not taken
KICKS = 100  #: at most this many repeats per press (10 s), then the press is left to CPython


class _State:
    def __init__(self) -> None:
        self.raised = 0  # presses the main thread has raised KeyboardInterrupt for
        self.kick_for = 0  # the press the repeat in flight is for (0: none)
        self.kicks_sent = 0  # repeats whose wakeup byte the watcher has not read yet


def install() -> bool:
    """Install the handler and its watcher (once, from the main thread); False where it cannot be."""
    if (
        threading.current_thread() is not threading.main_thread()
        or not hasattr(signal, "pthread_kill")
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        return False
    read_end, write_end = os.pipe()  # NB: not inherited by exec plugins (O_CLOEXEC)
    os.set_blocking(write_end, False)
    if signal.set_wakeup_fd(write_end, warn_on_full_buffer=False) != -1:  # someone else's: leave it
        signal.set_wakeup_fd(-1)
        os.close(read_end)
        os.close(write_end)
        return False
    state = _State()
    main = threading.main_thread().ident
    assert main is not None  # NB: the main thread runs: it is the caller

    def on_sigint(signum, frame):
        kick, state.kick_for = state.kick_for, 0
        if kick and state.raised >= kick:
            return  # a repeat for a press already raised: nothing more to interrupt
        state.raised += 1
        raise KeyboardInterrupt

    def watch() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        presses = 0
        while True:
            try:
                data = os.read(read_end, 64)
            except OSError:
                return
            if not data:
                return
            for number in data:
                if number != signal.SIGINT:
                    continue
                if state.kicks_sent:  # the byte of one of our own repeats
                    state.kicks_sent -= 1
                    continue
                presses += 1
                for _ in range(KICKS):
                    if _taken(state, presses):
                        break
                    state.kick_for = presses
                    state.kicks_sent += 1
                    signal.pthread_kill(main, signal.SIGINT)

    signal.signal(signal.SIGINT, on_sigint)
    threading.Thread(target=watch, name="sigint-watcher", daemon=True).start()
    return True


def _taken(state: _State, press: int) -> bool:
    """Whether the main thread raised for ``press`` within one KICK_INTERVAL."""
    time.sleep(KICK_INTERVAL)
    return state.raised >= press
