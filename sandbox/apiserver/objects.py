"""Object lifecycle: what create, update, patch and delete do to stored objects.

The rules mirror kube-apiserver's generic registry and the CRD strategy:

* create sets ``uid``, ``creationTimestamp``, ``generation: 1`` and a fresh
  ``resourceVersion``; a kind with a status subresource drops ``status`` on create.
* update/patch keep the immutable metadata; with a status subresource the main
  resource ignores ``status`` and ``/status`` changes only ``status``;
  ``generation`` is bumped when anything outside ``metadata`` (and ``status``,
  when it is a subresource) changed; a no-op write stores nothing and keeps the
  resourceVersion (kubectl prints "patched (no change)" from that).
* delete answers a ``Status`` of kind Success naming what went, except for the kinds
  whose registry returns the deleted object (pods, services, serviceaccounts) and for a
  deferred deletion: an object with finalizers only gets ``deletionTimestamp`` (and a
  new ``generation``) and is answered as it now is; removing the last finalizer then
  deletes it.  A namespace goes ``Terminating`` and is answered so; the namespace
  controller (:mod:`sandbox.apiserver.controllers`) deletes its contents, then the
  namespace.  Creating in a terminating namespace is 403 ``NamespaceTerminating``.
* CRDs: creating one starts serving its kind (status says Established at once);
  deleting one deletes its objects.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import itertools
import uuid
from typing import Any

from sandbox.apiserver import status, validation
from sandbox.apiserver.resources import Registry, ResourceType
from sandbox.apiserver.store import Store

IMMUTABLE_META = (
    "uid",
    "creationTimestamp",
    "name",
    "namespace",
    "generation",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
)
_cluster_ips = itertools.count(1)
# NB: the registries with ReturnDeletedObject: a DELETE answers the object, not a Status.
RETURNS_DELETED_OBJECT = {("", "pods"), ("", "services"), ("", "serviceaccounts")}


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(rt: ResourceType, obj: dict) -> dict:
    """The stored object as served at ``rt``'s version (apiVersion/kind set; shallow copy)."""
    out = dict(obj)
    out["apiVersion"] = rt.api_version
    out["kind"] = rt.kind
    return out


class WriteOptions:
    """Query options of a write: dryRun, fieldValidation (Strict/Warn/Ignore), fieldManager."""

    def __init__(self, query: dict[str, str]):
        self.dry_run = query.get("dryRun") == "All"
        self.field_validation = query.get("fieldValidation") or "Warn"
        self.field_manager = query.get("fieldManager", "")
        self.warnings: list[str] = []
        if query.get("dryRun") not in (None, "", "All"):
            raise status.bad_request(f"unsupported dryRun value: {query['dryRun']}")
        if self.field_validation not in ("Strict", "Warn", "Ignore"):
            raise status.bad_request(
                f'Invalid fieldValidation parameter: "{self.field_validation}". '
                'Expected one of: "Ignore", "Warn", "Strict".'
            )


