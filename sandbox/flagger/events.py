"""client-go's event correlator (``tools/record/events_cache.go``, v0.36, Flagger v1.44's), pure.

Flagger records its Kubernetes Events through client-go's ``EventRecorder``; before an Event
reaches the API server, ``EventCorrelator.EventCorrelate`` runs three stages, each keyed as
client-go keys them:

1. **Aggregation** (``EventAggregator``, per source + involved object + type + reason +
   reporting controller/instance): the distinct messages seen within 600 s of the previous
   similar Event are counted; from the 10th on, the Event becomes a new one whose message is
   ``"(combined from similar events): " + message`` (one Event, its ``count`` bumped after).
2. **Observation** (``eventLogger``, per source + object + type + reason + message, no time
   limit): an Event seen before becomes a PATCH of the existing Event with ``count + 1``,
   ``lastTimestamp`` and ``message``; else a POST.
3. **Spam filter** (``EventSourceObjectSpamFilter``, per source + object + type): a token
   bucket of 25 with one token back every 300 s; an Event without a token is dropped. The
   observation is recorded before the filter, so the next Event that passes carries the counts
   of those dropped.

Flagger's event *webhooks* do not go through any of this: ``recordEventInfof`` hands the Event
to the recorder (asynchronous) and then calls the event webhooks itself, so every event reaches
the webhooks, including those the spam filter drops (``pkg/controller/events.go``).

The LRU bound (4096 keys per cache) is not reproduced. ``PopAny`` removes an arbitrary message
from the aggregation set in Go (map order); here, the oldest.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

AGGREGATE_MAX_EVENTS = 10
AGGREGATE_INTERVAL = 600.0
SPAM_BURST = 25
SPAM_QPS = 1.0 / 300.0
COMBINED_PREFIX = "(combined from similar events): "


@dataclass
class Result:
    """What to send: ``patch`` None means create ``event``; ``skip`` means send nothing."""

    event: dict[str, Any] | None
    patch: dict[str, Any] | None = None
    skip: bool = False


def _obj(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event.get("involvedObject") or {}


def _source(event: Mapping[str, Any]) -> tuple[str, str]:
    source = event.get("source") or {}
    return source.get("component", ""), source.get("host", "")


def _object_key(event: Mapping[str, Any]) -> tuple:
    o = _obj(event)
    return (
        *_source(event),
        o.get("kind", ""),
        o.get("namespace", ""),
        o.get("name", ""),
        o.get("uid", ""),
        o.get("apiVersion", ""),
    )


def event_key(event: Mapping[str, Any]) -> tuple:
    """``getEventKey`` (field path included)."""
    o = _obj(event)
    return (
        "event",
        *_source(event),
        o.get("kind", ""),
        o.get("namespace", ""),
        o.get("name", ""),
        o.get("fieldPath", ""),
        o.get("uid", ""),
        o.get("apiVersion", ""),
        event.get("type", ""),
        event.get("reason", ""),
        event.get("message", ""),
    )


def spam_key(event: Mapping[str, Any]) -> tuple:
    return (*_object_key(event), event.get("type", ""))


def aggregate_key(event: Mapping[str, Any]) -> tuple:
    return (
        "aggregate",
        *_object_key(event),
        event.get("type", ""),
        event.get("reason", ""),
        event.get("reportingComponent", ""),
        event.get("reportingInstance", ""),
    )


class _TokenBucket:
    """``flowcontrol.NewTokenBucketPassiveRateLimiter``: starts full."""

    def __init__(self, qps: float, burst: int, now: float) -> None:
        self.qps, self.burst = qps, burst
        self.tokens = float(burst)
        self.last = now

    def try_accept(self, now: float) -> bool:
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.qps)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class EventCorrelator:
    """``NewEventCorrelator`` with client-go's defaults; ``clock()`` gives seconds."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._aggregates: dict[tuple, tuple[list[str], float]] = {}
        self._observed: dict[tuple, dict[str, Any]] = {}
        self._buckets: dict[tuple, _TokenBucket] = {}

    def correlate(self, event: Mapping[str, Any], *, name: Callable[[], str]) -> Result:
        """``EventCorrelate``; ``name()`` names a new aggregate Event (``<object>.<hex ns>``)."""
        now = self.clock()
        event, key = self._aggregate(dict(event), now, name)
        observed, patch = self._observe(event, key)
        bucket = self._buckets.get(spam_key(observed))
        if bucket is None:
            bucket = self._buckets[spam_key(observed)] = _TokenBucket(SPAM_QPS, SPAM_BURST, now)
        if not bucket.try_accept(now):
            return Result(None, skip=True)
        return Result(observed, patch)

    def update_state(self, event: Mapping[str, Any]) -> None:
        """``UpdateState``: what the server answered (name, count) under the Event's key."""
        self._observed[event_key(event)] = {
            "count": int(event.get("count") or 1),
            "firstTimestamp": event.get("firstTimestamp"),
            "name": (event.get("metadata") or {}).get("name"),
        }

    def _aggregate(self, event: dict[str, Any], now: float, name: Callable[[], str]) -> tuple[dict[str, Any], tuple]:
        key = aggregate_key(event)
        messages, last = self._aggregates.get(key, ([], float("-inf")))
        if now - last > AGGREGATE_INTERVAL:
            messages = []
        if event.get("message", "") not in messages:
            messages.append(event.get("message", ""))
        self._aggregates[key] = (messages, now)
        if len(messages) < AGGREGATE_MAX_EVENTS:
            return event, event_key(event)
        messages.pop(0)
        combined = {
            "metadata": {"name": name(), "namespace": (event.get("metadata") or {}).get("namespace")},
            "involvedObject": copy.deepcopy(_obj(event)),
            "count": 1,
            "firstTimestamp": event.get("lastTimestamp"),
            "lastTimestamp": event.get("lastTimestamp"),
            "message": COMBINED_PREFIX + event.get("message", ""),
            "type": event.get("type"),
            "reason": event.get("reason"),
            "source": copy.deepcopy(event.get("source")),
        }
        return combined, key

    def _observe(self, event: dict[str, Any], key: tuple) -> tuple[dict[str, Any], dict[str, Any] | None]:
        event = copy.deepcopy(event)
        last = self._observed.get(key)
        patch = None
        if last and last["count"] > 0:
            event.setdefault("metadata", {})["name"] = last["name"]
            event["firstTimestamp"] = last["firstTimestamp"]
            event["count"] = last["count"] + 1
            patch = {
                "count": event["count"],
                "lastTimestamp": event.get("lastTimestamp"),
                "message": event.get("message"),
            }
        self._observed[key] = {
            "count": int(event.get("count") or 1),
            "firstTimestamp": event.get("firstTimestamp"),
            "name": (event.get("metadata") or {}).get("name"),
        }
        return event, patch
