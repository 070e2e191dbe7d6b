"""The sidecar's memory of the cluster: CanaryGates and Canaries, fed by two informers.

Webhook calls read it and never wait for the API server. The feeding thread parses each object once,
when it arrives, so a lookup is a few dict reads. Writers replace whole entries (never mutate one in
place), so readers need no lock.

It also keeps the one-step approvals already answered but not yet removed from the cluster
(``consumed``), so a second call cannot reuse a step before the removal lands. :meth:`GateCache.consume`
takes a step atomically against the current entry (under the lock), so a removal landing in the
middle of a call cannot hand the same step out twice.

NB: one replica. The consumed set lives in this process's memory and no API request is made on the
webhook path, so a one-step approval is used once only when a single sidecar answers the Canary (the
shipped Deployment runs one replica). Two replicas could each answer "go on" to the same step before
its removal reaches them.
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

    @property
    def ref(self) -> str:
        return f"{self.key[0]}/{self.key[1]}"


Listener = Callable[[str, Key], None]


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
        """The CanaryGate for a call about Canary ``namespace/name`` (DESIGN, "How the sidecar answers").

        ``metadata.gate_name``/``gate_namespace`` (the Canaries this project and the Go original
        render) name it; else the CanaryGate whose ``spec.target`` is the Canary; else the one with
        the Canary's own name and namespace, unless its explicit ``spec.target`` names another Canary
        (then none: the defaults apply, and ``passed_over`` says why). Several naming the Canary in ``spec.target``: the
        Lookup lists them all in ``rivals`` (callers fail closed).
        """
        if metadata:
            gate_name = metadata.get(GATE_NAME_KEY)
            if isinstance(gate_name, str) and gate_name:
                gate_ns = metadata.get(GATE_NAMESPACE_KEY)
                key = (gate_ns if isinstance(gate_ns, str) and gate_ns else namespace, gate_name)
                return Lookup(key, BY_METADATA, self._gates.get(key), self.watches(key[0]))
        key = (namespace, name)
        targeting = self._by_target.get(key)
        if targeting:
            # NB: the index also holds the CanaryGate of the Canary's own name when it has no
            # spec.target (it targets that Canary by default); only an explicit spec.target counts here.
            gates = self._gates
            explicit = [k for k in targeting if (e := gates.get(k)) is not None and e.target_set]
            if len(explicit) == 1:
                return Lookup(explicit[0], BY_TARGET, gates.get(explicit[0]), True)
            if explicit:
                return Lookup(explicit[0], BY_TARGET, gates.get(explicit[0]), True, tuple(explicit))
        entry = self._gates.get(key)
        if entry is not None and entry.target_set and entry.target != key:
            # The CanaryGate of the Canary's name drives another Canary (its explicit spec.target):
            # it is not this Canary's, so the defaults apply.
            other = f"{entry.target[0]}/{entry.target[1]}" if entry.target else "another Canary"
            why = f"CanaryGate {key[0]}/{key[1]} targets Canary {other}, not this one"
            return Lookup(key, BY_NAME, None, self.watches(namespace), passed_over=why)
        return Lookup(key, BY_NAME, entry, self.watches(namespace))

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

    # -- feeding (informer threads) --------------------------------------------------------------
    def replace_gates(self, items: list[dict[str, Any]], namespace: str | None = None) -> None:
        """A full list of CanaryGates in ``namespace`` (all when None): the others there are gone."""
        fresh = {self._key(raw): self._parse_gate(raw) for raw in items}
        with self._lock:
            stale = [k for k in self._gates if (namespace is None or k[0] == namespace) and k not in fresh]
            for key in stale:
                self._drop_gate(key)
            for key, entry in fresh.items():
                self._put_gate(key, entry)
        for key in set(stale) | set(fresh):
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
        fresh = {self._key(raw): parse_canary(raw) for raw in items}
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
            if kind == "DELETED":
                self._canaries.pop(key, None)
            else:
                self._canaries[key] = parse_canary(raw)
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
    def _key(raw: Mapping[str, Any]) -> Key:
        meta = raw.get("metadata") or {}
        return (meta.get("namespace", ""), meta.get("name", ""))

    @staticmethod
    def _parse_gate(raw: dict[str, Any]) -> Entry:
        key = GateCache._key(raw)
        try:
            gate = parse_canarygate(raw)
        except errors.InvalidGate as e:
            log.warning("%s", e)
            meta = raw.get("metadata") or {}
            try:
                generation = int(meta.get("generation") or 0)
            except (TypeError, ValueError):
                generation = 0
            target = (raw.get("spec") or {}).get("target")
            target = target if isinstance(target, dict) else {}
            return Entry(key, None, str(e), (target.get("namespace") or key[0], target.get("name") or key[1]),
                         str(meta.get("uid") or ""), generation, bool(target))
        target = (raw.get("spec") or {}).get("target")
        return Entry(key, gate, "", (gate.target.namespace, gate.target.name), gate.uid, gate.generation,
                     isinstance(target, dict) and bool(target))

    @staticmethod
    def _target_of(entry: Entry | None) -> Key | None:
        return entry.target if entry is not None else None

    def _put_gate(self, key: Key, entry: Entry) -> None:
        old_target = self._target_of(self._gates.get(key))
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

    def _drop_gate(self, key: Key) -> None:
        entry = self._gates.pop(key, None)
        self._unindex(self._target_of(entry), key)
        self._consumed.pop(key, None)

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
