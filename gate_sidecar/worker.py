"""The sidecar's background threads' one lifecycle: start a daemon thread on ``run``, and stop it by a
flag set under a condition that also wakes it, then join it (bounded).

The writer, the reconciler, the leader elector and the notifications queue each subclass :class:`Worker`, writing their
``run`` loop, which waits on ``self._cv`` (or :meth:`Worker.sleep`) and returns once ``self._stopping``
is set; what a stop must still do (the writer's last writes, the Lease's release) stays theirs.
"""

from __future__ import annotations

import threading
from typing import ClassVar, Self


class Worker:
    """One daemon thread named :attr:`thread_name` running :meth:`run`."""

    thread_name: ClassVar[str] = "worker"

    def __init__(self) -> None:
        #: Guards the subclass's queue and ``_stopping``; notified on every change of either.
        self._cv = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Ask :meth:`run` to return (waking it), then wait at most ``timeout`` seconds for the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def stopping(self) -> bool:
        return self._stopping

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if stopped meanwhile; True while not stopping."""
        with self._cv:
            self._cv.wait_for(lambda: self._stopping, seconds)
            return not self._stopping

    def run(self) -> None:
        raise NotImplementedError