class Objects:
    def __init__(self, store: Store, registry: Registry):
        self.store = store
        self.registry = registry

    # -- checks ---------------------------------------------------------------
    def check_type(self, rt: ResourceType, body: Any) -> dict:
        if not isinstance(body, dict):
            raise status.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                "couldn't get version/kind; json parse error"
            )
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if kind and kind != rt.kind:
            raise status.bad_request(
                f"the object provided is unrecognized (must be of type {rt.kind}): "
                f'{kind} in version "{api_version}" cannot be handled as a {rt.kind}'
            )
        if api_version and api_version != rt.api_version:
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        if not isinstance(body.get("metadata", {}), dict):
            raise status.bad_request("metadata must be an object")
        return body

    def _schema_checks(self, rt: ResourceType, obj: dict, opts: WriteOptions) -> None:
        """Prune unknown fields (400 with Strict, a warning with Warn), default, validate (422)."""
        if rt.schema is None:
            return
        dropped = validation.prune(obj, rt.schema)
        if dropped and opts.field_validation == "Strict":
            unknown = ", ".join(f'unknown field "{p}"' for p in dropped)
            raise status.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                f"strict decoding error: {unknown}"
            )
        if opts.field_validation == "Warn":
            opts.warnings.extend(f'unknown field "{p}"' for p in dropped)
        validation.apply_defaults(obj, rt.schema)
        causes = validation.validate(obj, rt.schema)
        if causes:
            raise status.invalid(rt.kind, rt.group, obj["metadata"].get("name", ""), causes)

    def _kind_specific(self, rt: ResourceType, obj: dict, old: dict | None) -> None:
        meta = obj["metadata"]
        if rt.key == ("", "namespaces"):
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {})["phase"] = "Active"
        elif rt.key == ("", "services") and old is None:
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                n = next(_cluster_ips)
                spec["clusterIP"] = f"10.96.{n // 250}.{n % 250 + 1}"
                spec["clusterIPs"] = [spec["clusterIP"]]
            for p in spec.get("ports") or []:
                p.setdefault("protocol", "TCP")
                p.setdefault("targetPort", p.get("port"))
        elif rt.key == ("", "secrets"):
            string_data = obj.pop("stringData", None) or {}
            data = obj.setdefault("data", {})
            for k, v in string_data.items():
                data[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        elif rt.key == ("", "pods") and old is None:
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self._check_crd(obj)

    def _check_crd(self, crd: dict) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"]["name"]
        causes = []
        if not spec.get("group"):
            causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": "spec.group"})
        for f in ("plural", "kind"):
            if not names.get(f):
                causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": f"spec.names.{f}"})
        if not causes and name != f"{names['plural']}.{spec['group']}":
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": "metadata.name",
                    "message": f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                }
            )
        versions = spec.get("versions") or []
        if not versions:
            causes.append(
                {
                    "reason": "FieldValueInvalid",
                    "field": "spec.versions",
                    "message": "Invalid value: []: must have exactly one version marked as storage version",
                }
            )
        if causes:
            raise status.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
        names = dict(names)
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
        stamp = now()
        crd["status"] = {
            "acceptedNames": names,
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": stamp,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": stamp,
                },
            ],
            "storedVersions": [v["name"] for v in versions if v.get("storage")] or [versions[0]["name"]],
        }

    # -- create ----------------------------------------------------------------
    def create(self, rt: ResourceType, namespace: str, body: Any, opts: WriteOptions) -> dict:
        obj = copy.deepcopy(self.check_type(rt, body))
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            raise status.invalid(
                rt.kind,
                rt.group,
                "",
                [
                    {
                        "reason": "FieldValueRequired",
                        "field": "metadata.name",
                        "message": "Required value: name or generateName is required",
                    }
                ],
            )
        causes = validation.name_causes(meta["name"], label=rt.key == ("", "namespaces"))
        if causes:
            raise status.invalid(rt.kind, rt.group, meta["name"], causes)
        if rt.status_subresource and not rt.is_builtin:
            obj.pop("status", None)
        elif rt.group == "apps" and rt.status_subresource:
            obj["status"] = {}  # as kube-apiserver's PrepareForCreate: an empty status, present
        self._schema_checks(rt, obj, opts)
        self._kind_specific(rt, obj, None)
        for k in ("resourceVersion", "uid", "deletionTimestamp", "managedFields", "selfLink"):
            meta.pop(k, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now()
        meta["generation"] = 1
        with self.store.lock:
            ns = self.store.get(("", "namespaces"), "", namespace) if rt.namespaced else None
            if rt.namespaced and ns is None:
                raise status.not_found("namespaces", "", namespace)
            if ns is not None and ns["metadata"].get("deletionTimestamp"):
                raise namespace_terminating(rt, namespace, meta["name"])
            if self.store.get(rt.key, meta.get("namespace", ""), meta["name"]) is not None:
                raise status.already_exists(rt.plural, rt.group, meta["name"])
            if opts.dry_run:
                return obj
            stored = self.store.put(rt.key, obj, "ADDED")
            if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                self.registry.set_crd(stored)
            return stored

    # -- update ----------------------------------------------------------------
    def get_or_404(self, rt: ResourceType, namespace: str, name: str) -> dict:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise status.not_found(rt.plural, rt.group, name)
        return obj

    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        subresource: str,
        body: Any,
        opts: WriteOptions,
        *,
        precondition_required: bool = True,
    ) -> dict:
        """PUT semantics: ``body`` replaces the object (or its status); stale resourceVersion → 409."""
        new = copy.deepcopy(self.check_type(rt, body))
        with self.store.lock:
            old = self.get_or_404(rt, namespace, name)
            meta = new.setdefault("metadata", {})
            if meta.get("name") and meta["name"] != name:
                raise status.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
                )
            if rt.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            rv = meta.get("resourceVersion")
            if rv:
                if rv != old["metadata"]["resourceVersion"]:
                    raise status.conflict(rt.plural, rt.group, name)
            elif precondition_required and not rt.unconditional_update:
                raise status.invalid(
                    rt.kind,
                    rt.group,
                    name,
                    [
                        {
                            "reason": "FieldValueInvalid",
                            "field": "metadata.resourceVersion",
                            "message": "Invalid value: 0x0: must be specified for an update",
                        }
                    ],
                )
            return self._commit_update(rt, old, new, subresource, opts)

    def _commit_update(self, rt: ResourceType, old: dict, new: dict, subresource: str, opts: WriteOptions) -> dict:
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        meta = new.setdefault("metadata", {})
        old_meta = old["metadata"]
        if subresource == "status":
            merged = copy.deepcopy(old)
            if "status" in new:
                merged["status"] = new["status"]
            else:
                merged.pop("status", None)
            new = merged
            meta = new["metadata"]
        else:
            for k in IMMUTABLE_META:
                if k in old_meta:
                    meta[k] = old_meta[k]
                else:
                    meta.pop(k, None)
            if rt.status_subresource:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
            self._schema_checks(rt, new, opts)
            self._kind_specific(rt, new, old)
        if subresource == "status" and rt.schema is not None:
            self._schema_checks(rt, new, opts)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        meta.pop("managedFields", None)
        old_cmp = {k: v for k, v in old.items() if k not in ("apiVersion", "kind")}
        new_cmp = {k: v for k, v in new.items() if k not in ("apiVersion", "kind")}
        if old_cmp == new_cmp:
            return old  # NB: a no-op write keeps the resourceVersion
        if self._spec_changed(rt, old, new):
            meta["generation"] = old_meta.get("generation", 1) + 1
        if opts.dry_run:
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            gone = self.store.remove(rt.key, meta.get("namespace", ""), meta["name"])
            assert gone is not None  # NB: `old`, read under the same lock, is stored under that name
            return gone
        stored = self.store.put(rt.key, new, "MODIFIED")
        if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
            self.registry.set_crd(stored)
        return stored

    @staticmethod
    def _spec_changed(rt: ResourceType, old: dict, new: dict) -> bool:
        skip = {"metadata", "apiVersion", "kind"} | ({"status"} if rt.status_subresource else set())
        return {k: v for k, v in old.items() if k not in skip} != {k: v for k, v in new.items() if k not in skip}

    def patch_with(
        self, rt: ResourceType, namespace: str, name: str, subresource: str, opts: WriteOptions, apply_patch
    ) -> dict:
        """Patch under the store lock: ``apply_patch(current) -> patched``; a resourceVersion in the
        patched object acts as a precondition."""
        with self.store.lock:
            old = self.get_or_404(rt, namespace, name)
            patched = apply_patch(present(rt, copy.deepcopy(old)))
            if not isinstance(patched, dict):
                raise status.bad_request("the patch did not produce an object")
            self.check_type(rt, patched)
            meta = patched.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise status.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
                )
            rv = meta.get("resourceVersion")
            if rv and rv != old["metadata"]["resourceVersion"]:
                raise status.conflict(rt.plural, rt.group, name)
            return self._commit_update(rt, old, patched, subresource, opts)

    # -- delete ----------------------------------------------------------------
    def delete(self, rt: ResourceType, namespace: str, name: str, options: dict, opts: WriteOptions) -> dict:
        """Delete as kube-apiserver does; returns what the DELETE answers (the object, or a Success Status)."""
        with self.store.lock:
            old = self.get_or_404(rt, namespace, name)
            pre = (options or {}).get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != old["metadata"].get("uid"):
                raise status.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, "
                    f"UID in object meta: {old['metadata'].get('uid')}",
                )
            if pre.get("resourceVersion") and pre["resourceVersion"] != old["metadata"]["resourceVersion"]:
                raise status.conflict(
                    rt.plural,
                    rt.group,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: "
                    f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                    f"{old['metadata']['resourceVersion']}",
                )
            if opts.dry_run:
                return present(rt, old)
            if old["metadata"].get("deletionTimestamp"):
                return present(rt, old)  # NB: already going: answered as it is, nothing written
            if rt.key == ("", "namespaces"):
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now()
                new["status"] = {**(new.get("status") or {}), "phase": "Terminating"}
                return present(rt, self.store.put(rt.key, new, "MODIFIED"))
            if old["metadata"].get("finalizers"):
                new = copy.deepcopy(old)
                new["metadata"]["deletionTimestamp"] = now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
                return present(rt, self.store.put(rt.key, new, "MODIFIED"))
            if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                served = self.registry.by_crd(name)
                if served is not None:
                    for o in self.store.list(served.key)[0]:
                        self.store.remove(served.key, o["metadata"].get("namespace", ""), o["metadata"]["name"])
                self.registry.remove_crd(name)
            gone = self.store.remove(rt.key, namespace if rt.namespaced else "", name)
            assert gone is not None  # NB: `old`, read under the same lock, is stored under that name
            if rt.key in RETURNS_DELETED_OBJECT:
                return present(rt, gone)
            details = {"name": name, "group": rt.group, "kind": rt.plural, "uid": old["metadata"].get("uid", "")}
            if not rt.group:
                del details["group"]
            return status.success_status(details)

    # -- test setup ---------------------------------------------------------------
    def force_apply(self, rt: ResourceType, body: dict) -> dict:
        """Create or replace as given (status included, no validation): for test setup."""
        obj = copy.deepcopy(self.check_type(rt, body))
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        meta = obj.setdefault("metadata", {})
        if not rt.namespaced:
            meta.pop("namespace", None)
        elif not meta.get("namespace"):
            meta["namespace"] = "default"
        with self.store.lock:
            if rt.namespaced and self.store.get(("", "namespaces"), "", meta["namespace"]) is None:
                raise status.not_found("namespaces", "", meta["namespace"])
            old = self.store.get(rt.key, meta.get("namespace", ""), meta["name"])
            if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                keep_status = obj.get("status")
                self._check_crd(obj)
                if keep_status:
                    obj["status"] = keep_status
            elif rt.key == ("", "namespaces"):
                self._kind_specific(rt, obj, old)
            meta.pop("resourceVersion", None)
            if old is None:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", now())
                meta.setdefault("generation", 1)
                stored = self.store.put(rt.key, obj, "ADDED")
            else:
                for k in ("uid", "creationTimestamp"):
                    meta[k] = old["metadata"][k]
                gen = old["metadata"].get("generation", 1)
                meta["generation"] = gen + 1 if self._spec_changed(rt, old, obj) else gen
                stored = self.store.put(rt.key, obj, "MODIFIED")
            if rt.key == ("apiextensions.k8s.io", "customresourcedefinitions"):
                self.registry.set_crd(stored)
            return stored


def namespace_terminating(rt: ResourceType, namespace: str, name: str) -> status.ApiError:
    """kube-apiserver's NamespaceLifecycle admission refusing new content in a terminating namespace."""
    details: dict[str, Any] = {
        "name": name,
        "group": rt.group,
        "kind": rt.plural,
        "causes": [
            {
                "reason": "NamespaceTerminating",
                "message": f"namespace {namespace} is being terminated",
                "field": "metadata.namespace",
            }
        ],
    }
    if not rt.group:
        del details["group"]
    return status.ApiError(
        403,
        f'{status.qualified(rt.plural, rt.group)} "{name}" is forbidden: unable to create '
        f"new content in namespace {namespace} because it is being terminated",
        reason="Forbidden",
        details=details,
    )
