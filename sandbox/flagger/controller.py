"""The Flagger simulator's control loop, against any Kubernetes API server.

What Flagger's controller does around ``advanceCanary`` (``pkg/controller/controller.go``,
``scheduler.go``, ``job.go``), through the official ``kubernetes`` client:

* **Discovery** (``scheduleCanaries``, every control-loop interval = 10 s x time scale): list
  the Canaries of the namespaces asked (all namespaces by default). A Canary without status
  conditions gets Flagger's ``Initializing`` status at once (``syncHandler``).
* **One job per Canary**: a thread that ticks once when created, then every
  ``analysis.interval`` (default 60 s, at least 10 s) x time scale. A job is re-created when the
  interval changes and stopped when the Canary is gone.
* **Each tick** reads the Canary and its target Deployment, hashes the pod template
  (``lastAppliedSpec``), computes ``trackedConfigs`` from the ConfigMaps and Secrets it references
  (:mod:`sandbox.flagger.configs`), and runs :func:`sandbox.flagger.tick.advance` with the
  real webhook caller; readiness is read from the primary's and the target's Deployment status at
  each of Flagger's checks (:mod:`sandbox.flagger.readiness`). Status writes go through the status
  subresource (PUT, re-read on conflict) at the moment Flagger writes them; each Kubernetes event
  goes through client-go's correlator (:mod:`sandbox.flagger.events`) and is created or patched
  as a core/v1 Event (reason ``Synced``, source ``flagger``, involvedObject the Canary) before its
  event webhooks are called, which the correlator never filters.
* **Workloads**: the ``<target>-primary`` Deployment is created as ``createPrimaryDeployment``
  does (selector label value suffixed ``-primary``, the target's annotations, the pod template
  naming ``<config>-primary`` copies of the tracked ConfigMaps and Secrets), the target is scaled
  to zero and back, and promotion copies the target's pod template and configs into the primary
  (its annotations and labels reset, as with Flagger's default ``-include-label-prefix``).
  No Services and no pods: :class:`FlaggerSimulator` runs the Deployment status writer.
* **Routes** live in memory per Canary (the sandbox has no mesh). After a restart they are
  rebuilt from ``status.canaryWeight``.

Sandbox annotation on the Canary: ``sandbox.flagger.app/metrics: fail`` makes metric checks
fail. Readiness knobs are on the Deployments (:mod:`sandbox.deployments`).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import kubernetes
from kubernetes.client import ApiException

from sandbox.deployments import DeploymentStatusWriter
from sandbox.flagger import checksum, configs, readiness, records, webhooks
from sandbox.flagger.analysis import analysis_interval
from sandbox.flagger.events import EventCorrelator
from sandbox.flagger.status import initializing_status, rfc3339
from sandbox.flagger.tick import advance

log = logging.getLogger("sandbox.flagger")

GROUP, VERSION, PLURAL = "flagger.app", "v1beta1", "canaries"
CONTROL_LOOP_INTERVAL = 10.0
HISTORY_LIMIT = 500
SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
TOOLKIT_MARKER = "toolkit.fluxcd.io"


def _now() -> datetime:
    return datetime.now(UTC)


class _Job:
    """One canary's clock: a thread calling ``tick`` now, then every ``interval`` seconds."""

    def __init__(self, key: tuple[str, str], interval: float, tick) -> None:
        self.key = key
        self.interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"canary-{key[0]}.{key[1]}")

    def start(self) -> None:
        self._thread.start()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        if wait and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._tick(*self.key)
            # like Go's ticker: missed ticks are dropped, ticks never overlap
            next_at += self.interval
            now = time.monotonic()
            if next_at < now:
                next_at = now + self.interval - ((now - next_at) % self.interval)
            self._stop.wait(max(0.0, next_at - now))


