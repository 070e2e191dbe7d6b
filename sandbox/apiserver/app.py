"""The WSGI app: authentication, authorization, routing, and the verbs.

Non-resource endpoints (discovery, openapi, version, health) are routed as data
with a werkzeug ``Map``.  Resource paths are resolved the way kube-apiserver's
RequestInfo resolver does (``/api/v1/namespaces/{ns}/events`` is a namespaced list,
``/api/v1/namespaces/{name}`` the Namespace itself, ``.../{name}/status`` a
subresource), then dispatched on the Kubernetes verb; a connect subresource
(``services/{id}/proxy/...``) goes to :mod:`sandbox.apiserver.proxy` instead.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

import yaml
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from sandbox.apiserver import discovery, openapi, patching, protobuf, proxy, rbac, selectors, status, tables, watching
from sandbox.apiserver.faults import Faults
from sandbox.apiserver.objects import Objects, WriteOptions, present
from sandbox.apiserver.resources import Registry, ResourceType
from sandbox.apiserver.store import Store

VERSION_INFO = {
    "major": "1",
    "minor": "37",
    "emulationMajor": "1",
    "emulationMinor": "37",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "36",
    "gitVersion": "v1.37.0-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.26.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
JSON = "application/json"
TABLE_CT = "application/json;as=Table;v=v1;g=meta.k8s.io"


@dataclasses.dataclass
class RequestRecord:
    """One served request.  ``time`` is when it arrived (epoch seconds); ``duration`` in seconds."""

    method: str
    path: str
    query: dict[str, str]
    user: str
    verb: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    status: int = 0
    time: float = 0.0
    duration: float = 0.0
    content_type: str = ""


@dataclasses.dataclass(frozen=True)
class ResourceRequest:
    """What a request under /api or /apis asks for: the resource type, where, which object (and
    subresource), and the RBAC verb."""

    rt: ResourceType
    namespace: str  # '' for cluster-scoped, or for an all-namespaces list
    name: str
    subresource: str
    verb: str


class ApiApp:
    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        faults: Faults,
        tokens: dict[str, rbac.UserInfo],
        server_address: Callable[[], str],
        bookmark_interval: float = 60.0,
        stopping: Callable[[], bool] = lambda: False,
    ):
        self.store = store
        self.registry = registry
        self.objects = Objects(store, registry)
        self.faults = faults
        self.tokens = tokens
        self.server_address = server_address
        self.bookmark_interval = bookmark_interval
        self.stopping = stopping
        self.requests: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self.url_map = Map(
            [
                Rule("/version", endpoint="version"),
                Rule("/version/", endpoint="version"),
                Rule("/healthz", endpoint="health"),
                Rule("/readyz", endpoint="health"),
                Rule("/livez", endpoint="health"),
                Rule("/api", endpoint="core_discovery"),
                Rule("/api/", endpoint="core_discovery"),
                Rule("/apis", endpoint="groups_discovery"),
                Rule("/apis/", endpoint="groups_discovery"),
                Rule("/api/<version>", endpoint="resource_list"),
                Rule("/apis/<group>", endpoint="group"),
                Rule("/apis/<group>/<version>", endpoint="resource_list"),
                Rule("/openapi/v2", endpoint="openapi_v2"),
                Rule("/openapi/v3", endpoint="openapi_v3"),
                Rule("/openapi/v3/", endpoint="openapi_v3"),
                Rule("/openapi/v3/<path:gv>", endpoint="openapi_v3_doc"),
            ],
            strict_slashes=False,
        )

    # -- WSGI --------------------------------------------------------------------
    def __call__(self, environ, start_response):
        return self.wsgi_app(environ, start_response)

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=dict(request.args.items()),
            user="",
            time=time.time(),
            content_type=request.content_type or "",
        )
        started = time.monotonic()
        with self._log_lock:
            self.requests.append(record)
        try:
            response = self.handle(request, record)
        except status.ApiError as e:
            response = self.error_response(e)
        except Exception as e:  # noqa: BLE001 - an emulator bug must answer 500, as kube does
            response = self.error_response(status.ApiError(500, f"sandbox internal error: {e!r}"))
            import traceback

            traceback.print_exc()
        record.status = response.status_code
        record.duration = time.monotonic() - started
        response.headers.setdefault("Audit-Id", str(uuid.uuid4()))
        response.headers.setdefault("Cache-Control", "no-cache, private")
        return response(environ, start_response)

    def clear_requests(self) -> None:
        with self._log_lock:
            self.requests.clear()

    @staticmethod
    def error_response(e: status.ApiError, body: dict | None = None) -> Response:
        resp = Response(json.dumps(body or e.status()), status=e.code, content_type=JSON)
        for k, v in e.headers.items():
            resp.headers[k] = v
        return resp

    # -- pipeline -----------------------------------------------------------------
    def handle(self, request: Request, record: RequestRecord) -> Response:
        delay = self.faults.delay_for(request.path)
        if delay:
            time.sleep(delay)
        failure = self.faults.take_failure(request.method, request.path)
        if failure is not None:
            headers = {"Retry-After": str(failure.retry_after)} if failure.status == 429 else {}
            message = failure.message
            if failure.status == 429:
                message = "the server has received too many requests and has asked us to try again later"
            raise status.ApiError(
                failure.status,
                message,
                headers=headers,
                details={
                    "causes": [{"reason": "InjectedFault", "message": failure.message}],
                    **({"retryAfterSeconds": failure.retry_after} if failure.status == 429 else {}),
                },
            )
        user = self.authenticate(request)
        record.user = user.username
        query = dict(request.args.items())
        try:
            attrs = rbac.request_attributes(request.method, request.path, query)
        except ValueError as e:
            raise status.ApiError(500, str(e)) from e
        record.verb, record.resource, record.subresource = attrs.verb, attrs.resource, attrs.subresource
        record.namespace, record.name = attrs.namespace, attrs.name
        allowed, reason = rbac.authorize(user, attrs, self.rbac_objects)
        if not allowed:
            body = rbac.forbidden_status(user, attrs, reason=reason)
            raise_body = status.ApiError(403, body["message"], reason="Forbidden", details=body["details"])
            return self.error_response(raise_body, body)
        if attrs.resource_request:
            asked = self.resolve(request.path, attrs)
            return self.dispatch_resource(request, asked, user, query)
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
        except (NotFound, MethodNotAllowed):
            return Response("404 page not found\n", status=404, content_type="text/plain; charset=utf-8")
        return getattr(self, f"on_{endpoint}")(request, **values)

    def authenticate(self, request: Request) -> rbac.UserInfo:
        header = request.headers.get("Authorization", "")
        if not header:
            return rbac.UserInfo("system:anonymous", ("system:unauthenticated",))
        scheme, _, token = header.partition(" ")
        user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise status.ApiError(401, "Unauthorized", reason="Unauthorized")
        return user

    def rbac_objects(self, plural: str) -> Iterable[dict]:
        return self.store.list(("rbac.authorization.k8s.io", plural))[0]

    def resolve(self, path: str, attrs: rbac.Attributes) -> ResourceRequest:
        rt = self.registry.lookup(attrs.api_group, attrs.api_version, attrs.resource)
        if rt is None:
            raise status.page_not_found()
        parts = [p for p in path.split("/") if p]
        if len(parts) > 3 and parts[2 if parts[0] == "api" else 3] == "watch":
            raise status.page_not_found()  # NB: the deprecated /watch/ path prefix is not served
        namespace = attrs.namespace
        if rt.key == ("", "namespaces"):
            namespace = ""
        elif not rt.namespaced and namespace:
            raise status.page_not_found()
        if attrs.subresource and attrs.subresource not in rt.subresources + rt.connect_subresources:
            raise status.page_not_found()
        # NB: for list/watch the resolver takes the name from a metadata.name field selector;
        # the selector itself does the filtering here.
        name = "" if attrs.verb in ("list", "watch", "deletecollection") else attrs.name
        return ResourceRequest(rt, namespace, name, attrs.subresource, attrs.verb)

    # -- non-resource endpoints ------------------------------------------------------
    def on_version(self, request: Request) -> Response:
        return json_response(VERSION_INFO)

    def on_health(self, request: Request) -> Response:
        return Response("ok", content_type="text/plain; charset=utf-8")

    def on_core_discovery(self, request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return json_response(discovery.aggregated(self.registry, core=True), discovery.AGGREGATED_CT)
        return json_response(discovery.api_versions(self.server_address()))

    def on_groups_discovery(self, request: Request) -> Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return json_response(discovery.aggregated(self.registry, core=False), discovery.AGGREGATED_CT)
        return json_response(discovery.api_group_list(self.registry))

    def on_group(self, request: Request, group: str) -> Response:
        doc = discovery.api_group(self.registry, group)
        if doc is None:
            raise status.page_not_found()
        return json_response(doc)

    def on_resource_list(self, request: Request, version: str, group: str = "") -> Response:
        if not group and not request.path.startswith("/api/"):
            raise status.page_not_found()
        doc = discovery.api_resource_list(self.registry, group, version)
        if doc is None:
            raise status.page_not_found()
        return json_response(doc)

    def on_openapi_v2(self, request: Request) -> Response:
        # NB: no protobuf here; client-go asks for v2 in protobuf only, and a 404 makes kubectl do without.
        accept = request.headers.get("Accept", "") or "*/*"
        if not any(a.split(";")[0].strip() in ("application/json", "*/*", "application/*") for a in accept.split(",")):
            raise status.page_not_found()
        return json_response(openapi.swagger_v2(self.registry))

    def on_openapi_v3(self, request: Request) -> Response:
        # NB: kube-openapi's index handler sets no Content-Type; Go sniffs the JSON as text/plain.
        return json_response(openapi.index(self.registry), "text/plain; charset=utf-8")

    def on_openapi_v3_doc(self, request: Request, gv: str) -> Response:
        parts = gv.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 2:
            doc = openapi.group_version_doc(self.registry, "", parts[1])
        elif parts[0] == "apis" and len(parts) == 3:
            doc = openapi.group_version_doc(self.registry, parts[1], parts[2])
        else:
            doc = None
        if doc is None:
            raise status.page_not_found()
        return json_response(doc)

    # -- resources ---------------------------------------------------------------------
    def dispatch_resource(self, request: Request, asked: ResourceRequest, user: rbac.UserInfo, query: dict) -> Response:
        if asked.subresource and asked.subresource in asked.rt.connect_subresources:
            return self.connect(request, asked)
        if asked.verb not in asked.rt.verbs:
            raise status.method_not_supported(asked.rt.plural, asked.rt.group, asked.verb)
        if asked.rt.virtual:
            return self.review(request, asked, user)
        handler = {
            "get": self.do_get,
            "list": self.do_list,
            "watch": self.do_watch,
            "create": self.do_create,
            "update": self.do_update,
            "patch": self.do_patch,
            "delete": self.do_delete,
            "deletecollection": self.do_delete_collection,
        }.get(asked.verb)
        if handler is None:
            raise status.method_not_supported(asked.rt.plural, asked.rt.group, asked.verb)
        return handler(request, asked, query)

    def render(
        self, request: Request, asked: ResourceRequest, obj: dict, code: int = 200, *, opts: WriteOptions | None = None
    ) -> Response:
        out = present(asked.rt, obj)
        if wants_table(request):
            table = tables.build_table(
                asked.rt,
                [out],
                resource_version=out["metadata"].get("resourceVersion", ""),
                include_object=request.args.get("includeObject", "Metadata"),
            )
            return json_response(table, TABLE_CT, code)
        resp = json_response(out, JSON, code)
        for w in opts.warnings if opts else []:
            resp.headers.add("Warning", "299 - " + json.dumps(w))
        return resp

    def do_get(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        return self.render(request, asked, self.objects.get_or_404(asked.rt, asked.namespace, asked.name))

    def _matcher(self, asked: ResourceRequest, query: dict) -> Callable[[dict], bool]:
        labels = selectors.label_matcher(query.get("labelSelector"))
        fields = selectors.field_matcher(query.get("fieldSelector"), asked.rt.key)
        return lambda o: labels(o) and fields(o)

    def do_list(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        match = self._matcher(asked, query)
        items, rv = self.store.list(asked.rt.key, asked.namespace if asked.rt.namespaced and asked.namespace else None)
        items = [present(asked.rt, o) for o in items if match(o)]
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        offset = 0
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"]))
                offset, rv = int(token["o"]), int(token["rv"])
                meta["resourceVersion"] = str(rv)
            except (ValueError, KeyError, TypeError):
                raise status.bad_request("continue key is not valid: illegal base64 data") from None
        limit = int(query.get("limit") or 0)
        if offset or limit:
            page = items[offset : offset + limit] if limit else items[offset:]
            if limit and offset + limit < len(items):
                meta["continue"] = base64.urlsafe_b64encode(
                    json.dumps({"o": offset + limit, "rv": rv}).encode()
                ).decode()
                meta["remainingItemCount"] = len(items) - offset - limit
            items = page
        if wants_table(request):
            table = tables.build_table(
                asked.rt,
                items,
                resource_version=meta["resourceVersion"],
                include_object=query.get("includeObject", "Metadata"),
            )
            table["metadata"] = meta
            return json_response(table, TABLE_CT)
        return json_response(
            {"kind": asked.rt.list_kind, "apiVersion": asked.rt.api_version, "metadata": meta, "items": items}
        )

    def do_watch(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        match = self._matcher(asked, query)
        stream = watching.WatchStream(
            store=self.store,
            rt=asked.rt,
            namespace=asked.namespace if asked.rt.namespaced and asked.namespace else None,
            match=match,
            query=query,
            as_table=wants_table(request),
            sock=request.environ.get("werkzeug.socket"),
            bookmark_interval=self.bookmark_interval,
            stopping=self.stopping,
        )
        ctype = TABLE_CT if wants_table(request) else JSON
        resp = Response(iter(stream), status=200, content_type=ctype, direct_passthrough=True)
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    def do_create(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        opts = WriteOptions(query)
        body = read_body(request)
        if asked.name:
            raise status.method_not_supported(asked.rt.plural, asked.rt.group, "create")
        obj = self.objects.create(asked.rt, asked.namespace, body, opts)
        return self.render(request, asked, obj, 201, opts=opts)

    def do_update(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        opts = WriteOptions(query)
        obj = self.objects.update(asked.rt, asked.namespace, asked.name, asked.subresource, read_body(request), opts)
        return self.render(request, asked, obj, opts=opts)

    def do_patch(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        opts = WriteOptions(query)
        ctype = (request.mimetype or "").lower()
        raw = request.get_data()
        if ctype == patching.APPLY:
            return self._apply_patch(request, asked, query, raw, opts)
        try:
            body = json.loads(raw or b"null")
        except ValueError as e:
            raise status.bad_request(f"error decoding patch: {e}") from None
        if ctype == patching.MERGE_PATCH:
            if not isinstance(body, dict):
                raise status.bad_request("Invalid JSON Patch")
            fn = lambda cur: patching.merge_patch(cur, body)  # noqa: E731
        elif ctype == patching.JSON_PATCH:
            fn = lambda cur: patching.json_patch(cur, body)  # noqa: E731
        elif ctype == patching.STRATEGIC and asked.rt.is_builtin:
            if not isinstance(body, dict):
                raise status.bad_request("Invalid JSON Patch")
            fn = lambda cur: patching.strategic_merge_patch(cur, body)  # noqa: E731
        else:
            accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
            if asked.rt.is_builtin:
                accepted += ", application/strategic-merge-patch+json"
            raise status.ApiError(
                415,
                f"the body of the request was in an unknown format - accepted media types include: {accepted}",
                reason="UnsupportedMediaType",
            )
        obj = self.objects.patch_with(asked.rt, asked.namespace, asked.name, asked.subresource, opts, fn)
        return self.render(request, asked, obj, opts=opts)

    def _apply_patch(
        self, request: Request, asked: ResourceRequest, query: dict, raw: bytes, opts: WriteOptions
    ) -> Response:
        """Server-side apply, approximated as create-or-merge (no field ownership, no removals)."""
        if not opts.field_manager:
            raise status.bad_request("PATCH requests with apply-patch+yaml content type must specify fieldManager")
        try:
            body = yaml.safe_load(raw or b"")
        except yaml.YAMLError as e:
            raise status.bad_request(f"error decoding YAML: {e}") from None
        if not isinstance(body, dict):
            raise status.bad_request("apply patch must be an object")
        if not body.get("apiVersion") or not body.get("kind"):
            raise status.bad_request("apiVersion and kind must be set in an apply patch")
        body.setdefault("metadata", {}).setdefault("name", asked.name)
        with self.store.lock:
            if self.store.get(asked.rt.key, asked.namespace, asked.name) is None and not asked.subresource:
                body["metadata"].pop("resourceVersion", None)
                obj = self.objects.create(asked.rt, asked.namespace, body, opts)
                return self.render(request, asked, obj, 201, opts=opts)
            obj = self.objects.patch_with(
                asked.rt,
                asked.namespace,
                asked.name,
                asked.subresource,
                opts,
                lambda cur: patching.merge_patch(cur, body),
            )
        return self.render(request, asked, obj, opts=opts)

    def do_delete(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        opts = WriteOptions(query)
        raw = request.get_data()
        options = {}
        if raw.strip():
            try:
                options = json.loads(raw)
            except ValueError:
                raise status.bad_request("invalid DeleteOptions body") from None
        obj = self.objects.delete(asked.rt, asked.namespace, asked.name, options, opts)
        if obj.get("kind") == "Status":
            return json_response(obj)
        return self.render(request, asked, obj)

    def do_delete_collection(self, request: Request, asked: ResourceRequest, query: dict) -> Response:
        opts = WriteOptions(query)
        match = self._matcher(asked, query)
        items, _ = self.store.list(asked.rt.key, asked.namespace if asked.rt.namespaced and asked.namespace else None)
        deleted = []
        for o in items:
            if match(o):
                try:
                    out = self.objects.delete(
                        asked.rt, o["metadata"].get("namespace", ""), o["metadata"]["name"], {}, opts
                    )
                    deleted.append(present(asked.rt, o) if out.get("kind") == "Status" else out)
                except status.ApiError as e:
                    if e.code != 404:
                        raise
        return json_response(
            {
                "kind": asked.rt.list_kind,
                "apiVersion": asked.rt.api_version,
                "metadata": {"resourceVersion": str(self.store.rv)},
                "items": deleted,
            }
        )

    def connect(self, request: Request, asked: ResourceRequest) -> Response:
        """A connect subresource: only ``services/proxy`` (see :mod:`sandbox.apiserver.proxy`)."""
        if asked.rt.key != ("", "services") or asked.subresource != "proxy" or not asked.namespace or not asked.name:
            raise status.page_not_found()
        return proxy.serve(
            request, lambda ns, name: self.store.get(asked.rt.key, ns, name), asked.namespace, asked.name
        )

    # -- reviews --------------------------------------------------------------------------
    def review(self, request: Request, asked: ResourceRequest, user: rbac.UserInfo) -> Response:
        body = read_body(request)
        if not isinstance(body, dict):
            raise status.bad_request("review body must be an object")
        out: dict[str, Any] = {
            "kind": asked.rt.kind,
            "apiVersion": asked.rt.api_version,
            "metadata": {"creationTimestamp": None},
            "spec": body.get("spec") or {},
        }
        if asked.rt.plural == "selfsubjectreviews":
            out.pop("spec")
            info: dict[str, Any] = {"username": user.username, "groups": list(user.groups)}
            out["status"] = {"userInfo": info}
        elif asked.rt.plural == "selfsubjectaccessreviews":
            spec = out["spec"]
            ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
            if ra:
                attrs = rbac.Attributes(
                    verb=ra.get("verb", ""),
                    resource_request=True,
                    api_group=ra.get("group", ""),
                    api_version=ra.get("version", ""),
                    resource=ra.get("resource", ""),
                    subresource=ra.get("subresource", ""),
                    namespace=ra.get("namespace", ""),
                    name=ra.get("name", ""),
                )
            elif nra:
                attrs = rbac.Attributes(verb=nra.get("verb", ""), resource_request=False, path=nra.get("path", ""))
            else:
                raise status.invalid(
                    asked.rt.kind,
                    asked.rt.group,
                    "",
                    [
                        {
                            "reason": "FieldValueRequired",
                            "field": "spec.resourceAttributes",
                            "message": "Required value: exactly one of nonResourceAttributes or resourceAttributes "
                            "must be specified",
                        }
                    ],
                )
            allowed, reason = rbac.authorize(user, attrs, self.rbac_objects)
            out["status"] = {"allowed": allowed}
            if reason:
                out["status"]["reason"] = reason
        else:
            ns = (out["spec"] or {}).get("namespace", "")
            out["status"] = rbac.rules_review(user, ns, self.rbac_objects)
        return json_response(out, JSON, 201)


def wants_table(request: Request) -> bool:
    accept = request.headers.get("Accept", "")
    first = accept.split(",")[0]
    return "as=Table" in first and "g=meta.k8s.io" in first


def json_response(body: Any, content_type: str = JSON, code: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status=code, content_type=content_type)


def read_body(request: Request) -> Any:
    """JSON (also with no Content-Type, as the Python client sends), YAML, or kube protobuf."""
    raw = request.get_data()
    ctype = (request.mimetype or "").lower()
    if ctype == "application/vnd.kubernetes.protobuf":
        return protobuf.decode(raw)
    if ctype in ("application/yaml", "application/apply-patch+yaml"):
        try:
            return yaml.safe_load(raw)
        except yaml.YAMLError as e:
            raise status.bad_request(f"error decoding YAML: {e}") from None
    if ctype not in ("", "application/json", "*/*"):
        raise status.ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types "
            "include: application/json, application/yaml, "
            "application/vnd.kubernetes.protobuf",
            reason="UnsupportedMediaType",
        )
    try:
        return json.loads(raw or b"null")
    except ValueError as e:
        raise status.bad_request(f"couldn't get version/kind; json parse error: {e}") from None
