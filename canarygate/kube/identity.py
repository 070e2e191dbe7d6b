"""Who the caller is, as the API server sees it (SelfSubjectReview), and what they may do."""

from __future__ import annotations

from canarygate import errors
from canarygate.kube.client import Kube
from canarygate.kube.resources import SELF_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_REVIEWS


def whoami(kube: Kube, *, fallback: str = "") -> str:
    """The username from a SelfSubjectReview, or ``fallback`` when the server will not say."""
    body = {"apiVersion": SELF_SUBJECT_REVIEWS.api_version, "kind": SELF_SUBJECT_REVIEWS.kind}
    try:
        raw = kube.request("POST", SELF_SUBJECT_REVIEWS.path(), body=body, resource=SELF_SUBJECT_REVIEWS)
    except (errors.NotFound, errors.Forbidden, errors.Invalid):
        return fallback
    return ((raw.get("status") or {}).get("userInfo") or {}).get("username") or fallback


def can_i(kube: Kube, *, verb: str, group: str, resource: str, namespace: str = "", name: str = "") -> bool:
    """True when the caller may ``verb`` the resource (a SelfSubjectAccessReview)."""
    body = {
        "apiVersion": SELF_SUBJECT_ACCESS_REVIEWS.api_version,
        "kind": SELF_SUBJECT_ACCESS_REVIEWS.kind,
        "spec": {
            "resourceAttributes": {
                "verb": verb,
                "group": group,
                "resource": resource,
                "namespace": namespace,
                "name": name,
            }
        },
    }
    raw = kube.request("POST", SELF_SUBJECT_ACCESS_REVIEWS.path(), body=body, resource=SELF_SUBJECT_ACCESS_REVIEWS)
    return bool((raw.get("status") or {}).get("allowed"))
