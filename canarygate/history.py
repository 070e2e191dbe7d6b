"""The audit history of a CanaryGate: who changed which gate, when and why, and what the rollout did.

Kept in the CanaryGate's ``status.history`` (docs/history.md says why there): the gate sidecar
records it from what its informers see (every live-change annotation, every Canary phase) and from
``status.failure`` (the rollback cause it reads off Flagger's event stream). Kubernetes Events of
the same changes expire after an hour; this record lasts as long as the CanaryGate.

Stored form (version 1)::

    status:
      history:
        version: 1
        dropped: 0            # entries removed by the bounds since the record began
        entries:
          - {rollout: 3, at: "...", kind: phase, phase: Waiting, since: "...", weight: 0, failedChecks: 0}
          - {rollout: 3, at: "...", kind: gate, action: set, id: 1f2e.., gate: confirm-rollout,
             state: opened, scope: step, by: alice, reason: CAB-1}
          - {rollout: 3, at: "...", kind: gate, action: ended, id: 1f2e.., gate: confirm-rollout, how: used}
          - {rollout: 3, at: "...", kind: failure, message: "Rolling back ...", check: "Halt ..."}

``rollout`` numbers rollouts as the record saw them start: a change made between rollouts belongs
to the next one (that is the rollout its scope covers). Every function here is pure: the same stored
record and the same observations give the same result, so two sidecar replicas that record the same
cluster converge (their writes are conditional on the record they read).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from canarygate import rollouts
from canarygate.annotations import SCOPE_STEP, SCOPE_STICKY, LiveChange
from canarygate.model import ACTIVE_PHASES, END_PHASES, Canary

VERSION = 1
#: Bounds of the record: rollouts kept, entries kept, and its size as compact JSON (UTF-8 bytes). A
#: CanaryGate is one etcd object (1.5 MiB at most, shared with its spec and annotations).
MAX_ROLLOUTS = 10
MAX_ENTRIES = 200
MAX_BYTES = 32 * 1024
#: The longest text kept in an entry (reason, message), in characters; longer text ends with "…".
MAX_TEXT = 256

#: The order of a rollout's phases within one revision's analysis (a newer revision restarts it).
FORWARD = ("Waiting", "Progressing", "WaitingPromotion", "Promoting", "Finalising")
#: Phases recorded (Initializing/Initialized are no rollout).
RECORDED_PHASES = ACTIVE_PHASES | END_PHASES

#: How a live change ended: ``used`` (a one-step approval the sidecar answered), ``expired`` (its
#: rollout is over), ``replaced`` (another change of the same gate), ``removed`` (taken away: resume,
#: or by hand; the annotation does not say by whom, the API server's audit log does).
USED, EXPIRED, REPLACED, REMOVED = "used", "expired", "replaced", "removed"


def empty() -> dict[str, Any]:
    return {"version": VERSION, "dropped": 0, "entries": []}


def parse(raw: Any) -> dict[str, Any]:
    """The stored record, or an empty one when absent or unreadable (a newer version included: it
    is then rewritten from now on, and the older entries are counted as dropped)."""
    if not isinstance(raw, Mapping) or raw.get("version") != VERSION or not isinstance(raw.get("entries"), list):
        dropped = (
            len(raw.get("entries") or ()) if isinstance(raw, Mapping) and isinstance(raw.get("entries"), list) else 0
        )
        return {**empty(), "dropped": dropped}
    entries = [dict(e) for e in raw["entries"] if isinstance(e, Mapping) and isinstance(e.get("rollout"), int)]
    dropped = raw["dropped"] if isinstance(raw.get("dropped"), int) else 0
    return {"version": VERSION, "dropped": dropped + len(raw["entries"]) - len(entries), "entries": entries}


def change_id(change: LiveChange) -> str:
    """A short name for one live change (who set what, when and why), whatever rollout it is bound to."""
    return hashlib.sha256(change.identity.encode()).hexdigest()[:12]


def _text(value: Any) -> str:
    text = str(value or "")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _last(entries: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    return next((e for e in reversed(entries) if e.get("kind") == kind), None)


def _current(entries: list[dict[str, Any]]) -> tuple[int, bool]:
    """The number of the last rollout recorded, and whether it is still running."""
    last = _last(entries, "phase")
    if last is None:
        return 0, False
    return int(last["rollout"]), last.get("phase") in ACTIVE_PHASES


def _rollout_now(entries: list[dict[str, Any]], canary: Canary | None) -> int:
    """The rollout a gate change made now belongs to: the running one, else the next."""
    number, running = _current(entries)
    active = canary is not None and canary.active
    return number if (running and active) else number + 1


def observe_canary(record: Mapping[str, Any], canary: Canary | None, now: str) -> dict[str, Any]:
    """Record the Canary's phase when it differs from the last one recorded (a new revision
    analysed in place counts: Flagger restarts the analysis)."""
    out = {**record, "entries": list(record.get("entries") or [])}
    if canary is None or canary.phase not in RECORDED_PHASES:
        return out
    entries = out["entries"]
    mark = rollouts.mark_of(canary)
    last = _last(entries, "phase")
    number, running = _current(entries)
    # NB: a replica may fold a view older than the record another replica wrote: Flagger's Promoted
    # condition only moves forward, and a phase already recorded for that rollout and revision is old.
    if last is not None and mark.since and str(last.get("since") or "") > mark.since:
        return out
    seen = (canary.phase, mark.since, mark.revision)
    if any(
        (e.get("phase"), e.get("since"), e.get("revision") or "") == seen for e in entries if e.get("kind") == "phase"
    ):
        return out
    last_phase = str(last.get("phase")) if last is not None else ""
    if (
        last is not None
        and canary.phase in FORWARD
        and last_phase in FORWARD
        and (last.get("since"), last.get("revision") or "") == (mark.since, mark.revision)
        and FORWARD.index(canary.phase) < FORWARD.index(last_phase)
    ):
        return out  # within one revision's analysis Flagger only moves forward: an older view
    if last is not None and last.get("phase") == canary.phase:
        if canary.active and last.get("since") == mark.since and (last.get("revision") or "") == mark.revision:
            return out
        if not canary.active and last.get("since") == mark.since:
            return out
    if canary.active:
        same = running and last is not None and last.get("since") == mark.since
        number = number if same else number + 1
    elif not running:
        number += 1  # a rollout that ended before the record saw it start
    entry: dict[str, Any] = {
        "rollout": number,
        "at": canary.last_transition_time or now,
        "kind": "phase",
        "phase": canary.phase,
        "since": mark.since,
        "weight": canary.canary_weight,
        "failedChecks": canary.failed_checks,
    }
    if mark.revision:
        entry["revision"] = mark.revision
    entries.append(entry)
    return out


def observe_gate(
    record: Mapping[str, Any],
    live: Mapping[str, LiveChange],
    canary: Canary | None,
    now: str,
    *,
    failure: Mapping[str, Any] | None = None,
    used: Iterable[str] = (),
    final: bool = True,
) -> dict[str, Any]:
    """Record the live changes not recorded yet, the end of those no longer there, and a rollback
    cause (``status.failure``) not recorded yet. ``used``: ids of the one-step approvals this sidecar
    answered. Ends are recorded only from a ``final`` view (the CanaryGate as it is now): an older
    view lacks changes made after it, which have not ended."""
    out = {**record, "entries": list(record.get("entries") or [])}
    entries = out["entries"]
    used = set(used)
    open_changes: dict[str, dict[str, Any]] = {}
    recorded: set[str] = set()
    for e in entries:
        if e.get("kind") != "gate":
            continue
        recorded.add(e.get("id", ""))
        if e.get("action") == "set":
            open_changes[e.get("id", "")] = e
        else:
            open_changes.pop(e.get("id", ""), None)
    live_ids = {change_id(c): c for c in live.values()}
    for ident, started in list(open_changes.items()):
        if ident in live_ids or not final:
            continue
        how = _how_ended(started, live, canary, entries, used)
        entries.append(
            {
                "rollout": started["rollout"],
                "at": now,
                "kind": "gate",
                "action": "ended",
                "id": ident,
                "gate": started.get("gate", ""),
                "how": how,
            }
        )
    for ident, change in live_ids.items():
        if ident in recorded:
            continue
        entries.append(
            {
                "rollout": _rollout_now(entries, canary),
                "at": change.at or now,
                "kind": "gate",
                "action": "set",
                "id": ident,
                "gate": change.gate,
                "state": change.state,
                "scope": change.scope,
                "by": _text(change.by),
                "reason": _text(change.reason),
            }
        )
    if failure and failure.get("message"):
        seen = {(e.get("at"), e.get("message")) for e in entries if e.get("kind") == "failure"}
        at = str(failure.get("time") or now)
        message = _text(failure.get("message"))
        if (at, message) not in seen:
            number, _ = _current(entries)
            entries.append(
                {
                    "rollout": max(number, 1),
                    "at": at,
                    "kind": "failure",
                    "message": message,
                    "check": _text(failure.get("check")),
                }
            )
    return out


def _how_ended(
    started: Mapping[str, Any],
    live: Mapping[str, LiveChange],
    canary: Canary | None,
    entries: list[dict[str, Any]],
    used: set[str],
) -> str:
    """Why a recorded change is no longer on the CanaryGate (see :data:`USED` and the others)."""
    if any(c.gate == started.get("gate") for c in live.values()):
        return REPLACED
    if started.get("id") in used:
        return USED
    running, active = _current(entries)
    same_rollout = canary is not None and canary.active and active and running == started.get("rollout")
    if started.get("scope") == SCOPE_STEP:
        # NB: the sidecar removes a step once it answered it, and only then; another replica's answer
        # is seen here as the step going away while its rollout runs.
        return USED if same_rollout else EXPIRED
    if started.get("scope") == SCOPE_STICKY or same_rollout:
        return REMOVED
    return EXPIRED


def bound(
    record: Mapping[str, Any],
    *,
    max_rollouts: int = MAX_ROLLOUTS,
    max_entries: int = MAX_ENTRIES,
    max_bytes: int = MAX_BYTES,
) -> dict[str, Any]:
    """The record within its bounds: the last ``max_rollouts`` rollouts, at most ``max_entries``
    entries and ``max_bytes`` of JSON; the oldest entries go first, and ``dropped`` counts them."""
    entries = list(record.get("entries") or [])
    dropped = int(record.get("dropped") or 0)
    if entries:
        newest = max(int(e["rollout"]) for e in entries)
        keep = [e for e in entries if int(e["rollout"]) > newest - max_rollouts]
        dropped += len(entries) - len(keep)
        entries = keep
    if len(entries) > max_entries:
        dropped += len(entries) - max_entries
        entries = entries[-max_entries:]
    out = {"version": VERSION, "dropped": dropped, "entries": entries}
    while entries and size(out) > max_bytes:
        cut = max(1, len(entries) // 10)
        entries = entries[cut:]
        dropped += cut
        out = {"version": VERSION, "dropped": dropped, "entries": entries}
    return out


def size(record: Mapping[str, Any]) -> int:
    """Bytes of the record as compact JSON (how it is bounded)."""
    return len(json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass
class Rollout:
    """One rollout as ``kubectl gate history`` shows it."""

    number: int
    entries: list[dict[str, Any]] = field(default_factory=list)

    @property
    def result(self) -> str:
        """Succeeded, Failed, the phase it is in, or "" when only gate changes were recorded."""
        last = _last(self.entries, "phase")
        return str(last.get("phase", "")) if last else ""

    @property
    def started(self) -> str:
        first = next((e for e in self.entries if e.get("kind") == "phase"), None)
        return str(first.get("since") or first.get("at") or "") if first else ""


def group(record: Mapping[str, Any], last: int | None = None) -> list[Rollout]:
    """The record's entries by rollout, oldest first; only the ``last`` rollouts if given."""
    found: dict[int, Rollout] = {}
    for e in record.get("entries") or ():
        number = int(e.get("rollout", 0))
        found.setdefault(number, Rollout(number)).entries.append(dict(e))
    out = [found[n] for n in sorted(found)]
    return out[-last:] if last else out
