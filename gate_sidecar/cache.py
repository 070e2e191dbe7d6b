"""The sidecar's memory of the cluster: CanaryGates and Canaries, fed by two informers.

Webhook calls read it and never wait for the API server. The feeding thread parses each object once,
when it arrives, so a lookup is a few dict reads. Writers replace whole entries (never mutate one in
place), so readers need no lock.

It also keeps the one-step approvals already answered but not yet removed from the cluster
(``consumed``), so a second call cannot reuse a step before the removal lands. :meth:`GateCache.consume`
takes a step atomically against the current entry (under the lock), so a removal landing in the
middle of a call cannot hand the same step out twice.

Across replicas and restarts the API server decides: a call answers "go on" to a step only after
its conditional removal succeeded (gate_sidecar.writes.Writer.consume); the consumed set only keeps
this process from asking twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from canarygate import errors
from canarygate.model import Canary, CanaryGate, parse_canary, parse_canarygate
from canarygate.rendering import GATE_NAME_KEY, GATE_NAMESPACE_KEY

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)

#: How a CanaryGate was found for a call (answer bodies and logs say it).
BY_METADATA = "metadata"
BY_TARGET = "target"
BY_NAME = "name"


class Health(Protocol):
    """What the cache needs to know of a feed: has it synced, and how old is its news."""

    synced: bool

    def age(self, now: float | None = None) -> float: ...


@dataclass
class StaticHealth:
    """A feed that is always in the given state: for tests and for caches filled by hand."""

    synced: bool = True
    seconds: float = 0.0

    def age(self, now: float | None = None) -> float:
        return self.seconds


@dataclass(frozen=True)
class Entry:
    """One CanaryGate as cached: parsed, or the reason it could not be (then ``gate`` is None)."""

    key: Key
    gate: CanaryGate | None
    error: str = ""
    #: The Canary it drives (namespace, name); read from the raw spec when parsing failed.
    target: Key | None = None
    #: ``metadata.uid`` and ``metadata.generation`` (bumped by spec changes only), kept when parsing
    #: failed too: the reconciler acts once per generation and records Events on the object.
    uid: str = ""
    generation: int = 0
    #: Whether ``spec.target`` is set (else ``target`` is the Canary of the CanaryGate's own name).
    target_set: bool = False
    #: ``metadata.resourceVersion``: a relist keeps an entry whose object did not change (see replace_gates).
    resource_version: str = ""


@dataclass(frozen=True)
class Lookup:
    """The CanaryGate a call is about: ``entry`` None means it does not exist (defaults apply)."""

    key: Key
    how: str
    entry: Entry | None
    #: False when ``key``'s namespace is not one this sidecar watches: it cannot know.
    watched: bool = True
    #: Several CanaryGates name this Canary in ``spec.target`` (and metadata says none): all of
    #: them, sorted; ``key`` is the first. Nobody can tell which one rules: callers fail closed.
    rivals: tuple[Key, ...] = ()
    #: Why no CanaryGate rules when one of the Canary's name exists but targets another Canary
    #: (``entry`` is then None: the defaults apply); empty otherwise.
    passed_over: str = ""
    #: Why no answer may be given from this lookup (``entry`` is then None and the defaults must not
    #: apply): the named CanaryGate does not exist, or is another namespace's and does not target
    #: the Canary. Callers answer 503 with it and read, consume and write nothing.
    refused: str = ""

    @property
    def ref(self) -> str:
        return f"{self.key[0]}/{self.key[1]}"


Listener = Callable[[str, Key], None]


def named_gate(namespace: str, metadata: Mapping[str, Any] | None) -> Key | None:
    """The CanaryGate a call's webhook metadata names (``gate_name``, ``gate_namespace`` defaulting to
    the Canary's ``namespace``), or None when it names none: anything but a non-empty string is absent."""
    if not metadata:
        return None
    gate_name = metadata.get(GATE_NAME_KEY)
    if not isinstance(gate_name, str) or not gate_name:
        return None
    gate_ns = metadata.get(GATE_NAMESPACE_KEY)
    return (gate_ns if isinstance(gate_ns, str) and gate_ns else namespace, gate_name)


