"""A Kubernetes API emulator for tests and the demo: ``with ApiServer() as srv: srv.url``.

It serves, over HTTPS on 127.0.0.1, the subset of kube-apiserver that this
project, the official Python client and kubectl 1.37 use: discovery, openapi v3,
CRUD/patch/watch with real resourceVersion semantics, CRDs with schema validation,
bearer-token authentication and RBAC, and fault injection.  It shares no code with
the product.
"""

from sandbox.apiserver.app import RequestRecord
from sandbox.apiserver.server import ApiServer

__all__ = ["ApiServer", "RequestRecord"]
