"""For tests that grant with RBAC and then act as the grantee.

kube-apiserver's RBAC authorizer reads Roles and bindings from its own informers, so a grant reaches
it a moment after the write that made it returns (under load, seconds: CI once saw a patched Role
still refused right after the patch); the emulator applies it at once. A test waits for the grant
here, then asserts on what the grantee sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import kubernetes

#: The sidecar's service account in the shipped manifests (deploy/sidecar), as kube-apiserver names it.
SIDECAR_USER = "system:serviceaccount:canary-gate:canary-gate-sidecar"
SIDECAR_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:canary-gate")
SAFETY_NET = 60.0  # seconds: how long a grant may take to reach the authorizer; never an assertion on speed


def wait_granted(allowed: Callable[[], bool], what: str) -> None:
    """Return once ``allowed()`` (asked of the authorizer); fails the test with ``what`` after
    ``SAFETY_NET`` seconds."""
    deadline = time.monotonic() + SAFETY_NET
    while not allowed():
        assert time.monotonic() < deadline, f"never allowed: {what}"
        time.sleep(0.2)


def wait_allowed(
    client: kubernetes.client.ApiClient | str,
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
    ``client`` may be the grantee's kubeconfig path instead.
    """
    if isinstance(client, str):
        with kubernetes.config.new_client_from_config(config_file=client) as own:
            return wait_allowed(
                own, verb=verb, resource=resource, group=group, subresource=subresource, namespace=namespace
            )
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
    wait_granted(
        lambda: authz.create_self_subject_access_review({"spec": spec}).status.allowed,
        f"{verb} {resource} {subresource} in {namespace!r}",
    )


def subject_allowed(
    client: kubernetes.client.ApiClient,
    user: str,
    groups: tuple[str, ...] | list[str] = (),
    **attributes: str,
) -> bool:
    """Whether ``user`` (with ``groups``) may, asked by ``client``'s admin with a SubjectAccessReview
    so the user's own audit trail stays its own. ``attributes``: ``verb``, ``resource``, ``group``,
    ``namespace``... (``resourceAttributes``). Only kube-apiserver serves SubjectAccessReviews."""
    review = kubernetes.client.AuthorizationV1Api(client).create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": [*groups, "system:authenticated"],
                "resourceAttributes": attributes,
            }
        }
    )
    return bool(review.status.allowed)


def wait_subject_allowed(
    client: kubernetes.client.ApiClient,
    user: str,
    groups: tuple[str, ...] | list[str] = (),
    **attributes: str,
) -> None:
    """Return once ``subject_allowed``; fails the test after ``SAFETY_NET`` seconds."""
    wait_granted(lambda: subject_allowed(client, user, groups, **attributes), f"{user} {attributes}")
