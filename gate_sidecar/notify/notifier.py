"""Notices from what the sidecar sees, routed per CanaryGate, delivered off the webhook path.

Where notices come from (no API request of its own; every hook returns at once):

* **held**: :class:`gate_sidecar.writes.Writer` tells each hold the first time it answers it (the
  moment it records the GateHolding Event), on whichever thread answered Flagger; the notice is
  queued and the call goes on. A hold another replica answered is read off ``status.calls`` (a 403
  of the holding gate in this rollout): the same notice, the same id.
* **opened / closed**: a live change (annotation) new to the cache, read by a cache listener.
* **promoted / rolled back / aborted**: the Canary reaching Succeeded or Failed (aborted when the
  rollback gate was opened live for that rollout).

Until the cache first syncs nothing is noticed; then one sweep reads every CanaryGate as the first
sight of it: changes and ends older than ``RECENT`` seconds are not announced (a first install
does not replay history), newer ones are unless ``status.notifications.sent`` records them.

Routing: the annotations ``notify.piggysec.com/slack-channel`` (a channel, or ``none``) and
``notify.piggysec.com/webhooks`` (names of ``--notify-webhook NAME=URL``, or ``none``) on the
CanaryGate; without them, ``--slack-channel`` and the webhook named ``default``.

What was sent (``receiver|id``, the last ``SENT_MEMORY``) and where each thread's Slack top message
is (channel id and ``ts``) are kept in ``status.notifications`` of the CanaryGate, written by the
writer's coalesced status writes (:attr:`Writer.status_parts`): a restart reads them back and
neither resends nor starts a second thread. In a pod, replicas elect the one that notifies on the
Lease ``canary-gate-notifier`` (deploy/sidecar/notify grants it); a replica that does not lead
notices, sends nothing and keeps no record, so it reads the leader's afresh when it takes over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from canarygate import gates, rollouts
from canarygate.model import END_PHASES, Canary
from canarygate.resolution import Decision, holding_gate, resolve_gates
from canarygate.times import parse_time
from gate_sidecar.cache import GateCache, Key
from gate_sidecar.notify import notices
from gate_sidecar.notify.config import NotifyConfig
from gate_sidecar.notify.delivery import Delivery, DeliveryQueue
from gate_sidecar.notify.notices import Notice
from gate_sidecar.notify.sinks import GiveUp, Gone, Posted, Retry, SlackSink, WebhookSink

log = logging.getLogger(__name__)

ANNOTATION_PREFIX = "notify.piggysec.com/"
SLACK_CHANNEL_ANNOTATION = ANNOTATION_PREFIX + "slack-channel"
WEBHOOKS_ANNOTATION = ANNOTATION_PREFIX + "webhooks"
OFF = frozenset({"", "none", "off", "false"})
DEFAULT_WEBHOOK = "default"
#: A change or end older than this at first sight is not announced (seconds).
RECENT = 3600.0
#: Deliveries remembered as sent, per CanaryGate (status.notifications.sent), and Slack threads.
SENT_MEMORY = 40
THREAD_MEMORY = 3
#: Notices queued by this process, remembered so a relist does not queue them twice.
QUEUED_MEMORY = 10_000
STATUS_KEY = "notifications"
#: The Lease (in the sidecar's namespace) whose holder notifies, when the sidecar runs in a pod.
NOTIFY_LEASE = "canary-gate-notifier"


@dataclass
class _Thread:
    """One rollout's Slack top message."""

    rollout: str
    channel: str  # as configured (a name or an id)
    id: str  # the channel's id, as Slack answered
    ts: str


