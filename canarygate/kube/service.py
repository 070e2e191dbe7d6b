"""The API connection of a long-running service (the gate sidecar): a thin wrapper over
:func:`canarygate.kube.connect.connect` with the official client, whose credentials refresh on
their own (a projected service-account token, exec plugins) when they expire.
"""

from __future__ import annotations

from canarygate.kube.client import Kube
from canarygate.kube.connect import OFFICIAL, Settings, connect


def connect_service(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = False, timeout: float = 10.0
) -> tuple[Kube, str]:
    """A :class:`Kube` and the API server's URL; ConfigError says what is wrong with the config.

    ``kubeconfig`` None: ``KUBECONFIG`` (merged as kubectl does) or ~/.kube/config.
    """
    connection = connect(
        Settings(
            kubeconfig=kubeconfig, context=context, in_cluster=in_cluster, request_timeout=timeout, transport=OFFICIAL
        )
    )
    return connection.kube, connection.server
