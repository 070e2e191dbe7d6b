"""What a notification says: one :class:`Notice` per thing that happened, and how it reads (pure).

A notice belongs to a *thread*: one per rollout of a CanaryGate, named by the Canary's ``Promoted``
condition time as the live changes are (:mod:`canarygate.rollouts`), so a hold, its opening and
the promotion of the same rollout land in one Slack thread and share one webhook ``thread`` id.

Each notice has an ``id`` that names the happening, not the moment it was noticed: a restart
that notices the same hold, change or end again computes the same id and, finding it in
``status.notifications.sent``, sends nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

from canarygate import gates, rollouts
from canarygate.annotations import LiveChange
from canarygate.diagnosis import recommended_command
from canarygate.model import Canary
from canarygate.resolution import Decision

HELD = "held"
OPENED = "opened"
CLOSED = "closed"
PROMOTED = "promoted"
ROLLED_BACK = "rolled-back"
ABORTED = "aborted"
KINDS = (HELD, OPENED, CLOSED, PROMOTED, ROLLED_BACK, ABORTED)
#: Notices that end their thread's rollout.
ENDS = frozenset({PROMOTED, ROLLED_BACK, ABORTED})

ICONS = {
    HELD: ":double_vertical_bar:",
    OPENED: ":arrow_forward:",
    CLOSED: ":no_entry:",
    PROMOTED: ":white_check_mark:",
    ROLLED_BACK: ":rewind:",
    ABORTED: ":octagonal_sign:",
}


@dataclass(frozen=True)
class Notice:
    kind: str
    #: The CanaryGate (namespace, name) and the Canary it drives ("ns/name").
    namespace: str
    name: str
    canary: str
    #: The rollout this belongs to (the Promoted condition's lastTransitionTime while it runs).
    rollout: str
    #: The revision under analysis (canarygate.rollouts.revision_of), "" while it waits.
    revision: str = ""
    gate: str = ""
    #: When it happened (RFC 3339): the hold first answered, the change made, the end seen.
    at: str = ""
    #: Who set the state in force and why; ``source`` live, declared or default.
    by: str = ""
    reason: str = ""
    source: str = ""
    scope: str = ""
    #: The command that lets the rollout go on (held only): canarygate.diagnosis.recommended_command.
    command: str = ""
    #: Why the rollout ended (rolled back: Flagger's last failed check, if known).
    detail: str = ""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def thread(self) -> str:
        """The thread's id for webhook receivers: stable for every notice of one rollout."""
        return f"{self.namespace}/{self.name}@{self.rollout or '-'}"

    @property
    def id(self) -> str:
        """Names the happening (see the module docstring): 12 hex digits."""
        parts: tuple[str, ...]
        if self.kind == HELD:
            parts = (self.kind, self.gate, self.rollout, self.revision)
        elif self.kind in (OPENED, CLOSED):
            parts = (self.kind, self.gate, self.by, self.at, self.reason)
        else:  # NB: the end's time alone names it: the thread it went to may differ after a restart
            parts = (self.kind, self.at)
        text = "\x1f".join((self.namespace, self.name, *parts))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def held(
    key: tuple[str, str], hook: str, decision: Decision, canary: Canary | None, *, rollout: str, now: str
) -> Notice:
    """A closed gate started holding the rollout: who closed it, and the command that opens it."""
    mark = rollouts.mark_of(canary)
    return Notice(
        kind=HELD,
        namespace=key[0],
        name=key[1],
        canary=canary.ref if canary else f"{key[0]}/{key[1]}",
        rollout=rollout,
        revision=mark.revision,
        gate=hook,
        at=now,
        by=decision.set_by,
        reason=decision.reason,
        source=decision.source,
        scope=decision.change.scope if decision.change else "",
        command=recommended_command(hook, key[1], key[0]),
    )


def changed(key: tuple[str, str], change: LiveChange, canary: Canary | None, *, rollout: str) -> Notice:
    """Someone opened or closed a gate live (``kubectl gate open|close|promote|pause|abort``)."""
    kind = OPENED if change.state == gates.OPENED else CLOSED
    return Notice(
        kind=kind,
        namespace=key[0],
        name=key[1],
        canary=canary.ref if canary else "",
        rollout=rollout,
        revision=rollouts.mark_of(canary).revision,
        gate=change.gate,
        at=change.at,
        by=change.by,
        reason=change.reason,
        source="live",
        scope=change.scope,
    )


