"""ApiServer: the emulator on 127.0.0.1 over HTTPS, in a background thread.

HTTPS because kubectl sends no bearer token over plain http; the throwaway CA
(``trustme``) goes into the kubeconfigs this writes as certificate-authority-data.
The server (:mod:`sandbox.apiserver.http11`) gives each connection its own thread
(so open watches never starve other requests) and speaks HTTP/1.1 with keep-alive
and chunked streaming, as kube-apiserver does: clients reuse one TLS connection
instead of paying a handshake per request.
"""

from __future__ import annotations

import base64
import os
import secrets
import ssl
import threading
from collections.abc import Iterable

import trustme
import yaml

from sandbox.apiserver import status
from sandbox.apiserver.app import ApiApp, RequestRecord
from sandbox.apiserver.controllers import NamespaceController
from sandbox.apiserver.faults import Faults
from sandbox.apiserver.http11 import ThreadedServer
from sandbox.apiserver.objects import Objects
from sandbox.apiserver.rbac import UserInfo
from sandbox.apiserver.resources import Registry
from sandbox.apiserver.store import Store

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class ApiServer:
    """The Kubernetes API emulator.  Use as a context manager, or call start()/stop().

    ``port=0`` picks a free port (kept across ``faults.down`` toggles).
    ``watch_history`` is how many write events watches can resume from (older
    resourceVersions get 410 Gone); ``bookmark_interval`` how often watches with
    ``allowWatchBookmarks`` get a BOOKMARK; ``idle_timeout`` how long a kept-alive
    connection may wait for its next request before the server closes it.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        watch_history: int = 10_000,
        bookmark_interval: float = 60.0,
        admin_token: str | None = None,
        idle_timeout: float = 90.0,
    ):
        self.host = host
        self.port = port
        self.idle_timeout = idle_timeout
        self.store = Store(history_limit=watch_history)
        self.registry = Registry()
        self.objects = Objects(self.store, self.registry)
        self.namespace_controller = NamespaceController(self.store, self.objects)
        self.admin_token = admin_token or "admin-" + secrets.token_hex(16)
        self.tokens: dict[str, UserInfo] = {}
        self.add_token(self.admin_token, "admin", ("system:masters",))
        self.faults = Faults(on_down=self._set_down, on_cut=self.store.cut_watches)
        self._stopping = False
        self.app = ApiApp(
            store=self.store,
            registry=self.registry,
            faults=self.faults,
            tokens=self.tokens,
            server_address=lambda: f"{self.host}:{self.port}",
            bookmark_interval=bookmark_interval,
            stopping=lambda: self._stopping,
        )
        self.ca = trustme.CA()
        self._cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self._server: ThreadedServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        for ns in INITIAL_NAMESPACES:
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- lifecycle -----------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def start(self) -> ApiServer:
        with self._lock:
            if self._server is None:
                self._stopping = False
                self.store.closed = False
                self._listen()
                self.namespace_controller.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self.namespace_controller.stop()
            self.store.close()
            self._close_listener(drop_connections=True)

    def __enter__(self) -> ApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._cert.configure_cert(ctx)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _listen(self) -> None:
        server = ThreadedServer(
            (self.host, self.port),
            self.app,
            ssl_context=self._ssl_context(),
            idle_timeout=self.idle_timeout,
            is_down=lambda: self.faults.down,
            hold=self.faults.hold,
        )
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sandbox-apiserver-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def _close_listener(self, *, drop_connections: bool) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if drop_connections:
            server.drop_connections()
        if thread is not None:
            thread.join(timeout=5)

    def _set_down(self, down: bool) -> None:
        with self._lock:
            if down:
                self.store.cut_watches()
                self._close_listener(drop_connections=True)
            elif not self._stopping:
                self._listen()

    # -- identities and kubeconfigs ------------------------------------------------------
    def add_token(self, token: str, username: str, groups: Iterable[str] = ()) -> None:
        """Accept ``token`` as ``username`` in ``groups`` (plus system:authenticated, as kube adds it)."""
        groups = tuple(groups)
        if "system:authenticated" not in groups:
            groups += ("system:authenticated",)
        self.tokens[token] = UserInfo(username, groups)

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def write_kubeconfig(
        self, path: str | os.PathLike, *, token: str | None = None, namespace: str = "default", context: str = "sandbox"
    ) -> str:
        """A kubeconfig for ``token`` (the admin's when None) that trusts this server's CA."""
        token = token or self.admin_token
        user = self.tokens[token].username if token in self.tokens else "sandbox-user"
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
            "users": [{"name": f"{context}-{user}", "user": {"token": token}}],
            "contexts": [
                {"name": context, "context": {"cluster": context, "user": f"{context}-{user}", "namespace": namespace}}
            ],
        }
        path = os.fspath(path)
        with open(path, "w") as f:
            yaml.safe_dump(config, f, sort_keys=False)
        os.chmod(path, 0o600)
        return path

    # -- test helpers --------------------------------------------------------------------
    def apply(self, obj: dict) -> dict:
        """Create or replace ``obj`` straight in the store as admin (status kept, no validation)."""
        api_version = obj.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        rt = next(
            (
                r
                for r in self.registry.all()
                if r.group == group and r.version == version and r.kind == obj.get("kind") and not r.virtual
            ),
            None,
        )
        if rt is None:
            raise status.ApiError(404, f'no matches for kind "{obj.get("kind")}" in version "{api_version}"')
        return self.objects.force_apply(rt, obj)

    def compact(self) -> int:
        """Forget the watch history (like an etcd compaction); watches from older rvs get 410."""
        return self.store.compact()

    @property
    def requests(self) -> list[RequestRecord]:
        return self.app.requests

    def clear_requests(self) -> None:
        self.app.clear_requests()
