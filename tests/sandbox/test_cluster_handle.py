"""The real tier's handle on a cluster (sandbox/cluster/handle.py), against an API server."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml

from sandbox.cluster.handle import ClusterHandle

pytestmark = pytest.mark.e2e


def test_one_object_applied_by_several_test_workers_at_once_lands_for_each(kubeconfig, tmp_path):
    # The e2e workers apply the shipped ClusterRole at once: a create that loses the race to another
    # worker's (409 AlreadyExists after the 404) replaces what that one created.
    config = tmp_path / "config"
    config.write_text(Path(kubeconfig).read_text())
    server = yaml.safe_load(config.read_text())["clusters"][0]["cluster"]["server"]
    Path(f"{config}.json").write_text(json.dumps({"server": server}))
    name = f"t-applied-at-once-{uuid.uuid4().hex[:6]}"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
    }
    handles = [ClusterHandle(config) for _ in range(8)]
    for handle in handles:
        handle._dynamic().resources.get(api_version="rbac.authorization.k8s.io/v1", kind="ClusterRole")
    start, errors = threading.Barrier(len(handles)), []

    def apply(handle):
        start.wait()
        try:
            handle.apply(role)
        except Exception as e:  # noqa: BLE001 - whatever a worker hit, the test reports it
            errors.append(e)

    threads = [threading.Thread(target=apply, args=(h,)) for h in handles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rbac = kubernetes.client.RbacAuthorizationV1Api(kubernetes.config.new_client_from_config(config_file=kubeconfig))
    try:
        assert errors == []
        assert rbac.read_cluster_role(name).rules[0].resources == ["configmaps"]
    finally:
        rbac.delete_cluster_role(name)
