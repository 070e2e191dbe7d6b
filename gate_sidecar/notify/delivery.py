"""The delivery queue: bounded, one thread of its own, retries with backoff, drops counted and logged.

Nothing here runs on the webhook path: :meth:`DeliveryQueue.put` appends under a lock and returns
(or drops at once when the queue is full). The thread sends one delivery at a time, in order per
*lane* (a CanaryGate and a receiver: a thread's replies must follow its top message), and other
lanes pass a lane that waits for its retry.

* a receiver down, slow (its own timeout) or failing (5xx): retried after 1, 2, 4 ... seconds
  (capped at ``max_delay``), a 429's ``Retry-After`` honoured instead;
* given up, with a log line and ``canarygate_sidecar_notifications_total{result="dropped_*"}``,
  after ``max_attempts`` tries or ``max_age`` seconds, when the receiver refuses it for good, or
  at once when ``maxsize`` deliveries already wait (``dropped_queue_full``).
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gate_sidecar.notify.sinks import GiveUp, Retry
from gate_sidecar.worker import Worker

log = logging.getLogger(__name__)

SENT = "sent"
RETRY = "retry"
DROPPED_FULL = "dropped_queue_full"
DROPPED_REFUSED = "dropped_refused"
DROPPED_EXPIRED = "dropped_retries"


@dataclass
class Delivery:
    """One notice for one receiver."""

    key: tuple[str, str]
    receiver: str  # "slack" or "webhook:NAME"
    notice: Any
    #: The receiver's target (a Slack channel), "" for a webhook.
    target: str = ""
    attempts: int = 0
    queued: float = 0.0
    due: float = 0.0
    seq: int = 0
    #: Steps done within this delivery (a Slack reply posted before its chat.update failed).
    done: set[str] = field(default_factory=set)

    @property
    def lane(self) -> tuple:
        return (self.key, self.receiver)


class DeliveryQueue(Worker):
    """``send(delivery)`` returns when delivered, raises Retry or GiveUp (gate_sidecar.notify.sinks)."""

    thread_name = "gate-notify"

    def __init__(
        self,
        send: Callable[[Delivery], None],
        *,
        maxsize: int = 1000,
        max_attempts: int = 8,
        max_age: float = 900.0,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        jitter: float = 0.2,
        metrics=None,
        clock: Callable[[], float] = time.monotonic,
    ):
        super().__init__()
        self.send = send
        self.maxsize = maxsize
        self.max_attempts = max_attempts
        self.max_age = max_age
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.jitter = jitter
        self.metrics = metrics
        self.clock = clock
        self._pending: list[Delivery] = []
        self._seq = itertools.count()
        self._deadline = float("inf")
        self._busy = False

    # -- any thread ---------------------------------------------------------------------------
    def put(self, delivery: Delivery) -> bool:
        """Queue ``delivery``; False (dropped: counted, logged) when ``maxsize`` already wait."""
        with self._cv:
            if len(self._pending) >= self.maxsize:
                full = True
            else:
                full = False
                now = self.clock()
                delivery.queued = delivery.queued or now
                delivery.due = now
                delivery.seq = next(self._seq)
                self._pending.append(delivery)
                self._cv.notify()
        if full:
            self._count(delivery.receiver, DROPPED_FULL)
            log.warning(
                "notification dropped: %d already wait (queue full): %s %s for CanaryGate %s/%s",
                self.maxsize,
                delivery.notice.kind,
                delivery.receiver,
                *delivery.key,
            )
        self._gauge()
        return not full

    def __len__(self) -> int:
        return len(self._pending)

    def idle(self) -> bool:
        """Nothing queued and nothing being sent (tests wait for it)."""
        with self._cv:
            return not self._pending and not self._busy

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is due within ``timeout`` (no more retries), then end the thread; what is left is
        logged (a restart notices holds and changes again and sends what status does not record)."""
        with self._cv:
            self._deadline = self.clock() + timeout  # NB: before Worker.stop raises the flag
        super().stop(timeout + 1.0)
        if self._pending:
            log.info("%d notifications not sent at shutdown", len(self._pending))

    # -- the thread -----------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            with self._cv:
                delivery, wait = self._take()
                if delivery is None:
                    if self._stopping and (wait is None or self.clock() + wait > self._deadline):
                        return
                    self._cv.wait(wait if wait is not None else 1.0)
                    continue
                self._busy = True
            try:
                self._attempt(delivery)
            finally:
                with self._cv:
                    self._busy = False
                self._gauge()

    def _take(self) -> tuple[Delivery | None, float | None]:
        """The first due delivery whose lane has none before it (removed), or None and how long to wait."""
        now = self.clock()
        blocked: set[tuple] = set()
        wait = None
        for i, delivery in enumerate(self._pending):
            if delivery.lane in blocked:
                continue
            blocked.add(delivery.lane)
            if delivery.due <= now:
                return self._pending.pop(i), 0.0
            wait = delivery.due - now if wait is None else min(wait, delivery.due - now)
        return None, wait

    def _attempt(self, delivery: Delivery) -> None:
        delivery.attempts += 1
        try:
            self.send(delivery)
        except Retry as e:
            now = self.clock()
            delay = e.after if e.after is not None else self._backoff(delivery.attempts)
            if self._stopping or delivery.attempts >= self.max_attempts or now + delay - delivery.queued > self.max_age:
                self._count(delivery.receiver, DROPPED_EXPIRED)
                log.warning(
                    "notification dropped after %d attempts: %s %s for CanaryGate %s/%s: %s",
                    delivery.attempts,
                    delivery.notice.kind,
                    delivery.receiver,
                    *delivery.key,
                    e,
                )
                return
            self._count(delivery.receiver, RETRY)
            log.info("notification to %s will be retried in %.1fs: %s", delivery.receiver, delay, e)
            with self._cv:
                delivery.due = now + delay
                # NB: back in its place: the lane's later deliveries keep waiting behind it.
                self._pending.append(delivery)
                self._pending.sort(key=lambda d: d.seq)
                self._cv.notify()
        except GiveUp as e:
            self._count(delivery.receiver, DROPPED_REFUSED)
            log.warning(
                "notification dropped, refused: %s %s for CanaryGate %s/%s: %s",
                delivery.notice.kind,
                delivery.receiver,
                *delivery.key,
                e,
            )
        except Exception:
            self._count(delivery.receiver, DROPPED_REFUSED)
            log.exception("bug while sending a notification to %s; dropped", delivery.receiver)
        else:
            self._count(delivery.receiver, SENT)

    def _backoff(self, attempts: int) -> float:
        delay = min(self.max_delay, self.base_delay * 2 ** (attempts - 1))
        return delay * (1 + random.uniform(-self.jitter, self.jitter)) if self.jitter else delay

    def _count(self, receiver: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notified(receiver, result)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.notify_queued(len(self._pending))