class FlaggerController:
    """Runs Canaries through Flagger's phases; see the module docstring."""

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        time_scale: float = 1.0,
        namespaces: Iterable[str] | None = None,
        mesh_provider: str = "",
        event_webhook: str | None = None,
        hooks: records.HookCaller | None = None,
    ):
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.api_client = api_client
        self.time_scale = time_scale
        self.namespaces = list(namespaces) if namespaces else None
        self.mesh_provider = mesh_provider
        self.event_webhook = event_webhook
        self.hooks = hooks or webhooks.WebhookCaller(time_scale=time_scale)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.apps = kubernetes.client.AppsV1Api(api_client)
        self._jobs: dict[tuple[str, str], _Job] = {}
        self._routes: dict[tuple[str, str], records.Routes] = {}
        # the correlator's windows (5 min, 10 min) are scaled like the analysis interval
        self._correlator = EventCorrelator(lambda: time.monotonic() / time_scale)
        self._history: dict[tuple[str, str], list[records.Tick]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._loop: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def control_interval(self) -> float:
        return min(CONTROL_LOOP_INTERVAL, max(0.05, CONTROL_LOOP_INTERVAL * self.time_scale))

    def start(self) -> None:
        self._stop.clear()
        self._loop = threading.Thread(target=self._control_loop, daemon=True, name="flagger-control-loop")
        self._loop.start()

    def stop(self) -> None:
        self._stop.set()
        if self._loop is not None:
            self._loop.join(timeout=30)
        with self._lock:
            jobs = list(self._jobs.values())
            self._jobs.clear()
        for job in jobs:
            job.stop(wait=False)
        for job in jobs:
            job.stop()

    def history(self, namespace: str, name: str) -> list[records.Tick]:
        """The ticks run for one Canary so far (most recent last, bounded)."""
        with self._lock:
            return list(self._history.get((namespace, name), []))

    # -- scheduleCanaries ----------------------------------------------------------------
    def _control_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.schedule_canaries()
            except Exception:
                log.exception("listing canaries failed")
            self._stop.wait(self.control_interval)

    def _list_canaries(self) -> list[dict[str, Any]]:
        if self.namespaces is None:
            return _json(self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)).get("items", [])
        items: list[dict[str, Any]] = []
        for ns in self.namespaces:
            items += _json(self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)).get("items", [])
        return items

    def schedule_canaries(self) -> None:
        """One pass of Flagger's control loop: initialise new Canaries, (re)start jobs."""
        current: dict[tuple[str, str], float] = {}
        for canary in self._list_canaries():
            meta = canary.get("metadata") or {}
            key = (meta.get("namespace", ""), meta.get("name", ""))
            if meta.get("deletionTimestamp"):
                continue
            initial = initializing_status(canary, _now())
            if initial is not None:  # syncHandler: Initializing for Canaries without conditions
                self._write_status(canary, initial)
            current[key] = analysis_interval(canary) * self.time_scale
        with self._lock:
            if self._stop.is_set():
                return
            for key, interval in current.items():
                job = self._jobs.get(key)
                if job is not None and job.interval == interval:
                    continue
                if job is not None:
                    job.stop(wait=False)
                job = _Job(key, interval, self.tick)
                self._jobs[key] = job
                job.start()
            for key in [k for k in self._jobs if k not in current]:
                self._jobs.pop(key).stop(wait=False)
                self._routes.pop(key, None)

    # -- one tick ------------------------------------------------------------------------
    def tick(self, namespace: str, name: str) -> records.Tick | None:
        """Run ``advanceCanary`` once for one Canary; None when it no longer exists."""
        try:
            return self._tick(namespace, name)
        except Exception:
            log.exception("tick of canary %s.%s failed", name, namespace)
            return None

    def _tick(self, namespace: str, name: str) -> records.Tick | None:
        key = (namespace, name)
        try:
            canary = _json(self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name))
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        holder = {"canary": canary}
        target = self._read_target(canary)
        routes = self._routes.get(key)
        if routes is None:
            weight = int((canary.get("status") or {}).get("canaryWeight") or 0)
            routes = records.Routes(records.TOTAL_WEIGHT - weight, weight, False)

        def on_status(status: dict[str, Any]) -> None:
            holder["canary"] = self._write_status(holder["canary"], status)

        def on_event(event: records.Event) -> None:
            self._record_event(holder["canary"], event)

        def on_action(action: str) -> None:
            self._apply_action(holder["canary"], action)

        def read_readiness(which: str) -> readiness.Readiness:
            return self._readiness(canary, which)

        result = advance(
            canary,
            target,
            _now(),
            self.hooks,
            routes=routes,
            mesh_provider=self.mesh_provider,
            event_webhook=self.event_webhook,
            on_status=on_status,
            on_event=on_event,
            on_action=on_action,
            readiness=read_readiness,
        )
        with self._lock:
            self._routes[key] = result.routes
            history = self._history.setdefault(key, [])
            history.append(result)
            del history[:-HISTORY_LIMIT]
        log.info("canary %s.%s: %s weight=%s", name, namespace, result.phase, result.status.get("canaryWeight"))
        return result

    def _read_target(self, canary: Mapping[str, Any]) -> records.TargetWorkload | None:
        meta = canary.get("metadata") or {}
        ref = (canary.get("spec") or {}).get("targetRef") or {}
        deployment = self._deployment(meta.get("namespace", ""), ref.get("name", ""))
        if deployment is None:
            return None
        template = (deployment.get("spec") or {}).get("template") or {}
        return records.TargetWorkload(
            template_hash=checksum.compute_hash(template),
            tracked_configs=self._tracked(meta.get("namespace", ""), template),
        )

    def _deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.api_client.sanitize_for_serialization(self.apps.read_namespaced_deployment(name, namespace))
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def _tracked(self, namespace: str, template: Mapping[str, Any]) -> dict[str, str]:
        """``GetConfigRefs`` of the pod template (an unreadable object is skipped)."""

        def read(method):
            def get(name: str) -> Mapping[str, Any] | None:
                try:
                    return self.api_client.sanitize_for_serialization(method(name, namespace))
                except ApiException:
                    return None

            return get

        return configs.tracked_configs(
            template.get("spec") or {},
            read(self.core.read_namespaced_config_map),
            read(self.core.read_namespaced_secret),
        )

    def _readiness(self, canary: Mapping[str, Any], which: str) -> readiness.Readiness:
        """``IsPrimaryReady``/``IsCanaryReady`` from the Deployment's status, read now."""
        ns = (canary.get("metadata") or {}).get("namespace", "")
        target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name", "")
        name = f"{target}-primary" if which == "primary" else target
        deployment = self._deployment(ns, name)
        if deployment is None:
            return readiness.missing(name, ns)
        deadline, primary_threshold, canary_threshold = readiness.thresholds(canary)
        # the progress deadline is scaled like the analysis interval (600 s x 0.01 = 6 s)
        return readiness.deployment_readiness(
            deployment,
            now=_now(),
            deadline_seconds=deadline * self.time_scale,
            threshold=primary_threshold if which == "primary" else canary_threshold,
        )

    # -- writes ----------------------------------------------------------------------------
    def _write_status(self, canary: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """``UpdateStatus`` through the status subresource, re-reading on a 409 conflict."""
        meta = canary.get("metadata") or {}
        ns, name = meta["namespace"], meta["name"]  # NB: set on every Canary the API answers
        obj = copy.deepcopy(canary)
        for _ in range(5):
            obj["status"] = copy.deepcopy(status)
            try:
                return _json(self.custom.replace_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, name, obj))
            except ApiException as e:
                if e.status != 409:
                    raise
                obj = _json(self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name))
        raise RuntimeError(f"status of canary {name}.{ns}: too many conflicts")

    def _record_event(self, canary: Mapping[str, Any], event: records.Event) -> None:
        """A core/v1 Event as Flagger's recorder writes it, through client-go's correlator."""
        meta = canary.get("metadata") or {}
        ns, name = meta.get("namespace", ""), meta.get("name", "")
        stamp = rfc3339(_now())
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{time.time_ns():x}", "namespace": ns},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Canary",
                "name": name,
                "namespace": ns,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": event.reason,
            "message": event.message,
            "type": event.type,
            "source": {"component": "flagger"},
            "reportingComponent": "flagger",
            "reportingInstance": "",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        with self._lock:
            result = self._correlator.correlate(body, name=lambda: f"{name}.{time.time_ns():x}")
        if result.skip or result.event is None:
            return
        try:
            written = None
            if result.patch is not None:
                try:
                    written = self.core.patch_namespaced_event(result.event["metadata"]["name"], ns, result.patch)
                except ApiException as e:
                    if e.status != 404:
                        raise
            if written is None:
                created = {
                    **result.event,
                    "metadata": {k: v for k, v in result.event["metadata"].items() if k != "resourceVersion"},
                }
                written = self.core.create_namespaced_event(ns, created)  # type: ignore[arg-type]  # NB: it takes a dict body too
            with self._lock:
                self._correlator.update_state(self.api_client.sanitize_for_serialization(written))
        except ApiException as e:
            log.warning("event for canary %s.%s not recorded: %s", name, ns, e.reason)

    def _apply_action(self, canary: Mapping[str, Any], action: str) -> None:
        meta = canary.get("metadata") or {}
        ns = meta.get("namespace", "")
        ref = (canary.get("spec") or {}).get("targetRef") or {}
        target = ref.get("name", "")
        if (ref.get("kind") or "Deployment") != "Deployment":
            return
        try:
            if action == "initialize":
                self._ensure_primary(canary, ns, target)
            elif action == "scale-to-zero":
                self.apps.patch_namespaced_deployment(target, ns, {"spec": {"replicas": 0}})
            elif action == "scale-from-zero":
                self._scale_from_zero(ns, target)
            elif action == "promote":
                self._promote(canary, ns, target)
        except ApiException as e:
            log.warning("%s of %s.%s failed: %s", action, target, ns, e.reason)

    def _ensure_primary(self, canary: Mapping[str, Any], ns: str, target: str) -> None:
        """``createPrimaryDeployment``: once, from the target, with the primary configs."""
        primary = f"{target}-primary"
        if self._deployment(ns, primary) is not None:
            return
        source = self._deployment(ns, target) or {}
        spec = source.get("spec") or {}
        label, value = self._selector_label(source)
        template = spec.get("template") or {}
        tracked = self._copy_configs(canary, ns, template)
        replicas = spec.get("replicas") if (spec.get("replicas") or 0) > 0 else 1
        template_meta = template.get("metadata") or {}
        new_spec = {
            k: copy.deepcopy(spec[k])
            for k in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy")
            if k in spec
        }
        new_spec.update(
            replicas=replicas,
            selector={"matchLabels": {label: value}},
            template={
                "metadata": {
                    "labels": _primary_labels(template_meta.get("labels"), label, value),
                    "annotations": _pod_annotations(template_meta.get("annotations")),
                },
                "spec": configs.apply_primary_configs(template.get("spec") or {}, tracked),
            },
        )
        source_meta = source.get("metadata") or {}
        self.apps.create_namespaced_deployment(
            ns,
            {  # type: ignore[arg-type]  # NB: it takes a dict body too
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": primary,
                    "namespace": ns,
                    # Flagger's default -include-label-prefix "" copies no label
                    "labels": {label: value},
                    "annotations": _without_toolkit(source_meta.get("annotations")),
                    "ownerReferences": [_owner(canary)],
                },
                "spec": new_spec,
            },
        )

    def _selector_label(self, deployment: Mapping[str, Any]) -> tuple[str, str]:
        """``getSelectorLabel`` with Flagger's default ``-selector-labels``; value + ``-primary``."""
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        label = next((k for k in SELECTOR_LABELS if k in selector), "app")
        return label, f"{selector.get(label, (deployment.get('metadata') or {}).get('name', ''))}-primary"

    def _copy_configs(self, canary: Mapping[str, Any], ns: str, template: Mapping[str, Any]) -> dict[str, str]:
        """``CreatePrimaryConfigs``: ``<name>-primary`` copies of the tracked ConfigMaps/Secrets."""
        tracked = self._tracked(ns, template)
        for key in tracked:
            kind, name = key.split("/", 1)
            read, create, replace = (
                (
                    self.core.read_namespaced_config_map,
                    self.core.create_namespaced_config_map,
                    self.core.replace_namespaced_config_map,
                )
                if kind == "configmap"
                else (
                    self.core.read_namespaced_secret,
                    self.core.create_namespaced_secret,
                    self.core.replace_namespaced_secret,
                )
            )
            source = self.api_client.sanitize_for_serialization(read(name, ns))
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap" if kind == "configmap" else "Secret",
                "metadata": {"name": f"{name}-primary", "namespace": ns, "ownerReferences": [_owner(canary)]},
                "data": source.get("data"),
            }
            if kind == "secret":
                body["type"] = source.get("type") or "Opaque"
            try:
                replace(f"{name}-primary", ns, body)  # type: ignore[arg-type]  # NB: it takes a dict body too
            except ApiException as e:
                if e.status != 404:
                    raise
                create(ns, body)  # type: ignore[arg-type]  # NB: it takes a dict body too
        return tracked

    def _scale_from_zero(self, ns: str, target: str) -> None:
        deployment = self.apps.read_namespaced_deployment(target, ns)
        replicas = deployment.spec.replicas or 0
        if replicas <= 0:
            try:
                replicas = self.apps.read_namespaced_deployment(f"{target}-primary", ns).spec.replicas or 1
            except ApiException:
                replicas = 1
        self.apps.patch_namespaced_deployment(target, ns, {"spec": {"replicas": replicas}})

    def _promote(self, canary: Mapping[str, Any], ns: str, target: str) -> None:
        """``Promote``: the target's pod template (primary configs, labels) into the primary,
        re-read and retried on a 409 conflict (``RetryOnConflict``)."""
        for attempt in range(5):
            try:
                self._promote_once(canary, ns, target)
                return
            except ApiException as e:
                if e.status != 409 or attempt == 4:
                    raise

    def _promote_once(self, canary: Mapping[str, Any], ns: str, target: str) -> None:
        source = self._deployment(ns, target) or {}
        primary = self._deployment(ns, f"{target}-primary")
        if primary is None:
            return
        spec = source.get("spec") or {}
        label, value = self._selector_label(source)
        template = copy.deepcopy(spec.get("template") or {})
        tracked = self._copy_configs(canary, ns, template)
        for key in ("progressDeadlineSeconds", "minReadySeconds", "revisionHistoryLimit", "strategy", "replicas"):
            if key in spec:
                primary["spec"][key] = copy.deepcopy(spec[key])
        template_meta = template.get("metadata") or {}
        primary["spec"]["template"] = {
            "metadata": {
                "labels": _primary_labels(template_meta.get("labels"), label, value),
                "annotations": _pod_annotations(template_meta.get("annotations")),
            },
            "spec": configs.apply_primary_configs(template.get("spec") or {}, tracked),
        }
        # Flagger's default -include-label-prefix "" keeps no annotation and no label
        primary["metadata"]["annotations"] = {}
        primary["metadata"]["labels"] = {label: value}
        self.apps.replace_namespaced_deployment(f"{target}-primary", ns, primary)  # type: ignore[arg-type]  # NB: it takes a dict body too


