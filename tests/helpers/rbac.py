"""For tests that grant with RBAC and then act as the grantee.

kube-apiserver's RBAC authorizer reads Roles and bindings from its own informers, so a grant reaches
it a moment after the write that made it returns (under load, seconds: CI once saw a patched Role
still refused right after the patch); the emulator applies it at once. A test waits for the grant
here, then asserts on what the grantee sees.
"""

from __future__ import annotations

import time

import kubernetes

SAFETY_NET = 60.0  # seconds: how long a grant may take to reach the authorizer; never an assertion on speed


def wait_allowed(
    client: kubernetes.client.ApiClient,
    *,
    verb: str,
    resource: str,
    group: str = "",
    subresource: str = "",
    namespace: str = "",
) -> None:
    """Return once the authorizer allows ``client``'s user ``verb`` on ``resource`` in ``namespace``
    (every namespace when empty).

    Asks with SelfSubjectAccessReviews, which the same authorizer answers, so the grantee's next
    request sees the grant; fails the test if it is still refused after ``SAFETY_NET`` seconds.
    """
    authz = kubernetes.client.AuthorizationV1Api(client)
    spec = {
        "resourceAttributes": {
            "namespace": namespace,
            "verb": verb,
            "group": group,
            "resource": resource,
            "subresource": subresource,
        }
    }
    deadline = time.monotonic() + SAFETY_NET
    while not authz.create_self_subject_access_review({"spec": spec}).status.allowed:
        assert time.monotonic() < deadline, f"{verb} {resource} {subresource} in {namespace!r}: never allowed"
        time.sleep(0.2)
