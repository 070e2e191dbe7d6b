"""A Kubernetes API emulator for tests and the demo: ``with ApiServer() as srv: srv.url``.

It serves, over HTTPS on 127.0.0.1, the subset of kube-apiserver that this
project, the official Python client and kubectl 1.37 use: discovery, openapi v3,
CRUD/patch/watch with real resourceVersion semantics, CRDs with schema validation,
bearer-token authentication and RBAC, and fault injection.  It shares no code with
the product.

Known edges (what it does not do; each contract test runs against kube-apiserver 1.37 too):

* Server-side apply is a create-or-merge: no field ownership, no managedFields, no
  removal of fields a manager dropped, no apply conflicts.
* Strategic merge patch is approximated from a table of merge keys (see
  ``patching``), not from Go struct tags.
* One controller only, namespace deletion (``controllers``): a deleted namespace goes
  Terminating, its contents are deleted (finalizers hold them), then it goes, at once
  rather than in seconds and without the NamespaceDeletion* conditions.  Otherwise
  Deployments never become ready, pods never run, CRD deletion removes the kind and
  its objects at once (no Terminating CRD), no garbage collection by ownerReferences.
* One storage version per CRD, no conversion webhooks; CEL validation rules,
  ``x-kubernetes-validations`` and ``selectableFields`` are ignored.
* Protobuf request bodies are decoded only for the kinds kubectl's typed commands
  send (Namespace, reviews, ConfigMap/Secret metadata, a Deployment's basics);
  answers are always JSON, even when protobuf is preferred (kube answers protobuf);
  ``/openapi/v2`` asked for in protobuf only is 404 (kube serves it).  No CBOR.
* Discovery lists only what it serves (no pods/log, deployments/scale, namespaces/
  finalize, ...) and no ``storageVersionHash``.
* Anonymous requests are ``system:anonymous``; no impersonation, no
  service-account token minting (add tokens with ``add_token``).
* Lists ignore ``resourceVersion`` and ``resourceVersionMatch`` (always the latest);
  ``limit``/``continue`` paging is by offset.
* The history kept for watches is a count of events, not a time window; use
  ``compact()`` to make every older resourceVersion 410 Gone (on a real cluster a
  resourceVersion as old as "1" is).
* The service proxy (``services/NAME:PORT/proxy/PATH``) has no pods or EndpointSlices
  to send to: a test declares where a Service's traffic goes with the sandbox-only
  annotation ``sandbox.apiserver/endpoint: http://127.0.0.1:PORT`` (or
  ``sandbox.apiserver/endpoint.PORTNAME`` for one named port); without it the
  proxy answers 503 "no endpoints available", as kube-apiserver does for a Service
  without endpoints.  Loopback only (kube-apiserver refuses loopback, so tests that
  reach a backend are emulator-only), answers buffered, no upgrades, no HTML link
  rewriting (see ``proxy``).
"""

from sandbox.apiserver.app import RequestRecord
from sandbox.apiserver.server import ApiServer

__all__ = ["ApiServer", "RequestRecord"]
