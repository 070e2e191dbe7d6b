"""A stand-in for the Deployment controller and the kubelets: writes each Deployment's status.

Nothing runs pods on the test bench, and Flagger reads only a Deployment's status to decide
whether a workload is ready (``pkg/canary/deployment_ready.go``, ``isDeploymentReady``:
observedGeneration, updatedReplicas, replicas, availableReplicas, and the ``Progressing``
condition's ``ProgressDeadlineExceeded`` reason). So this watches Deployments and writes, through
the status subresource, what the Deployment controller would once every pod came up:
``observedGeneration = generation`` and every replica count equal to ``spec.replicas``, with the
``Available`` and ``Progressing`` conditions. It follows scale-ups and scale-downs (Flagger scales
the target to zero and back) and new pod templates (a new revision).

The annotation ``sandbox.deployments/ready`` on a Deployment holds it unready, as a crash-looping
pod would: ``"false"`` keeps ``availableReplicas``/``readyReplicas`` at 0 (``Available=False``,
``MinimumReplicasUnavailable``; still progressing), ``"deadline"`` also sets ``Progressing=False``
with reason ``ProgressDeadlineExceeded``. Removing the annotation makes it ready again.

It runs against any API server (the emulator or a real kube-apiserver, where no
kube-controller-manager deployment controller may run beside it) through the official client,
and is the same code on both tiers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import kubernetes
from kubernetes.client import ApiException

log = logging.getLogger("sandbox.deployments")

READY_ANNOTATION = "sandbox.deployments/ready"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def desired_status(deployment: dict[str, Any], now: str) -> dict[str, Any]:
    """The status the Deployment controller and kubelets would report for ``deployment``."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    hold = str((meta.get("annotations") or {}).get(READY_ANNOTATION, "")).strip().lower()
    unready = hold in ("false", "deadline")
    available = 0 if unready else replicas
    old = {c.get("type"): c for c in ((deployment.get("status") or {}).get("conditions") or [])}

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        # As the Deployment controller: lastUpdateTime moves only when status or reason change
        # (Flagger's progress deadline counts from it), lastTransitionTime only when status does.
        previous = old.get(kind) or {}
        same = previous.get("status") == status
        unchanged = same and previous.get("reason") == reason
        return {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastUpdateTime": previous.get("lastUpdateTime", now) if unchanged else now,
            "lastTransitionTime": previous.get("lastTransitionTime", now) if same else now,
        }

    name = meta.get("name", "")
    if unready and replicas > 0:  # no replicas wanted: the controller reports the Deployment available
        conditions = [
            condition(
                "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability."
            )
        ]
    else:
        conditions = [
            condition("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
        ]
    if hold == "deadline":
        conditions.append(
            condition(
                "Progressing", "False", "ProgressDeadlineExceeded", f'ReplicaSet "{name}" has timed out progressing.'
            )
        )
    else:
        conditions.append(
            condition(
                "Progressing", "True", "NewReplicaSetAvailable", f'ReplicaSet "{name}" has successfully progressed.'
            )
        )
    status: dict[str, Any] = {
        "observedGeneration": int(meta.get("generation") or 0),
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
        "unavailableReplicas": replicas - available,
        "conditions": conditions,
    }
    if replicas == 0:  # the Deployment controller omits zero counts
        for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            status.pop(key)
    elif available == replicas:
        status.pop("unavailableReplicas")
    return status


def _differs(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    if any(current.get(k) != v for k, v in wanted.items() if k != "conditions"):
        return True
    if any(
        k in current and k not in wanted
        for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas")
    ):
        return True
    have = {(c.get("type"), c.get("status"), c.get("reason")) for c in current.get("conditions") or []}
    return have != {(c["type"], c["status"], c["reason"]) for c in wanted["conditions"]}


class DeploymentStatusWriter:
    """Watches Deployments (all namespaces, or ``namespaces``) and writes their status.

    A context manager; ``start()``/``stop()`` run it on a daemon thread. API errors are logged and
    the watch is reopened after a short pause, so an API server restart is survived.
    """

    def __init__(
        self, api_client: kubernetes.client.ApiClient, *, namespaces: list[str] | None = None, resync: float = 5.0
    ):
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self.namespaces = namespaces
        self.resync = resync
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> DeploymentStatusWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._stop.clear()
        scopes: list[str | None] = [*self.namespaces] if self.namespaces else [None]  # NB: None is all namespaces
        for ns in scopes:
            thread = threading.Thread(target=self._run, args=(ns,), daemon=True, name=f"deployments-{ns or 'all'}")
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def sync(self, deployment: dict[str, Any]) -> bool:
        """Write ``deployment``'s status if it differs from what it should be; True if written."""
        meta = deployment.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return False
        wanted = desired_status(deployment, _now())
        if not _differs(deployment.get("status") or {}, wanted):
            return False
        body = {"status": wanted}
        try:
            # a merge patch of the status subresource; null clears the counts a scale-down drops
            for key in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
                body["status"].setdefault(key, None)
            self.apps.patch_namespaced_deployment_status(meta["name"], meta["namespace"], body)
        except ApiException as e:
            if e.status not in (404, 409):
                raise
            return False
        return True

    def _run(self, namespace: str | None) -> None:
        resource_version = ""
        while not self._stop.is_set():
            try:
                if namespace:
                    listing = self.apps.list_namespaced_deployment(namespace, _preload_content=False)
                else:
                    listing = self.apps.list_deployment_for_all_namespaces(_preload_content=False)
                data = json.loads(listing.data)  # type: ignore[attr-defined]  # NB: the urllib3 response, not a model
                resource_version = data["metadata"].get("resourceVersion", "")
                for item in data.get("items") or []:
                    self.sync(item)
                self._watch(namespace, resource_version)
            except Exception as e:  # noqa: BLE001 - the stand-in must survive API restarts
                if not self._stop.is_set():
                    log.warning("deployment status writer: %s; retrying", e)
                    self._stop.wait(0.5)

    def _watch(self, namespace: str | None, resource_version: str) -> None:
        watch = kubernetes.watch.Watch()
        kwargs: dict[str, Any] = {
            "resource_version": resource_version,
            "timeout_seconds": int(self.resync),
            "allow_watch_bookmarks": True,
        }
        func = self.apps.list_namespaced_deployment if namespace else self.apps.list_deployment_for_all_namespaces
        args = (namespace,) if namespace else ()
        deadline = time.monotonic() + self.resync + 5
        for event in watch.stream(func, *args, **kwargs):
            if self._stop.is_set() or time.monotonic() > deadline:
                watch.stop()
                return
            if event.get("type") in ("ADDED", "MODIFIED"):
                obj = event.get("raw_object") or {}
                self.sync(obj)