def ended(
    key: tuple[str, str], canary: Canary, *, rollout: str, aborted_by: LiveChange | None, detail: str = ""
) -> Notice:
    """The rollout ended: promoted (Succeeded), or rolled back (Failed): aborted when the rollback
    gate was opened live for it (``kubectl gate abort``)."""
    at = canary.promoted.last_transition_time if canary.promoted else canary.last_transition_time
    if canary.phase == "Succeeded":
        kind, by, reason = PROMOTED, "", ""
    elif aborted_by is not None:
        kind, by, reason = ABORTED, aborted_by.by, aborted_by.reason
    else:
        kind, by, reason = ROLLED_BACK, "", ""
    return Notice(
        kind=kind,
        namespace=key[0],
        name=key[1],
        canary=canary.ref,
        rollout=rollout,
        revision=rollouts.revision_of(canary),
        at=at,
        by=by,
        reason=reason,
        source="live" if by else "",
        detail=detail,
    )


def _who(notice: Notice) -> str:
    by = notice.by or "someone"
    return f"{by}{f' ({notice.reason})' if notice.reason else ''}"


def _set_how(notice: Notice) -> str:
    """Who put the holding state in force: the spec (Git), the default, or a person's live change."""
    if notice.source == "declared":
        return f"declared closed in spec (`{notice.gate}: closed`, from Git)"
    if notice.source == "default":
        return "closed by default"
    return f"closed by {_who(notice)}"


def line(notice: Notice) -> str:
    """One line saying what happened (a thread reply; the webhook's ``text``)."""
    release = f"{notice.canary}{f' revision {notice.revision}' if notice.revision else ''}"
    if notice.kind == HELD:
        return (
            f"{ICONS[HELD]} Gate *{notice.gate}* holds the rollout of {release} since {notice.at}; "
            f"{_set_how(notice)}. To go on: `{notice.command}`"
        )
    if notice.kind in (OPENED, CLOSED):
        verb = "opened" if notice.kind == OPENED else "closed"
        scope = f", scope {notice.scope}" if notice.scope else ""
        return f"{ICONS[notice.kind]} Gate *{notice.gate}* {verb} by {_who(notice)} at {notice.at}{scope}"
    if notice.kind == PROMOTED:
        return f"{ICONS[PROMOTED]} {release} promoted at {notice.at}"
    if notice.kind == ABORTED:
        return f"{ICONS[ABORTED]} {release} aborted by {_who(notice)}: rolled back at {notice.at}"
    detail = f": {notice.detail}" if notice.detail else ""
    return f"{ICONS[ROLLED_BACK]} {release} rolled back at {notice.at}{detail}"


def summary(notice: Notice, holding: Notice | None) -> str:
    """The thread's top message: the CanaryGate, and where its rollout stands after ``notice``.

    ``holding`` is the hold still in force (None once the gate opened or the rollout ended), so the
    command stays on top for as long as it is the one to run.
    """
    head = f"*CanaryGate {notice.ref}* · Canary {notice.canary or '?'}"
    if notice.kind in ENDS:
        return f"{head}\n{line(notice)}"
    if holding is not None:
        return f"{head}\n{line(holding)}"
    return f"{head}\n{line(notice)}"


def approve_hint(notice: Notice) -> str:
    """How an approver acts with their own identity (never the bot's: docs/notifications.md)."""
    return (
        f"_Run it as yourself (your own Kubernetes identity), or use `kubectl gate dashboard -n {notice.namespace}`; "
        "nothing in this message approves._"
    )


def webhook_body(notice: Notice) -> dict:
    """The generic webhook's JSON: every field of the notice, its ids, and the line as ``text``."""
    body = {k: v for k, v in asdict(notice).items()}
    body.update({"id": notice.id, "thread": notice.thread, "canarygate": notice.ref, "text": line(notice)})
    return body