class GateCache:
    """CanaryGates and Canaries by (namespace, name), and CanaryGates by the Canary they target.

    ``namespaces`` None means every namespace is watched. ``fail_closed_after``: once any feed has
    not heard from the API server for longer than this (seconds), :meth:`trusted` is False.
    """

    def __init__(
        self,
        *,
        namespaces: Iterable[str] | None = None,
        fail_closed_after: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        health: Iterable[Health] = (),
    ):
        self.namespaces = frozenset(namespaces) if namespaces is not None else None
        self.fail_closed_after = fail_closed_after
        self.clock = clock
        self.health: list[Health] = list(health)
        self._gates: dict[Key, Entry] = {}
        self._by_target: dict[Key, tuple[Key, ...]] = {}
        self._canaries: dict[Key, Canary] = {}
        self._consumed: dict[Key, frozenset[str]] = {}
        self._lock = threading.Lock()  # writers only
        self.listeners: list[Listener] = []
        #: Bumped under the lock once a change of what :meth:`find` reads besides the entry it
        #: returns is complete: which CanaryGates exist and what each targets (``target``,
        #: ``target_set``). A Lookup taken after reading one index version is still the one
        #: :meth:`find` would give while the version is unchanged and :meth:`entry` of its key is
        #: still its entry. NB: after, not before: a reader that read the version before the bump
        #: and ran :meth:`find` midway through the change keeps an answer the bump then voids.
        self.index_version = 0

    # -- state ---------------------------------------------------------------------------------
    def feeds(self, now: float | None = None) -> tuple[bool, float]:
        """(synced, age) at ``now``: whether every feed has listed, and the seconds since the stalest
        one last heard from the API server (inf with no feed or before its first answer)."""
        synced, age = bool(self.health), (0.0 if self.health else float("inf"))
        if now is None:
            now = self.clock()
        for h in self.health:
            if not h.synced:
                synced = False
            seconds = h.age(now)
            if seconds > age:
                age = seconds
        return synced, age

    @property
    def synced(self) -> bool:
        return self.feeds()[0]

    def age(self, now: float | None = None) -> float:
        return self.feeds(now)[1]

    def trusted(self, now: float | None = None) -> bool:
        """True when answers may be given from memory: synced and heard from within the bound."""
        synced, age = self.feeds(now)
        return synced and age <= self.fail_closed_after

    def watches(self, namespace: str) -> bool:
        return self.namespaces is None or namespace in self.namespaces

    def __len__(self) -> int:
        return len(self._gates)

    # -- reading (the webhook hot path) ---------------------------------------------------------
    def canary(self, namespace: str, name: str) -> Canary | None:
        return self._canaries.get((namespace, name))

    def entry(self, key: Key) -> Entry | None:
        return self._gates.get(key)

    def entries(self) -> list[Entry]:
        return list(self._gates.values())

    def gates_for_canary(self, key: Key) -> tuple[Key, ...]:
        """The CanaryGates that target this Canary, and one of the same name, sorted."""
        keys = set(self._by_target.get(key, ()))
        if key in self._gates:
            keys.add(key)
        return tuple(sorted(keys))

    def find(self, namespace: str, name: str, metadata: Mapping[str, Any] | None) -> Lookup:
        """The CanaryGate for a call about Canary ``namespace/name``.

        See docs/gate-state.md#which-canarygate-a-call-is-about.

        Both sides must agree before a CanaryGate governs a Canary (namespace isolation):

        * ``metadata.gate_name``/``gate_namespace`` (the Canaries this project and the Go original
          render) name it. One in the Canary's own namespace rules; one in another namespace only
          when its ``spec.target`` is exactly this Canary, else the Lookup is ``refused`` (callers
          answer 503 and read, consume and write nothing of it). A named CanaryGate that does not
          exist is ``refused`` too: deleting it must not open its gates.
        * without metadata: the CanaryGate of the Canary's namespace whose ``spec.target`` is the
          Canary; else the one of the Canary's own name and namespace, unless its explicit
          ``spec.target`` names another Canary (then none: the defaults apply, ``passed_over`` says
          why). A CanaryGate in another namespace targeting this Canary is not honoured (its
          creator may not own the Canary): it is named in ``passed_over``. Several in the Canary's
          namespace naming it: the Lookup lists them in ``rivals`` (callers fail closed).
        """
        if metadata:
            key = named_gate(namespace, metadata)
            if key is not None:
                watched = self.watches(key[0])
                entry = self._gates.get(key)
                ref = f"{key[0]}/{key[1]}"
                if key[0] != namespace and not (
                    entry is not None and entry.target_set and entry.target == (namespace, name)
                ):
                    # NB: one message whether it exists or not, and nothing of its spec: a caller learns
                    # nothing of another namespace's CanaryGates.
                    why = (
                        f"CanaryGate {ref}, named in the webhook metadata of Canary {namespace}/{name}, "
                        "does not exist or does not target this Canary: a CanaryGate of another namespace "
                        "governs a Canary only when its spec.target is that Canary, so its gates are unknown"
                    )
                    return Lookup(key, BY_METADATA, None, watched, refused=why if watched else "")
                if entry is None:
                    why = (
                        f"CanaryGate {ref}, named in the webhook metadata of Canary {namespace}/{name}, "
                        "does not exist (deleted?), so its gates are unknown; create it again, or remove "
                        "gate_name/gate_namespace from the Canary's webhooks to use the defaults"
                    )
                    return Lookup(key, BY_METADATA, None, watched, refused=why if watched else "")
                return Lookup(key, BY_METADATA, entry, watched)
        key = (namespace, name)
        targeting = self._by_target.get(key)
        foreign = ""
        if targeting:
            # NB: the index also holds the CanaryGate of the Canary's own name when it has no
            # spec.target (it targets that Canary by default); only an explicit spec.target counts here.
            gates = self._gates
            explicit = [k for k in targeting if (e := gates.get(k)) is not None and e.target_set]
            local = [k for k in explicit if k[0] == namespace]
            others = [k for k in explicit if k[0] != namespace]
            if others:
                names = ", ".join(f"{k[0]}/{k[1]}" for k in others)
                foreign = (
                    f"CanaryGate {names} in another namespace targets this Canary but is not named in its "
                    "webhook metadata (gate_name/gate_namespace), so it is not honoured"
                )
            if len(local) == 1:
                return Lookup(local[0], BY_TARGET, gates.get(local[0]), True, passed_over=foreign)
            if local:
                return Lookup(local[0], BY_TARGET, gates.get(local[0]), True, tuple(local), passed_over=foreign)
        entry = self._gates.get(key)
        if entry is not None and entry.target_set and entry.target != key:
            # The CanaryGate of the Canary's name drives another Canary (its explicit spec.target):
            # it is not this Canary's, so the defaults apply.
            other = f"{entry.target[0]}/{entry.target[1]}" if entry.target else "another Canary"
            why = f"CanaryGate {key[0]}/{key[1]} targets Canary {other}, not this one"
            return Lookup(
                key, BY_NAME, None, self.watches(namespace), passed_over="; ".join(filter(None, (why, foreign)))
            )
        return Lookup(key, BY_NAME, entry, self.watches(namespace), passed_over=foreign if entry is None else "")

    def holds(
        self,
        index_version: int,
        key: Key,
        entry: Entry | None,
        target: Key,
        canary: Canary | None,
        consumed: frozenset[str],
    ) -> bool:
        """Whether an answer computed from these is what the cache would give now (the memo of the
        webhook path): the lookup still stands (same index version; same entry on ``key``, when it had
        one) and so do the Canary at ``target`` and the steps consumed on ``key``. Cached objects are
        immutable and replaced whole on every change, so identity says it all."""
        return (
            index_version == self.index_version
            and (entry is None or self._gates.get(key) is entry)
            and self._canaries.get(target) is canary
            and self._consumed.get(key, frozenset()) == consumed
        )

    def consumed(self, key: Key) -> frozenset[str]:
        return self._consumed.get(key, frozenset())

    def consume(self, key: Key, gate: str, identity: str) -> bool:
        """Take the one-step approval ``identity`` (:attr:`LiveChange.identity`) of ``gate`` on ``key``, atomically.

        True only when the cached CanaryGate still holds exactly that change for ``gate`` and it
        was not taken yet; False otherwise (another call took it, or a watch event replaced or
        removed it since the caller read the entry): the caller then answers from the current entry.
        One replica only: see the module docstring.
        """
        with self._lock:
            entry = self._gates.get(key)
            change = entry.gate.live.get(gate) if entry is not None and entry.gate is not None else None
            if change is None or change.identity != identity:
                return False
            used = self._consumed.get(key, frozenset())
            if identity in used:
                return False
            self._consumed[key] = used | {identity}
            return True

    def release(self, key: Key, identity: str) -> None:
        """Undo :meth:`consume` after the API write recording the use failed: the approval was not
        used, and the next call's conditional write decides again (it cannot pass twice: a removal
        that did land makes that write fail)."""
        with self._lock:
            used = self._consumed.get(key, frozenset())
            if identity in used:
                self._consumed[key] = used - {identity}

    # -- feeding (informer threads) --------------------------------------------------------------
    def replace_gates(self, items: list[dict[str, Any]], namespace: str | None = None) -> None:
        """A full list of CanaryGates in ``namespace`` (all when None): the others there are gone.

        An object whose uid and resourceVersion are those of its parsed entry is not parsed again:
        it keeps that entry (see :func:`_unchanged`).
        """
        fresh = {}
        for raw in items:
            key = self._key(raw)
            old = self._gates.get(key)
            fresh[key] = (
                old
                if old is not None and old.resource_version and _unchanged(raw, old.uid, old.resource_version)
                else self._parse_gate(raw)
            )
        with self._lock:
            stale = [k for k in self._gates if (namespace is None or k[0] == namespace) and k not in fresh]
            for key in stale:
                self._drop_gate(key)
            # NB: quiet watches are relisted every half bound: an object whose resourceVersion did not
            # change keeps its entry (memoized answers stay valid) and is not announced again.
            changed = [key for key, entry in fresh.items() if not _same(self._gates.get(key), entry)]
            for key in changed:
                self._put_gate(key, fresh[key])
        for key in set(stale) | set(changed):
            self._notify("gate", key)

    def apply_gate_event(self, kind: str, raw: dict[str, Any]) -> None:
        key = self._key(raw)
        with self._lock:
            if kind == "DELETED":
                self._drop_gate(key)
            else:
                self._put_gate(key, self._parse_gate(raw))
        self._notify("gate", key)

    def replace_canaries(self, items: list[dict[str, Any]], namespace: str | None = None) -> None:
        """A full list of Canaries in ``namespace`` (all when None): the others there are gone.

        A Canary whose uid and resourceVersion are those of the cached one keeps the cached object
        (not parsed again), so answers memoized on it stay valid across relists; every Canary listed
        is still announced to the listeners, as before (the writer's reviews after a relist).
        """
        parsed: dict[Key, Canary | None] = {}
        for raw in items:
            key = self._key(raw)
            old = self._canaries.get(key)
            parsed[key] = old if old is not None and _unchanged(raw, *_version(old.raw)) else self._parse_canary(raw)
        fresh = {k: c for k, c in parsed.items() if c is not None}
        with self._lock:
            stale = [k for k in self._canaries if (namespace is None or k[0] == namespace) and k not in fresh]
            for key in stale:
                del self._canaries[key]
            self._canaries.update(fresh)
        for key in set(stale) | set(fresh):
            self._notify("canary", key)

    def apply_canary_event(self, kind: str, raw: dict[str, Any]) -> None:
        key = self._key(raw)
        with self._lock:
            canary = None if kind == "DELETED" else self._parse_canary(raw)
            if canary is None:
                self._canaries.pop(key, None)
            else:
                self._canaries[key] = canary
        self._notify("canary", key)

    def fill(self, gates: Iterable[dict[str, Any]] = (), canaries: Iterable[dict[str, Any]] = ()) -> GateCache:
        """Load objects by hand and mark the cache synced (tests, benchmarks)."""
        self.replace_gates(list(gates))
        self.replace_canaries(list(canaries))
        if not self.health:
            self.health.append(StaticHealth())
        return self

    # -- internals ---------------------------------------------------------------------------------
    @staticmethod
    def _key(raw: Any) -> Key:
        """(namespace, name) of an object; ("", "") parts for anything that is not a string."""
        meta = raw.get("metadata") if isinstance(raw, Mapping) else None
        meta = meta if isinstance(meta, Mapping) else {}
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        return (namespace if isinstance(namespace, str) else "", name if isinstance(name, str) else "")

    @staticmethod
    def _parse_gate(raw: dict[str, Any]) -> Entry:
        """Never raises: an object that cannot be parsed, for whatever reason, is an Entry with its
        error (its gates unknown), so one bad object stops neither the feed nor the others."""
        key = GateCache._key(raw)
        try:
            gate = parse_canarygate(raw)
            target = (raw.get("spec") or {}).get("target")
            if not all(
                isinstance(v, str) for v in (gate.name, gate.namespace, gate.target.namespace, gate.target.name)
            ) or (target is not None and not isinstance(target, Mapping)):
                raise errors.InvalidGate(
                    f"CanaryGate {key[0]}/{key[1]}: metadata.name, metadata.namespace and "
                    "spec.target.namespace/name must be strings"
                )
            return Entry(
                key,
                gate,
                "",
                (gate.target.namespace, gate.target.name),
                gate.uid,
                gate.generation,
                isinstance(target, dict) and bool(target),
                str(gate.resource_version or ""),
            )
        except errors.InvalidGate as e:
            error = str(e)
        except Exception as e:  # noqa: BLE001 - RecursionError, TypeError...: malformed beyond the model's checks
            error = f"CanaryGate {key[0]}/{key[1]} is malformed ({type(e).__name__})"
        log.warning("%s", error[:1024])
        return GateCache._unparsed(key, raw, error)

    @staticmethod
    def _unparsed(key: Key, raw: Any, error: str) -> Entry:
        """The Entry of an object that cannot be parsed: what can still be read of it, safely."""
        meta = raw.get("metadata") if isinstance(raw, Mapping) else None
        meta = meta if isinstance(meta, Mapping) else {}
        spec = raw.get("spec") if isinstance(raw, Mapping) else None
        target = spec.get("target") if isinstance(spec, Mapping) else None
        target = target if isinstance(target, Mapping) else {}
        try:
            generation = int(meta.get("generation") or 0)
        except (TypeError, ValueError, OverflowError):
            generation = 0
        uid = meta.get("uid")
        t_ns, t_name = target.get("namespace"), target.get("name")
        return Entry(
            key,
            None,
            error,
            (
                t_ns if isinstance(t_ns, str) and t_ns else key[0],
                t_name if isinstance(t_name, str) and t_name else key[1],
            ),
            uid if isinstance(uid, str) else "",
            generation,
            bool(target),
        )

    @staticmethod
    def _parse_canary(raw: dict[str, Any]) -> Canary | None:
        """The Canary view, or None (treated as absent, with a warning) when it cannot be parsed."""
        try:
            return parse_canary(raw)
        except Exception as e:  # noqa: BLE001 - RecursionError, TypeError... of a malformed object
            key = GateCache._key(raw)
            log.warning("Canary %s/%s is malformed (%s): treated as absent", key[0], key[1], type(e).__name__)
            return None

    @staticmethod
    def _target_of(entry: Entry | None) -> Key | None:
        return entry.target if entry is not None else None

    def _put_gate(self, key: Key, entry: Entry) -> None:
        old = self._gates.get(key)
        reindexed = old is None or old.target != entry.target or old.target_set != entry.target_set
        old_target = self._target_of(old)
        self._gates[key] = entry
        new_target = self._target_of(entry)
        if old_target != new_target:
            self._unindex(old_target, key)
        if new_target is not None and key not in self._by_target.get(new_target, ()):
            self._by_target[new_target] = tuple(sorted((*self._by_target.get(new_target, ()), key)))
        used = self._consumed.get(key)
        if used and entry.gate is not None:
            # Forget consumed steps once the cluster no longer holds them (the removal landed).
            present = {c.identity for c in entry.gate.live.values()}
            kept = used & present
            if kept != used:
                self._consumed[key] = frozenset(kept)
        if reindexed:
            self.index_version += 1

    def _drop_gate(self, key: Key) -> None:
        entry = self._gates.pop(key, None)
        self._unindex(self._target_of(entry), key)
        self._consumed.pop(key, None)
        if entry is not None:
            self.index_version += 1

    def _unindex(self, target: Key | None, key: Key) -> None:
        if target is None:
            return
        keys = tuple(k for k in self._by_target.get(target, ()) if k != key)
        if keys:
            self._by_target[target] = keys
        else:
            self._by_target.pop(target, None)

    def _notify(self, kind: str, key: Key) -> None:
        for listener in self.listeners:
            try:
                listener(kind, key)
            except Exception:  # a listener's bug must not stop the feed
                log.exception("cache listener failed for %s %s/%s", kind, *key)


def _version(raw: Any) -> tuple[str, str]:
    """``metadata.uid`` and ``metadata.resourceVersion`` of a raw object ("" for what is not a string).

    Only plain dicts (what JSON decodes to) are read, with a C-level type check: it runs for every
    object of every relist; anything else reads as versionless, so it is parsed again.
    """
    meta = raw.get("metadata") if isinstance(raw, dict) else None
    meta = meta if isinstance(meta, dict) else {}
    uid, version = meta.get("uid", ""), meta.get("resourceVersion", "")
    return (uid if isinstance(uid, str) else "", version if isinstance(version, str) else "")


def _unchanged(raw: Any, uid: str, resource_version: str) -> bool:
    """Whether ``raw`` is the object last seen with this uid and (non-empty) resourceVersion: the API
    server changes the resourceVersion on every write, so parsing it again would give the same."""
    return bool(resource_version) and _version(raw) == (uid, resource_version)


def _same(old: Entry | None, new: Entry) -> bool:
    """Whether ``new`` is the very object ``old`` was parsed from (same uid and resourceVersion)."""
    return (
        old is not None
        and bool(new.resource_version)
        and old.resource_version == new.resource_version
        and old.uid == new.uid
        and old.error == new.error
    )