@dataclass
class _State:
    """What this CanaryGate's notifications have done (status.notifications)."""

    rollout: str = ""
    ended: bool = False
    holding: dict[str, Any] | None = None
    abort: dict[str, str] | None = None
    threads: list[_Thread] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, raw: Any) -> _State:
        if not isinstance(raw, Mapping):
            return cls()
        threads = [
            _Thread(str(t.get("rollout", "")), str(t.get("channel", "")), str(t.get("id", "")), str(t["ts"]))
            for t in raw.get("slack") or ()
            if isinstance(t, Mapping) and t.get("ts")
        ]
        holding = raw.get("holding")
        abort = raw.get("abort")
        return cls(
            rollout=str(raw.get("rollout", "")),
            ended=bool(raw.get("ended")),
            holding=dict(holding) if isinstance(holding, Mapping) else None,
            abort=dict(abort) if isinstance(abort, Mapping) else None,
            threads=threads[-THREAD_MEMORY:],
            sent=[str(s) for s in raw.get("sent") or ()][-SENT_MEMORY:],
        )

    def to_status(self) -> dict[str, Any]:
        return {
            "rollout": self.rollout,
            "ended": self.ended,
            "holding": self.holding,
            "abort": self.abort,
            "slack": [asdict(t) for t in self.threads],
            "sent": list(self.sent),
        }

    def thread(self, rollout: str, channel: str) -> _Thread | None:
        for t in self.threads:
            if t.rollout == rollout and t.channel == channel:
                return t
        return None


