"""gate_sidecar.worker, the lifecycle the writer, reconciler and leader elector share. Covers: start
runs ``run`` in a daemon thread named for the worker; stop wakes a sleeping loop at once (not after
its sleep) and joins it; stop before start is harmless; a subclass's own stop work runs after the join.
"""

from __future__ import annotations

import threading
import time

from gate_sidecar.worker import Worker


class Ticker(Worker):
    thread_name = "ticker"

    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0
        self.thread: threading.Thread | None = None
        self.ran = threading.Event()

    def run(self) -> None:
        self.thread = threading.current_thread()
        while True:
            self.ticks += 1
            self.ran.set()
            if not self.sleep(60.0):
                return


def test_stop_wakes_the_loop_and_joins_it():
    ticker = Ticker().start()
    assert ticker.ran.wait(5)
    assert ticker.thread.name == "ticker" and ticker.thread.daemon
    started = time.monotonic()
    ticker.stop(timeout=5)
    assert time.monotonic() - started < 2, "stop waited out the sleep"
    assert not ticker.thread.is_alive() and ticker.ticks == 1 and ticker.stopping


def test_stop_before_start_is_harmless():
    ticker = Ticker()
    ticker.stop(timeout=0.1)
    assert ticker.stopping and not ticker.sleep(0)


def test_a_subclass_stop_runs_after_the_thread_ended():
    seen = []

    class Releasing(Ticker):
        def stop(self, timeout: float = 5.0) -> None:
            super().stop(timeout)
            seen.append(self.thread.is_alive())

    worker = Releasing().start()
    assert worker.ran.wait(5)
    worker.stop()
    assert seen == [False]