def _without_toolkit(values: Mapping[str, str] | None) -> dict[str, str]:
    """``filterMetadata``: drops Flux's ``toolkit.fluxcd.io`` keys."""
    return {k: v for k, v in (values or {}).items() if TOOLKIT_MARKER not in k}


def _primary_labels(labels: Mapping[str, str] | None, label: str, value: str) -> dict[str, str]:
    """``makePrimaryLabels``."""
    return {**{k: v for k, v in _without_toolkit(labels).items() if k != label}, label: value}


def _pod_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """``makeAnnotations``: a fresh ``flagger-id`` forces a rolling update of the primary."""
    return {
        **{k: v for k, v in _without_toolkit(annotations).items() if k != "flagger-id"},
        "flagger-id": str(uuid.uuid4()),
    }


def _owner(canary: Mapping[str, Any]) -> dict[str, Any]:
    meta = canary.get("metadata") or {}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Canary",
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _json(answer: object) -> dict[str, Any]:
    """A CustomObjectsApi answer: the decoded JSON object (the client annotates it as ``object``).

    The other way, the client's methods take a dict body as they take a model, though they are
    annotated with the model only: those calls carry ``type: ignore[arg-type]``.
    """
    return cast(dict[str, Any], answer)


class FlaggerSimulator:
    """Context manager running a :class:`FlaggerController` for tests and the demo.

    ``with FlaggerSimulator(kubeconfig=path, time_scale=0.01) as flagger: ...`` ticks each
    Canary every ``analysis.interval x 0.01`` seconds (a ``1m`` interval becomes 0.6 s).
    ``namespaces`` limits it to those namespaces (all by default). Flagger reads readiness
    from Deployment status, which nothing writes on the test bench, so a
    :class:`sandbox.deployments.DeploymentStatusWriter` runs for the same namespaces unless
    ``deployments=False`` (then something else must write it, or every workload stays unready).
    """

    def __init__(
        self,
        kubeconfig: str | None = None,
        *,
        time_scale: float = 1.0,
        namespaces: Iterable[str] | None = None,
        context: str | None = None,
        api_client: kubernetes.client.ApiClient | None = None,
        mesh_provider: str = "",
        event_webhook: str | None = None,
        deployments: bool = True,
    ):
        self.kubeconfig = kubeconfig
        self.deployments = deployments
        self._writer: DeploymentStatusWriter | None = None
        self.context = context
        self._own_client = api_client is None
        self._api_client = api_client
        self.controller: FlaggerController | None = None
        self._time_scale = time_scale
        self._namespaces = list(namespaces) if namespaces else None  # NB: a list: the writer and the controller read it
        self._mesh_provider = mesh_provider
        self._event_webhook = event_webhook

    def __enter__(self) -> FlaggerSimulator:
        if self._api_client is None:
            self._api_client = kubernetes.config.new_client_from_config(
                config_file=self.kubeconfig, context=self.context
            )
        if self.deployments:
            self._writer = DeploymentStatusWriter(self._api_client, namespaces=self._namespaces)
            self._writer.start()
        self.controller = FlaggerController(
            self._api_client,
            time_scale=self._time_scale,
            namespaces=self._namespaces,
            mesh_provider=self._mesh_provider,
            event_webhook=self._event_webhook,
        )
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.controller is not None:
            self.controller.stop()
        if self._writer is not None:
            self._writer.stop()
            self._writer = None
        if self._own_client and self._api_client is not None:
            self._api_client.close()

    def history(self, namespace: str, name: str) -> list[records.Tick]:
        assert self.controller is not None
        return self.controller.history(namespace, name)

    def wait_for_phase(
        self, namespace: str, name: str, phase: str | Iterable[str], timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll the API until the Canary's ``status.phase`` is ``phase`` (or one of them)."""
        assert self.controller is not None
        wanted = {phase} if isinstance(phase, str) else set(phase)
        deadline = time.monotonic() + timeout
        seen = None
        while True:
            try:
                canary = _json(
                    self.controller.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
                )
                seen = (canary.get("status") or {}).get("phase")
                if seen in wanted:
                    return canary
            except ApiException as e:
                if e.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"canary {name}.{namespace} not in {sorted(wanted)} after {timeout}s (phase {seen!r})"
                )
            time.sleep(0.05)
