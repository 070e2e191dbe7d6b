"""The API connection of a long-running service (the gate sidecar): one kubeconfig context, or the
pod's service account.

Simpler than :func:`canarygate.kube.connect.connect`, which mirrors kubectl's flags: a service needs
no cluster/user overrides, and its credentials must refresh on their own (the official loaders
re-read a projected service-account token, and exec plugins, when they expire).
"""

from __future__ import annotations

import os

from canarygate import errors
from canarygate.kube.client import Kube


def connect_service(
    *, kubeconfig: str | None = None, context: str | None = None, in_cluster: bool = False, timeout: float = 10.0
) -> tuple[Kube, str]:
    """A :class:`Kube` and the API server's URL; ConfigError says what is wrong with the config."""
    from kubernetes import client, config  # deferred: imported by the entry point only
    from kubernetes.config.config_exception import ConfigException

    configuration = client.Configuration()
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            path = kubeconfig or os.environ.get("KUBECONFIG", "~/.kube/config").split(os.pathsep)[0]
            config.load_kube_config(
                config_file=os.path.expanduser(path), context=context, client_configuration=configuration,
                persist_config=False,
            )
    except ConfigException as e:
        raise errors.ConfigError(f"cannot use the {'in-cluster config' if in_cluster else 'kubeconfig'}: {e}") from e
    except OSError as e:
        raise errors.ConfigError(f"cannot read the kubeconfig: {e}") from e
    return Kube(client.ApiClient(configuration), timeout=timeout), configuration.host