class Notifier:
    """See the module docstring. ``writer``: a :class:`gate_sidecar.writes.Writer` (its hooks are
    registered here); ``leading``: whether this replica notifies now."""

    def __init__(
        self,
        config: NotifyConfig,
        cache: GateCache,
        *,
        writer=None,
        metrics=None,
        leading: Callable[[], bool] = lambda: True,
        wallclock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
    ):
        self.config = config
        self.cache = cache
        self.writer = writer
        self.leading = leading
        self.wallclock = wallclock
        self.slack = (
            SlackSink(config.slack_token, base_url=config.slack_api_url or None, timeout=config.timeout)
            if config.slack_token
            else None
        )
        self.webhooks = {
            name: WebhookSink(name, url, timeout=config.timeout) for name, url in sorted(config.webhooks.items())
        }
        self.queue = DeliveryQueue(
            self._send,
            maxsize=config.queue_size,
            max_attempts=config.max_attempts,
            max_age=config.max_age,
            base_delay=base_delay,
            max_delay=max_delay,
            metrics=metrics,
            clock=clock,
        )
        self._lock = threading.RLock()
        self._states: dict[Key, _State] = {}
        self._live_seen: dict[Key, dict[str, str]] = {}
        self._ends_seen: dict[Key, tuple[str, str]] = {}
        self._queued: OrderedDict[tuple, None] = OrderedDict()
        self._warned: set[str] = set()
        self._swept = threading.Event()
        self._stopping = threading.Event()
        cache.listeners.append(self.on_change)
        if writer is not None:
            writer.status_parts.append(self.status_for)
            writer.hold_listeners.append(self.on_held)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> Notifier:
        self.queue.start()
        threading.Thread(target=self._first_sweep, name="gate-notify-sweep", daemon=True).start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        self.queue.stop(timeout)

    def _first_sweep(self) -> None:
        while not self.cache.synced:
            if self._stopping.wait(0.05):
                return
        self.sweep()

    def sweep(self) -> None:
        """Read every CanaryGate once as the first sight of it (then listeners take over)."""
        self._swept.set()  # NB: a change arriving meanwhile is checked by its listener; the lock orders both
        for entry in self.cache.entries():
            self._check(entry.key)

    def resync(self) -> None:
        """This replica starts leading (the elector's ``on_start``): forget what it saw and sweep, as a
        fresh start does, with the record the previous leader wrote read afresh from the status."""
        with self._lock:
            self._states.clear()
            self._live_seen.clear()
            self._ends_seen.clear()
        self.sweep()

    # -- hooks (any thread; no I/O) ------------------------------------------------------------
    def on_held(self, key: Key, hook: str, decision: Decision, canary: Canary | None) -> None:
        """A closed gate holds a rollout (first answer of that hold in this process). Runs on the
        webhook thread: a bug here is logged, never raised into Flagger's answer."""
        if not self.config.enabled:
            return
        try:
            self._held(key, hook, decision, canary)
        except Exception:
            log.exception("bug while noticing a hold of %s on %s/%s; no notification", hook, *key)

    def _held(self, key: Key, hook: str, decision: Decision, canary: Canary | None) -> None:
        rollout = rollouts.mark_of(canary).since
        notice = notices.held(key, hook, decision, canary, rollout=rollout, now=_rfc3339(self.wallclock()))
        with self._lock:
            state = self._state(key)
            if state is None:
                return
            self._enqueue(key, notice, state)

    def on_change(self, kind: str, key: Key) -> None:
        if not self._swept.is_set() or not self.config.enabled:
            return
        keys = (key,) if kind == "gate" else self.cache.gates_for_canary(key)
        for gate_key in keys:
            self._check(gate_key)

    def status_for(self, key: Key) -> dict[str, Any]:
        """What the writer merges into this CanaryGate's status: ``notifications``, when this replica
        keeps its record (it notifies); nothing otherwise, so another replica's record stays."""
        with self._lock:
            state = self._states.get(key)
            try:
                return {STATUS_KEY: state.to_status()} if state is not None else {}
            except Exception:  # NB: never stop the writer's status write
                log.exception("bug while recording notifications of %s/%s", *key)
                return {}

    # -- noticing ------------------------------------------------------------------------------
    def _check(self, key: Key) -> None:
        entry = self.cache.entry(key)
        if entry is None or entry.gate is None:
            with self._lock:
                self._live_seen.pop(key, None)
                self._ends_seen.pop(key, None)
            return
        gate = entry.gate
        canary = self.cache.canary(*entry.target) if entry.target else None
        now = self.wallclock()
        with self._lock:
            if not self.leading():  # NB: notices nothing, so that taking over is a first sight (resync)
                self._states.pop(key, None)
                self._live_seen.pop(key, None)
                self._ends_seen.pop(key, None)
                return
            first = key not in self._live_seen
            seen = self._live_seen.get(key, {})
            self._live_seen[key] = {g: c.identity for g, c in gate.live.items()}
            fresh = [
                c
                for g, c in sorted(gate.live.items())
                if seen.get(g) != c.identity and (not first or _recent(c.at, now))
            ]
            end = None
            if canary is not None and canary.phase in END_PHASES:
                mark = (canary.phase, canary.promoted.last_transition_time if canary.promoted else "")
                if self._ends_seen.get(key) != mark:
                    self._ends_seen[key] = mark
                    if not first or _recent(mark[1], now):
                        end = canary
            else:
                self._ends_seen.pop(key, None)
            hold = self._status_hold(key, gate, canary)
            if not fresh and end is None and hold is None:
                return
            state = self._state(key)
            if state is None:
                return
            rollout = rollouts.mark_of(canary).since
            if hold is not None:
                self._enqueue(key, hold, state)
            for change in fresh:
                self._enqueue(key, notices.changed(key, change, canary, rollout=rollout), state)
            if end is not None:
                abort = gate.live.get(gates.ROLLBACK)
                aborted_by = abort if abort is not None and abort.state == gates.OPENED else None
                if aborted_by is None and state.abort is not None and not state.ended:
                    aborted_by = _change_from(state.abort)
                thread = state.rollout if state.rollout and not state.ended else rollout
                detail = _failure(gate, end)
                self._enqueue(key, notices.ended(key, end, rollout=thread, aborted_by=aborted_by, detail=detail), state)

    def _status_hold(self, key: Key, gate, canary: Canary | None) -> Notice | None:
        """A hold read off the CanaryGate's status: the gate holding the rollout now (from the cache)
        was answered 403 in this rollout, as ``status.calls`` says. This is how the replica that
        notifies learns of a hold answered by another (Flagger's connection may stick to one replica
        for good); the notice is the one :meth:`on_held` makes, so the same id."""
        if canary is None or not canary.active:
            return None
        decisions = resolve_gates(gate, canary=canary, consumed=self.cache.consumed(key))
        hook = holding_gate(decisions, canary)
        calls = gate.status.get("calls") if isinstance(gate.status, Mapping) else None
        record = calls.get(hook) if hook and isinstance(calls, Mapping) else None
        if hook is None or not isinstance(record, Mapping) or record.get("answer") != 403:
            return None
        since = rollouts.mark_of(canary).since
        answered, started = parse_time(record.get("at")), parse_time(since)
        if answered is None or (started is not None and answered < started):
            return None  # NB: an answer from an earlier rollout
        return notices.held(key, hook, decisions[hook], canary, rollout=since, now=str(record["at"]))

    def _state(self, key: Key) -> _State | None:
        """This CanaryGate's record (loaded from its status at first use); None when not leading."""
        if not self.leading():
            self._states.pop(key, None)  # NB: the leader's writes are read afresh when we lead
            return None
        state = self._states.get(key)
        if state is None:
            entry = self.cache.entry(key)
            raw = entry.gate.status.get(STATUS_KEY) if entry is not None and entry.gate is not None else None
            state = self._states[key] = _State.load(raw)
        return state

    def _enqueue(self, key: Key, notice: Notice, state: _State) -> None:
        """Route ``notice`` and queue one delivery per receiver not yet sent; update the thread record
        (and have it written) only when something is new: a notice seen again changes nothing."""
        marks = [
            (receiver, target, f"{receiver}|{notice.id}")
            for receiver, target in self._routes(key)
            if f"{receiver}|{notice.id}" not in state.sent and (key, f"{receiver}|{notice.id}") not in self._queued
        ]
        if not marks:
            return
        holding = state.holding or {}
        if notice.kind == notices.HELD and holding.get("gate") == notice.gate and state.rollout == notice.rollout:
            notice = replace(notice, at=str(holding.get("at") or notice.at))  # NB: since the first hold
        if notice.kind in notices.ENDS:
            state.rollout, state.ended, state.holding, state.abort = notice.rollout, True, None, None
        elif state.rollout != notice.rollout or state.ended:
            state.rollout, state.ended, state.holding, state.abort = notice.rollout, False, None, None
        if notice.kind == notices.HELD:
            state.holding = asdict(notice)
        elif notice.kind == notices.OPENED and state.holding and state.holding.get("gate") == notice.gate:
            state.holding = None
        if notice.gate == gates.ROLLBACK and notice.kind == notices.OPENED:
            state.abort = {"by": notice.by, "reason": notice.reason, "at": notice.at}
        for receiver, target, mark in marks:
            self._queued[(key, mark)] = None
            while len(self._queued) > QUEUED_MEMORY:
                self._queued.popitem(last=False)
            self.queue.put(Delivery(key=key, receiver=receiver, notice=notice, target=target))
        if self.writer is not None:
            self.writer.refresh_status(key)

    def _routes(self, key: Key) -> list[tuple[str, str]]:
        entry = self.cache.entry(key)
        annotations = entry.gate.annotations if entry is not None and entry.gate is not None else {}
        routes = []
        channel = annotations.get(SLACK_CHANNEL_ANNOTATION)
        channel = self.config.slack_channel if channel is None else channel.strip()
        if channel.lower() not in OFF:
            if self.slack is None:
                self._warn_once(
                    f"slack:{key}", "CanaryGate %s/%s names a Slack channel, but no --slack-token is set", key
                )
            else:
                routes.append(("slack", channel))
        names = annotations.get(WEBHOOKS_ANNOTATION)
        wanted = (DEFAULT_WEBHOOK,) if names is None else tuple(n.strip() for n in names.split(",") if n.strip())
        for name in wanted:
            if name.lower() in OFF:
                continue
            if name in self.webhooks:
                routes.append((self.webhooks[name].name, ""))
            elif names is not None:
                self._warn_once(
                    f"webhook:{key}:{name}",
                    "CanaryGate %s/%s names webhook %r, which --notify-webhook does not define",
                    key,
                    name,
                )
        return routes

    def _warn_once(self, mark: str, message: str, key: Key, *args: Any) -> None:
        if mark not in self._warned:
            self._warned.add(mark)
            log.warning(message, *key, *args)

    # -- sending (the delivery thread) ---------------------------------------------------------
    def _send(self, delivery: Delivery) -> None:
        notice: Notice = delivery.notice
        if delivery.receiver == "slack":
            self._send_slack(delivery, notice)
        else:
            sink = next((s for s in self.webhooks.values() if s.name == delivery.receiver), None)
            if sink is None:
                raise GiveUp(f"{delivery.receiver} is no longer configured")
            sink.post(notices.webhook_body(notice))
        self._sent(delivery)

    def _send_slack(self, delivery: Delivery, notice: Notice) -> None:
        assert self.slack is not None
        with self._lock:
            state = self._states.get(delivery.key) or _State()
            thread = state.thread(notice.rollout, delivery.target)
            holding = _notice_from(state.holding) if state.rollout == notice.rollout else None
        top = notices.summary(notice, holding)
        if holding is not None and holding.command:
            top += "\n" + notices.approve_hint(holding)
        if thread is None:
            posted = self.slack.post(delivery.target, top)
            with self._lock:
                kept = self._states.get(delivery.key)
                if kept is not None:
                    kept.threads = [
                        *kept.threads,
                        _Thread(notice.rollout, delivery.target, posted.channel, posted.ts),
                    ][-THREAD_MEMORY:]
            if notices.line(notice) not in top:  # NB: the top shows a hold still in force: say what happened
                self.slack.post(posted.channel, notices.line(notice), thread_ts=posted.ts)
            return
        posted = Posted(channel=thread.id or thread.channel, ts=thread.ts)
        try:
            if "reply" not in delivery.done:
                self.slack.post(posted.channel, notices.line(notice), thread_ts=posted.ts)
                delivery.done.add("reply")  # NB: a retry of the update does not post the reply twice
            self.slack.update(posted, top)
        except Gone as e:  # someone deleted the top message: the next attempt starts a new one
            with self._lock:
                kept = self._states.get(delivery.key)
                if kept is not None:
                    kept.threads = [t for t in kept.threads if t != thread]
            if "reply" in delivery.done:
                return  # the reply is there; only the top message is gone
            raise Retry(f"{e}: a new top message", 0.0) from None

    def _sent(self, delivery: Delivery) -> None:
        with self._lock:
            state = self._states.get(delivery.key)
            if state is not None:
                state.sent = [*state.sent, f"{delivery.receiver}|{delivery.notice.id}"][-SENT_MEMORY:]
        if self.writer is not None:
            self.writer.refresh_status(delivery.key)


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _recent(at: str, now: float) -> bool:
    moment = parse_time(at) if at else None
    return moment is not None and now - moment.timestamp() <= RECENT


def _notice_from(raw: Mapping[str, Any] | None) -> Notice | None:
    if not raw:
        return None
    try:
        return Notice(**{k: str(v) for k, v in raw.items() if k in Notice.__dataclass_fields__})
    except TypeError:
        return None


def _change_from(raw: Mapping[str, str]):
    from canarygate.annotations import LiveChange

    return LiveChange(gate=gates.ROLLBACK, state=gates.OPENED, by=raw.get("by", ""), reason=raw.get("reason", ""))


def _failure(gate, canary: Canary) -> str:
    """Why a rollout failed, as far as the cache knows: the last failed check the writer recorded."""
    if canary.phase != "Failed":
        return ""
    failure = gate.status.get("failure") if isinstance(gate.status, Mapping) else None
    if isinstance(failure, Mapping):
        return str(failure.get("check") or failure.get("message") or "")
    return ""
