"""The one controller the emulator runs: namespace deletion, as kube-controller-manager's.

Deleting a Namespace only marks it (``deletionTimestamp``, phase ``Terminating``). This
controller, woken by every write, deletes each terminating namespace's contents the way a
client would (objects with finalizers get ``deletionTimestamp`` and stay until their
finalizers are removed) and, once nothing is left in it, removes the namespace. Unlike the
real one it does not write the ``NamespaceDeletion*``/``NamespaceContentRemaining``
conditions, and it acts as soon as it is woken (the real one takes seconds).
"""

from __future__ import annotations

import threading

from sandbox.apiserver.objects import Objects, WriteOptions
from sandbox.apiserver.store import Store

NAMESPACES = ("", "namespaces")


class NamespaceController:
    def __init__(self, store: Store, objects: Objects):
        self.store = store
        self.objects = objects
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._stop = False
            self._thread = threading.Thread(target=self._run, name="sandbox-namespace-controller", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self.store.changed:
            self._stop = True
            self.store.changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        with self.store.changed:
            while not self._stop and not self.store.closed:
                self.sync()
                self.store.changed.wait(1.0)

    def sync(self) -> None:
        """One pass over the terminating namespaces (under the store lock)."""
        with self.store.lock:
            terminating = [
                ns["metadata"]["name"]
                for ns in self.store.list(NAMESPACES)[0]
                if ns["metadata"].get("deletionTimestamp")
            ]
            for name in terminating:
                for key in self.store.namespaces_in_use(name):
                    rt = self.objects.registry.by_key(key)
                    for obj in self.store.list(key, name)[0]:
                        if rt is None:  # NB: a kind no longer served: nothing can finalize it
                            self.store.remove(key, name, obj["metadata"]["name"])
                        elif not obj["metadata"].get("deletionTimestamp"):
                            self.objects.delete(rt, name, obj["metadata"]["name"], {}, WriteOptions({}))
                if not any(self.store.list(key, name)[0] for key in self.store.namespaces_in_use(name)):
                    self.store.remove(NAMESPACES, "", name)
