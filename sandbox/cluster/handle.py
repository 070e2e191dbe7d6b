"""The test side of a running real cluster: what tests ask of the emulator, done the real way.

:class:`ClusterHandle` reads the description ``python -m sandbox.cluster`` writes beside its
kubeconfig (``PATH.json``) and offers the emulator's test interface where the real programs can
do the same thing:

* ``add_token(token, user, groups)`` / ``write_kubeconfig(path, token=...)``: a token signed with
  the run's secret, which the API server's token webhook accepts as that identity;
* ``apply(obj)``: create, or replace (PUT with the stored resourceVersion), as the admin;
* ``requests`` / ``clear_requests()``: the API server's audit log, read as request records with
  the emulator's fields (user, verb, resource, subresource, namespace, name, status, time);
* ``faults.down`` / ``faults.hang``: kube-apiserver killed and started again (connections
  refused), or stopped with SIGSTOP (connections accepted, nothing answered) and resumed;
* ``faults.act(component, action)``: kill (SIGKILL), stop, start, pause or resume any component
  (etcd, kube-apiserver, ...), refused like ``down``/``hang`` unless the run allows disruption;
* ``put_stored(obj, plural)``: a custom resource written straight into etcd, past validation;
* ``restart(component)``, ``stop``/``start`` of any component (etcd, flagger, ...).
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from sandbox.apiserver.app import RequestRecord
from sandbox.cluster import pki

# Test users with kubeconfigs written beside the admin's: name -> (username, groups).
TEST_USERS = {
    "viewer": ("e2e-viewer", ("e2e:viewers",)),
    "approver": ("e2e-approver", ("e2e:approvers",)),
}

_METHODS = {
    "get": "GET",
    "list": "GET",
    "watch": "GET",
    "create": "POST",
    "update": "PUT",
    "patch": "PATCH",
    "delete": "DELETE",
    "deletecollection": "DELETE",
}


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def parse_audit_line(line: str) -> RequestRecord | None:
    """One audit event as the emulator's request record (only completed requests, and watches once started)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    if event.get("kind") != "Event":
        return None
    verb = event.get("verb", "")
    stage = event.get("stage")
    if stage != "ResponseComplete" and not (stage == "ResponseStarted" and verb == "watch"):
        return None
    uri = urllib.parse.urlsplit(event.get("requestURI", ""))
    ref = event.get("objectRef") or {}
    received = _epoch(event.get("requestReceivedTimestamp", ""))
    done = _epoch(event.get("stageTimestamp", ""))
    return RequestRecord(
        method=_METHODS.get(verb, verb.upper()),
        path=uri.path,
        query={k: v[-1] for k, v in urllib.parse.parse_qs(uri.query).items()},
        user=(event.get("user") or {}).get("username", ""),
        verb=verb,
        resource=ref.get("resource", ""),
        subresource=ref.get("subresource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        status=int((event.get("responseStatus") or {}).get("code") or 0),
        time=received,
        duration=max(0.0, done - received),
    )


DISRUPTIVE_ENV = "CANARYGATE_E2E_DISRUPTIVE"


class _Faults:
    """The emulator's ``faults`` for what a real API server can do: go down, or hang.

    The real cluster is shared by every test of a run, so these refuse unless the run allows
    disruption (``CANARYGATE_E2E_DISRUPTIVE=1``: the real tier runs tests marked ``disruptive``
    alone, after the others).
    """

    def __init__(self, handle: ClusterHandle):
        self._handle = handle
        self._down = False
        self._hang = False

    @staticmethod
    def _allowed() -> None:
        if os.environ.get(DISRUPTIVE_ENV) != "1":
            raise RuntimeError(
                "this test stops or hangs the shared real API server: mark it "
                "@pytest.mark.disruptive (the real tier runs those alone)"
            )

    @property
    def down(self) -> bool:
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        self._allowed()
        self._handle.act("kube-apiserver", "stop" if value else "start")
        self._down = bool(value)

    @property
    def hang(self) -> bool:
        return self._hang

    @hang.setter
    def hang(self, value: bool) -> None:
        self._allowed()
        self._handle.act("kube-apiserver", "pause" if value else "resume")
        self._hang = bool(value)

    def act(self, component: str, action: str) -> None:
        """``kill``/``stop``/``start``/``pause``/``resume`` one component (etcd, kube-apiserver, ...);
        ``start`` returns once it serves again."""
        self._allowed()
        self._handle.act(component, action)


class ClusterHandle:
    """A running ``python -m sandbox.cluster``, found through its kubeconfig's ``.json``."""

    real = True

    def __init__(self, kubeconfig: str | os.PathLike):
        self.kubeconfig = str(kubeconfig)
        self.info = json.loads(Path(self.kubeconfig + ".json").read_text())
        self.url = self.info["server"]
        self.host, _, port = self.url.removeprefix("https://").rpartition(":")
        self.port = int(port)
        self.admin_token = yaml.safe_load(Path(self.kubeconfig).read_text())["users"][0]["user"]["token"]
        self.faults = _Faults(self)
        self._tokens: dict[str, str] = {}
        self._audit_from = 0
        self._client = None

    @classmethod
    def find(cls, kubeconfig: str | None) -> ClusterHandle | None:
        """The handle of the cluster behind ``kubeconfig``, or None if that is not ours."""
        if kubeconfig and Path(kubeconfig + ".json").is_file():
            return cls(kubeconfig)
        return None

    # -- components ------------------------------------------------------------------------
    def component(self, name: str) -> dict[str, Any]:
        return next(c for c in self.info["components"] if c["name"] == name)

    def version(self, name: str) -> str:
        return self.component(name)["version"]

    def log(self, name: str) -> str:
        return Path(self.component(name)["log"]).read_text(errors="replace")

    def act(self, name: str, action: str, timeout: float = 150.0) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.info['control']}/components/{name}/{action}", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            described = json.loads(response.read())
        self.info = json.loads(Path(self.kubeconfig + ".json").read_text())
        return described

    def restart(self, name: str) -> dict[str, Any]:
        return self.act(name, "restart")

    # -- identities ------------------------------------------------------------------------
    @property
    def ca_pem(self) -> bytes:
        return Path(self.info["ca"]).read_bytes()

    def add_token(self, token: str, username: str, groups: Iterable[str] = ()) -> None:
        """Make ``token`` (any name the test picks) stand for ``username`` in ``groups``."""
        self._tokens[token] = pki.sign_token(self.info["token_secret"], username, tuple(groups))

    def token(self, username: str, groups: Iterable[str] = ()) -> str:
        return pki.sign_token(self.info["token_secret"], username, tuple(groups))

    def write_kubeconfig(
        self, path: str | os.PathLike, *, token: str | None = None, namespace: str = "default", context: str = "e2e"
    ) -> str:
        """A kubeconfig for ``token`` (the admin's when None) that trusts the API server's CA."""
        if token is None:
            config = yaml.safe_load(Path(self.kubeconfig).read_text())
            config["contexts"][0]["context"]["namespace"] = namespace
        else:
            real = self._tokens.get(token, token)
            config = {
                "apiVersion": "v1",
                "kind": "Config",
                "preferences": {},
                "current-context": context,
                "clusters": [
                    {
                        "name": context,
                        "cluster": {
                            "server": self.url,
                            "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
                        },
                    }
                ],
                "users": [{"name": f"{context}-user", "user": {"token": real}}],
                "contexts": [
                    {
                        "name": context,
                        "context": {"cluster": context, "user": f"{context}-user", "namespace": namespace},
                    }
                ],
            }
        Path(path).write_text(yaml.safe_dump(config, sort_keys=False))
        os.chmod(path, 0o600)
        return str(path)

    # -- objects ---------------------------------------------------------------------------
    def _dynamic(self):
        import kubernetes
        from kubernetes.dynamic import DynamicClient

        if self._client is None:
            self._client = DynamicClient(kubernetes.config.new_client_from_config(config_file=self.kubeconfig))
        return self._client

    def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create ``obj``, or replace the stored one (its status kept, as PUT keeps it). Safe to race:
        test workers apply the same cluster-scoped objects (the shipped ClusterRole) at once."""
        from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

        client = self._dynamic()
        for attempt in range(2):
            try:
                resource = client.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
                break
            except ResourceNotFoundError:
                if attempt:
                    raise
                client.resources.invalidate_cache()
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if resource.namespaced else None
        for _ in range(5):
            try:
                current = resource.get(name=meta["name"], namespace=namespace)
            except NotFoundError:
                try:
                    return resource.create(body=obj, namespace=namespace).to_dict()
                except Exception as e:  # created meanwhile (another test worker): replace it
                    if getattr(e, "status", None) != 409:
                        raise
                    continue
            body = json.loads(json.dumps(obj))
            body.setdefault("metadata", {})["resourceVersion"] = current.metadata.resourceVersion
            try:
                return resource.replace(body=body, namespace=namespace).to_dict()
            except Exception as e:  # a conflict with a concurrent writer: read again
                if getattr(e, "status", None) != 409:
                    raise
                time.sleep(0.1)
        raise RuntimeError(f"could not replace {obj['kind']} {meta['name']}: conflicts")

    def put_stored(self, obj: dict[str, Any], plural: str) -> None:
        """Write ``obj`` straight into etcd where kube-apiserver keeps a custom resource (JSON under
        ``/registry/GROUP/PLURAL/NAMESPACE/NAME``), past admission and schema validation: what an
        older CRD schema, or an object written before a policy, leaves stored. Other objects are
        untouched (not disruptive). The API server's watch cache sees it as any change."""
        import uuid

        body = json.loads(json.dumps(obj))
        meta = body.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        meta.setdefault("generation", 1)
        meta.pop("resourceVersion", None)
        group = body["apiVersion"].partition("/")[0]
        key = f"/registry/{group}/{plural}/{meta['namespace']}/{meta['name']}"
        put = {
            "key": base64.b64encode(key.encode()).decode(),
            "value": base64.b64encode(json.dumps(body).encode()).decode(),
        }
        request = urllib.request.Request(
            self.component("etcd")["url"] + "/v3/kv/put",
            data=json.dumps(put).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    # -- the request log -------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        path = Path(self.info["audit_log"])
        records: list[RequestRecord] = []
        with open(path, encoding="utf-8", errors="replace") as f:
            f.seek(self._audit_from)
            for line in f:
                record = parse_audit_line(line)
                if record is not None:
                    records.append(record)
        return records

    def clear_requests(self) -> None:
        self._audit_from = Path(self.info["audit_log"]).stat().st_size

    def close(self) -> None:
        if self._client is not None:
            self._client.client.close()
            self._client = None
