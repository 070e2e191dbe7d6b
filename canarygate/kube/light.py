"""The light transport: :class:`~canarygate.kube.transport.Transport` on the standard library's
``http.client`` (:class:`LightTransport`).

Why: importing the official ``kubernetes`` client costs ~190 ms, more than ``kubectl get`` takes in
all, and ``kubectl gate show`` must stay within 2x of it (docs/packaging.md#start-up-time). This module
must never import ``kubernetes`` (an import-linter contract and a test check it).

Supported: bearer tokens, ``tokenFile``, basic auth, client certificates (files or data, loaded
from memory), CA (file or data, else the system store), ``insecure-skip-tls-verify``,
``tls-server-name``, exec credential plugins, HTTP and SOCKS5 proxies (``proxy-url``, else
HTTPS_PROXY / HTTP_PROXY / NO_PROXY as Go reads them). Anything else (auth-provider,
impersonation, https proxies) raises :class:`Unsupported`; :func:`canarygate.kube.connect.connect` then uses the
official client. A broken credential or a failing exec plugin is a ConfigError, never a fallback.

Connections: one kept-alive connection per client for ordinary requests, shared by threads under a
lock (a request holds it until its body is read); each watch gets its own connection, closed when
the stream is released.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import socket
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote, urlencode, urlsplit

from canarygate import errors
from canarygate.kube import kubeconfig, transport
from canarygate.kube.kubeconfig import Resolved
from canarygate.kube.transport import Answer, Timeout

#: Seconds an exec credential plugin may take (a first login may open a browser).
EXEC_TIMEOUT = 60.0


class Unsupported(Exception):
    """The kubeconfig needs something this transport does not do: use the official client."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect: server URL, auth headers and TLS context."""

    server: str
    headers: dict[str, str]
    ssl_context: ssl.SSLContext | None
    #: The kubeconfig's cluster name, for messages.
    cluster: str = ""
    #: http://host:port of the HTTP proxy to go through (CONNECT for https), socks5://[user:password@]host:port
    #: of a SOCKS5 one, or "" for none.
    proxy: str = ""
    proxy_headers: dict[str, str] = field(default_factory=dict)
    #: tls-server-name: the name the server's certificate is checked against (SNI too).
    server_name: str = ""
    #: Every secret value a message must never show (see :func:`canarygate.kube.client.scrub`).
    secrets: tuple[str, ...] = ()
    #: Headers sent once per value, in order (Impersonate-Group, Impersonate-Extra-*): a dict holds one.
    repeated: tuple[tuple[str, str], ...] = ()


def endpoint(resolved: Resolved) -> Endpoint:
    """The Endpoint for a resolved kubeconfig context; Unsupported for what only the official client does.

    The kubeconfig reader has already refused credentials over plain http and a CA together with
    insecure-skip-tls-verify. Runs an exec credential plugin if the user has one: ConfigError naming
    it when it fails (never "carry on without credentials"). ConfigError for credentials that cannot
    be read. Client keys are loaded from memory where the OS allows it, never left on disk.
    """
    cl, usr = resolved.cluster, resolved.user
    server = str(cl.get("server") or "")
    if not server:
        raise errors.ConfigError(f'the kubeconfig\'s cluster "{resolved.cluster_name}" has no server')
    if "://" not in server:
        server = "http://" + server  # NB: as kubectl reads a server without a scheme, even with a CA
    unsupported = [k for k in ("auth-provider",) if usr.get(k)]
    proxy = str(cl.get("proxy-url") or "") or proxy_for(server) or ""
    if proxy and urlsplit(proxy).scheme.lower() not in ("http", "socks5"):
        unsupported.append(f"a {urlsplit(proxy).scheme} proxy")
    if unsupported:
        raise Unsupported(f"not supported by the light transport: {', '.join(unsupported)}")
    https = kubeconfig.scheme(server) == "https"
    headers = {"Accept": "application/json"}
    ssl_context = _tls(resolved) if https else None
    cert = _pem(usr, "client-certificate")
    key = _pem(usr, "client-key")
    token = str(usr.get("token") or "")
    if usr.get("tokenFile"):  # NB: kubectl reads tokenFile even when token is set too, and it wins
        token = _read(usr["tokenFile"], "tokenFile", resolved.user_name).strip() or token
    if not token and isinstance(usr.get("exec"), dict):
        token, exec_cert, exec_key = _exec_credential(usr["exec"], resolved.user_name)
        if exec_cert:
            cert, key = ("data", exec_cert), ("data", exec_key)
    for what, value in (("token", token), ("username", usr.get("username")), ("password", usr.get("password"))):
        if value and any(ord(c) < 32 or ord(c) == 127 for c in str(value)):
            # NB: it would go into a header: http.client refuses it with the value in the message (Go too)
            raise errors.ConfigError(
                f'the {what} of user "{resolved.user_name}" contains a line break or another '
                "control character: it cannot be sent in a header"
            )
    secrets = []
    if token:
        headers["Authorization"] = f"Bearer {token}"
        secrets += [token]
    elif usr.get("username") or usr.get("password"):
        pair = f"{usr.get('username') or ''}:{usr.get('password') or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        secrets += [str(usr.get("password") or ""), headers["Authorization"].split(" ", 1)[1]]
    if cert and ssl_context is not None:
        if key is None:
            raise errors.ConfigError(
                f"client-key-data or client-key must be specified for {resolved.user_name} "
                "to use the clientCert authentication method"
            )
        for (kind, value), what in ((cert, "client-cert"), (key, "client-key")):
            if kind == "file":
                _read(value, what, resolved.user_name)
        load_cert_chain(ssl_context, cert, key)
    proxy_headers = {}
    if proxy:
        parts = urlsplit(proxy)
        secrets += [unquote(parts.password or ""), parts.password or ""]
        if parts.scheme.lower() == "http":
            proxy_headers = proxy_headers_for(proxy)
            secrets += [h[6:] for h in proxy_headers.values()]
            proxy = f"http://{parts.hostname}:{parts.port or 80}"
    headers.update(impersonation_headers(usr))
    return Endpoint(
        server.rstrip("/"),
        headers,
        ssl_context,
        resolved.cluster_name,
        proxy,
        proxy_headers,
        str(cl.get("tls-server-name") or ""),
        tuple(s for s in secrets if s),
        impersonation_repeated(usr),
    )


def impersonation_headers(user: dict[str, Any]) -> dict[str, str]:
    """Impersonate-User and Impersonate-Uid for the user's ``as``/``as-uid`` (kubectl's --as, --as-uid)."""
    headers = {}
    if user.get("as"):
        headers["Impersonate-User"] = str(user["as"])
    if user.get("as-uid"):
        headers["Impersonate-Uid"] = str(user["as-uid"])
    for name, value in headers.items():
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise errors.ConfigError(f"the {name} value contains a control character: it cannot be sent in a header")
    return headers


def impersonation_repeated(user: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """One Impersonate-Group header per group and Impersonate-Extra-KEY per value, as client-go sends them."""
    from urllib.parse import quote

    pairs = [("Impersonate-Group", str(group)) for group in user.get("as-groups") or ()]
    for key, values in (user.get("as-user-extra") or {}).items():
        pairs += [(f"Impersonate-Extra-{quote(str(key), safe='')}", str(v)) for v in values or ()]
    for name, value in pairs:
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise errors.ConfigError(f"the {name} value contains a control character: it cannot be sent in a header")
    return tuple(pairs)


def _tls(resolved: Resolved) -> ssl.SSLContext:
    cl = resolved.cluster
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if cl.get("insecure-skip-tls-verify") is True:  # NB: only a real boolean; the reader refuses others
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif cl.get("certificate-authority-data"):  # NB: the data wins over the file, as in kubectl
        try:
            context.load_verify_locations(cadata=base64.b64decode(cl["certificate-authority-data"]).decode())
        except (ValueError, ssl.SSLError) as e:
            raise errors.ConfigError(
                f'the kubeconfig\'s cluster "{resolved.cluster_name}": '
                f"certificate-authority-data is not a base64 PEM certificate ({e})"
            ) from None
    elif cl.get("certificate-authority"):
        _read(cl["certificate-authority"], "certificate-authority", resolved.cluster_name)
        try:
            context.load_verify_locations(cafile=cl["certificate-authority"])
        except ssl.SSLError as e:
            raise errors.ConfigError(
                f"certificate-authority {cl['certificate-authority']} for "
                f"{resolved.cluster_name} is not a PEM certificate ({e})"
            ) from None
    else:
        # NB: the system CA store (~20 ms to load) only when the kubeconfig names no CA of its own.
        context.load_default_certs()
    return context


def _read(path: str, what: str, owner: str) -> str:
    """A file the kubeconfig names, or ConfigError in kubectl's words."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise errors.ConfigError(f"unable to read {what} {path} for {owner} due to {reason}") from None


def _pem(user: dict[str, Any], key: str) -> tuple[str, Any] | None:
    if user.get(key + "-data"):  # NB: the data wins over the file, as in kubectl
        try:
            # NB: Go's base64 (client-go decodes these as []byte) skips line breaks, and nothing else
            text = str(user[key + "-data"]).replace("\r", "").replace("\n", "")
            return ("data", base64.b64decode(text, validate=True))
        except ValueError:
            raise errors.ConfigError(f"{key}-data is not base64") from None
    if user.get(key):
        return ("file", user[key])
    return None


def load_cert_chain(context: ssl.SSLContext, cert: tuple[str, Any], key: tuple[str, Any]) -> None:
    """Load a client certificate and key into ``context``, leaving nothing on disk.

    ssl reads keys only from a path. Inline data goes through an anonymous memory file
    (``memfd_create``, read through /proc/self/fd: it never reaches a disk and dies with the process,
    whatever signal ends it); where that does not exist, through a 0600 file in a private 0700
    directory, written, loaded and removed with SIGTERM, SIGINT and SIGHUP held back meanwhile.
    """
    files = [v if kind == "file" else None for kind, v in (cert, key)]
    datas = [v if kind == "data" else None for kind, v in (cert, key)]
    try:
        if all(d is None for d in datas):
            context.load_cert_chain(files[0], files[1])  # type: ignore[arg-type]  # NB: a file when no data
        elif hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
            _load_from_memory(context, files, datas)
        else:
            _load_through_private_file(context, files, datas)
    except ssl.SSLError as e:
        raise errors.ConfigError(f"the client certificate and key cannot be used together ({e.reason or e})") from None


def _load_from_memory(context: ssl.SSLContext, files: list[Any], datas: list[Any]) -> None:
    fds = []
    try:
        paths = []
        for path, data in zip(files, datas, strict=True):
            if data is None:
                paths.append(path)
                continue
            fd = os.memfd_create("kubectl-gate-credential", os.MFD_CLOEXEC)
            fds.append(fd)
            os.write(fd, data)
            paths.append(f"/proc/self/fd/{fd}")
        context.load_cert_chain(paths[0], paths[1])
    finally:
        for fd in fds:
            os.close(fd)


def _load_through_private_file(context: ssl.SSLContext, files: list[Any], datas: list[Any]) -> None:
    import shutil
    import signal

    held = {getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n)}
    mask = getattr(signal, "pthread_sigmask", None)
    previous = mask(signal.SIG_BLOCK, held) if mask else None
    directory = tempfile.mkdtemp(prefix="kubectl-gate-")  # NB: mkdtemp makes it 0700
    try:
        paths = []
        for i, (path, data) in enumerate(zip(files, datas, strict=True)):
            if data is None:
                paths.append(path)
                continue
            name = os.path.join(directory, f"{i}.pem")
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            paths.append(name)
        context.load_cert_chain(paths[0], paths[1])
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if mask:
            mask(signal.SIG_SETMASK, previous)


def _exec_credential(spec: dict[str, Any], user: str) -> tuple[str, bytes, bytes]:
    """Run a client.authentication.k8s.io exec plugin: (token, client cert PEM, client key PEM).

    Every failure (not found, non-zero exit, timeout, not an ExecCredential, no credential in it)
    is a ConfigError naming the plugin, with its stderr's last lines scrubbed of anything that looks
    like a secret; its stdout is never shown.
    """
    command = str(spec.get("command") or "")
    api_version = str(spec.get("apiVersion") or "")
    env = dict(os.environ)
    for item in spec.get("env") or ():  # NB: a missing or null value is "", as client-go decodes it
        item = item or {}
        if item.get("name"):
            env[item["name"]] = item.get("value") or ""
    where = f'the exec credential plugin "{command}" of user "{user}"'
    mode = str(spec.get("interactiveMode") or "IfAvailable")
    terminal = _stdin_is_terminal()
    if mode == "Always" and not terminal:
        raise errors.ConfigError(f"{where} needs a terminal (interactiveMode: Always), and standard input is not one")
    # NB: interactive as kubectl: the plugin gets our terminal (stdin and stderr, for its prompts)
    interactive = mode != "Never" and terminal
    info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": interactive}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    try:
        done = subprocess.run(
            [command, *(spec.get("args") or ())],
            env=env,
            stdout=subprocess.PIPE,
            stderr=None if interactive else subprocess.PIPE,
            timeout=EXEC_TIMEOUT,
            stdin=None if interactive else subprocess.DEVNULL,
        )
    except FileNotFoundError:
        hint = str(spec.get("installHint") or "")
        raise errors.ConfigError(f"{where}: executable {command} not found" + (f"\n{hint}" if hint else "")) from None
    except subprocess.TimeoutExpired:
        raise errors.ConfigError(f"{where} did not finish within {EXEC_TIMEOUT:g} s") from None
    except OSError as e:
        raise errors.ConfigError(f"{where} cannot be run: {e.strerror}") from None
    if done.returncode != 0:
        raise errors.ConfigError(f"{where} failed with exit code {done.returncode}" + _tail(done.stderr))
    try:
        answer = json.loads(done.stdout)
    except ValueError as e:
        detail = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise errors.ConfigError(f"{where} printed no ExecCredential JSON ({detail})") from None
    if not isinstance(answer, dict) or answer.get("kind") != "ExecCredential":
        raise errors.ConfigError(f"{where} printed JSON that is not an ExecCredential")
    if answer.get("apiVersion") != api_version:
        raise errors.ConfigError(
            f"{where} is configured to use API version {api_version}, "
            f"plugin returned version {str(answer.get('apiVersion'))[:80]}"
        )
    status: dict[str, Any] = answer["status"] if isinstance(answer.get("status"), dict) else {}
    token: str = status["token"] if isinstance(status.get("token"), str) else ""
    cert: str = status["clientCertificateData"] if isinstance(status.get("clientCertificateData"), str) else ""
    key: str = status["clientKeyData"] if isinstance(status.get("clientKeyData"), str) else ""
    if bool(cert) != bool(key) or not (token or cert):
        raise errors.ConfigError(f"{where} didn't return a token or cert/key pair")
    return token, cert.encode(), key.encode()


def _stdin_is_terminal() -> bool:
    import sys

    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


def _tail(stderr: bytes | None) -> str:
    from canarygate.kube.client import scrub

    if not stderr:
        return ""
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()][-5:]
    text = scrub("\n".join(lines))[-800:]
    return (":\n  " + text.replace("\n", "\n  ")) if text else ""


def proxy_for(server: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy URL Go's ``http.ProxyFromEnvironment`` (client-go's) picks for ``server``, or None.

    HTTPS_PROXY for https servers, HTTP_PROXY for http ones (upper case first, then lower; an empty
    value is unset); never for localhost or a loopback address; NO_PROXY (or no_proxy) entries:
    ``*``, an IP, a CIDR, a domain (``corp.example`` matches it and its subdomains, ``.corp.example``
    and ``*.corp.example`` only subdomains), each optionally with ``:port``. A proxy without a scheme
    is ``http://``. In a CGI environment (REQUEST_METHOD set) HTTP_PROXY is refused, as Go refuses it.
    """
    env = os.environ if environ is None else environ
    parts = urlsplit(server if "://" in server else "http://" + server)
    which = parts.scheme.lower()
    if which == "https":
        raw = _env_any(env, "HTTPS_PROXY", "https_proxy")
    elif which == "http":
        raw = _env_any(env, "HTTP_PROXY", "http_proxy")
        if raw and env.get("REQUEST_METHOD"):
            raise errors.ConfigError("refusing to use HTTP_PROXY value in CGI environment (REQUEST_METHOD is set)")
    else:
        return None
    if not raw:
        return None
    host = (parts.hostname or "").lower()
    port = str(parts.port or (443 if which == "https" else 80))
    if not _use_proxy(host, port, _env_any(env, "NO_PROXY", "no_proxy")):
        return None
    head, sep, _ = raw.partition("://")
    return raw if sep and head.lower() in ("http", "https", "socks5") else "http://" + raw


def proxy_headers_for(proxy: str) -> dict[str, str]:
    """Proxy-Authorization (basic) from the proxy URL's user:password, as Go sends it; {} without one."""
    parts = urlsplit(proxy)
    if parts.username is None:
        return {}
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode()}


def _env_any(env: Mapping[str, str], *names: str) -> str:
    return next((env[n] for n in names if env.get(n)), "")


def _use_proxy(host: str, port: str, no_proxy: str) -> bool:
    import ipaddress

    if host == "localhost":
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if ip is not None and ip.is_loopback:
        return False
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return False
        if "/" in entry:
            try:
                if ip is not None and ip in ipaddress.ip_network(entry, strict=False):
                    return False
                continue
            except ValueError:
                pass
        name, entry_port = _split_host_port(entry)
        if not name:
            continue
        try:
            entry_ip = ipaddress.ip_address(name)
        except ValueError:
            entry_ip = None
        if entry_ip is not None:  # an IP entry matches that IP only, never as a name suffix
            if ip == entry_ip and (not entry_port or entry_port == port):
                return False
            continue
        if name.startswith("*."):
            name = name[1:]
        exact = not name.startswith(".")
        suffix = name if not exact else "." + name
        if (host.endswith(suffix) or (exact and host == suffix[1:])) and (not entry_port or entry_port == port):
            return False
    return True


def _split_host_port(entry: str) -> tuple[str, str]:
    """Go's net.SplitHostPort, or (entry, "") when it is not host:port (a bare name or IPv6 address)."""
    if entry.startswith("["):
        close = entry.find("]")
        if close > 0 and entry[close + 1 : close + 2] == ":":
            return entry[1:close], entry[close + 2 :]
        return entry, ""
    if entry.count(":") == 1:
        name, _, port = entry.partition(":")
        return name, port
    return entry, ""


def untrusted(server: str, detail: str, cluster: str = "") -> errors.UntrustedServer:
    """The error for a server whose TLS certificate does not verify: not an outage, a missing CA."""
    entry = f'cluster "{cluster}"' if cluster else "the cluster"
    return errors.UntrustedServer(
        f"the API server at {server} is up, but its TLS certificate is not trusted ({detail}).\n"
        f"Give the kubeconfig's {entry} the CA that signed it: certificate-authority: <CA file> "
        "or certificate-authority-data: <base64 PEM>"
    )


# -- the transport ----------------------------------------------------------------------------------


class _Repeats:
    """Sends :attr:`Endpoint.repeated` headers with every request (not with a proxy's CONNECT)."""

    repeated: tuple[tuple[str, str], ...] = ()

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        for name, value in self.repeated:
            self.putheader(name, value)  # type: ignore[attr-defined]
        super().endheaders(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]


class _Http(_Repeats, http.client.HTTPConnection):
    """HTTP, through a SOCKS5 proxy when ``socks`` is given."""

    def __init__(self, host: str, port: int | None, *, socks: SplitResult | None = None) -> None:
        super().__init__(host, port)
        self._socks = socks

    def connect(self) -> None:
        if self._socks is None:
            return super().connect()
        self.sock = socks5_connect(self._socks, self.host, self.port or self.default_port, self.timeout)


class _Https(_Repeats, http.client.HTTPSConnection):
    """HTTPS whose certificate is checked against ``server_name`` (tls-server-name) when given;
    through a SOCKS5 proxy when ``socks`` is given."""

    def __init__(
        self,
        host: str,
        port: int | None,
        *,
        context: ssl.SSLContext,
        server_name: str = "",
        socks: SplitResult | None = None,
    ) -> None:
        super().__init__(host, port, context=context)
        self._server_name, self._socks = server_name, socks

    def connect(self) -> None:
        if self._socks is None:
            http.client.HTTPConnection.connect(self)  # TCP, and the proxy's CONNECT when tunnelling
        else:
            self.sock = socks5_connect(self._socks, self.host, self.port or self.default_port, self.timeout)
        # NB: http.client's own (undocumented) attributes: the tunnelled host and the TLS context
        name = self._server_name or self._tunnel_host or self.host  # type: ignore[attr-defined]
        self.sock = self._context.wrap_socket(self.sock, server_hostname=name)  # type: ignore[attr-defined]


def socks5_connect(proxy: SplitResult, host: str, port: int, timeout: float | None) -> socket.socket:
    """A socket to ``host:port`` through the SOCKS5 proxy ``proxy`` (a urlsplit result), as Go's
    socks5 dialer: names resolved by the proxy, username/password auth (RFC 1929) when the URL has
    them. OSError when the proxy refuses."""
    import ipaddress

    sock = socket.create_connection((proxy.hostname, proxy.port or 1080), timeout)
    try:
        methods = b"\x00\x02" if proxy.username is not None else b"\x00"
        sock.sendall(b"\x05" + bytes([len(methods)]) + methods)
        version, method = _exactly(sock, 2)
        if version != 5 or method not in methods:
            raise OSError("the SOCKS5 proxy accepts none of our authentication methods")
        if method == 2:
            user, password = unquote(proxy.username or "").encode(), unquote(proxy.password or "").encode()
            sock.sendall(b"\x01" + bytes([len(user)]) + user + bytes([len(password)]) + password)
            if _exactly(sock, 2)[1] != 0:
                raise OSError("the SOCKS5 proxy refused the username and password")
        try:
            address = ipaddress.ip_address(host)
            where = (b"\x01" if address.version == 4 else b"\x04") + address.packed
        except ValueError:
            name = host.encode("idna")
            where = b"\x03" + bytes([len(name)]) + name
        sock.sendall(b"\x05\x01\x00" + where + port.to_bytes(2, "big"))
        reply = _exactly(sock, 4)
        if reply[1] != 0:
            raise OSError(f"the SOCKS5 proxy could not connect to {host}:{port} (reply {reply[1]})")
        length = {1: 4, 4: 16}.get(reply[3]) or _exactly(sock, 1)[0]
        _exactly(sock, length + 2)  # the bound address and port
        return sock
    except BaseException:
        sock.close()
        raise


def _exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise OSError("the SOCKS5 proxy closed the connection")
        data += chunk
    return data


class _Stream:
    """A watch's answer on its own connection (:class:`~canarygate.kube.transport.Stream`)."""

    def __init__(
        self, response: http.client.HTTPResponse, connection: http.client.HTTPConnection, sock: socket.socket
    ) -> None:
        # NB: ``sock`` is kept apart: after "Connection: close" http.client hands the socket to the
        # response and the connection's sock is None, yet cut() must still reach it.
        self._response, self._connection, self._sock = response, connection, sock
        self.status = response.status

    def read(self) -> bytes:
        try:
            return self._response.read()
        except (OSError, http.client.HTTPException) as e:
            raise transport.unanswered(e) from e

    def lines(self) -> Iterator[bytes]:
        try:
            yield from transport.lines(iter(lambda: self._response.read1(65536), b""))
        except (OSError, http.client.HTTPException) as e:
            raise transport.Unanswered(str(e)) from e

    def cut(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._response.close()  # NB: the connection alone would leave a handed-over socket open
        self._connection.close()


class LightTransport:
    """The :class:`~canarygate.kube.transport.Transport` on ``http.client`` for an :class:`Endpoint`."""

    def __init__(self, where: Endpoint) -> None:
        self.endpoint = where
        parts = urlsplit(where.server)
        self._scheme, self._host, self._port = parts.scheme.lower(), parts.hostname, parts.port
        self._netloc = parts.netloc.rpartition("@")[2]
        self._prefix = parts.path.rstrip("/")
        self._lock = threading.Lock()
        self._connection: http.client.HTTPConnection | None = None

    @property
    def host(self) -> str:
        return self.endpoint.server

    @property
    def secrets(self) -> tuple[str, ...]:
        return self.endpoint.secrets

    def _new(self) -> http.client.HTTPConnection:
        """A connection to the server, through the proxy when there is one (CONNECT for https)."""
        where = self.endpoint
        proxy = urlsplit(where.proxy) if where.proxy else None
        socks = proxy if proxy is not None and proxy.scheme == "socks5" else None
        if socks is not None:
            proxy = None
        host, port = (proxy.hostname, proxy.port) if proxy else (self._host, self._port)
        if host is None or self._host is None:
            raise errors.ConfigError(f"no host in the server or proxy URL of cluster {where.cluster or where.server}")
        if self._scheme != "https":
            plain = _Http(host, port, socks=socks)
            plain.repeated = where.repeated
            return plain
        assert where.ssl_context is not None  # NB: endpoint() makes one for every https server
        connection = _Https(host, port, context=where.ssl_context, server_name=where.server_name, socks=socks)
        connection.repeated = where.repeated
        if proxy:
            connection.set_tunnel(self._host, self._port or 443, headers=dict(where.proxy_headers))
        return connection

    def _request(
        self, path: str, query: Sequence[tuple[str, Any]], headers: Mapping[str, str]
    ) -> tuple[str, dict[str, str]]:
        """The URL to ask for and every header to send: ours, the endpoint's (credentials), and
        through an HTTP proxy for plain http the absolute URL with the proxy's credentials."""
        pairs = [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in query]
        url = self._prefix + path + ("?" + urlencode(pairs) if pairs else "")
        sent = {**self.endpoint.headers, **headers}
        if self.endpoint.proxy.startswith("http:") and self._scheme != "https":
            url = f"http://{self._netloc}{url}"
            sent.update(self.endpoint.proxy_headers)
        return url, sent

    def send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, Any]],
        headers: Mapping[str, str],
        body: Any,
        timeout: Timeout,
    ) -> Answer:
        """One request on the shared kept-alive connection (held until the body is read); once more
        on a fresh one when the server had closed the kept-alive one."""
        url, sent = self._request(path, query, headers)
        payload = None if body is None else json.dumps(body).encode()
        connect_timeout, read_timeout = _timeouts(timeout)
        with self._lock, self._failures():
            for attempt in (1, 2):
                connection = self._connection or self._new()
                self._connection = connection
                reused = connection.sock is not None
                try:
                    if not reused:
                        _open(connection, connect_timeout, read_timeout)
                    else:
                        connection.sock.settimeout(read_timeout)
                    connection.request(method, url, body=payload, headers=sent)
                    response = connection.getresponse()
                    return Answer(response.status, response.read())
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    # A kept-alive connection the server had closed: once more on a fresh one.
                    self._drop()
                    if attempt == 2 or not reused:
                        raise
                except BaseException:
                    self._drop()
                    raise
        raise AssertionError("unreachable")

    def stream(
        self, path: str, query: Sequence[tuple[str, Any]], headers: Mapping[str, str], timeout: Timeout
    ) -> _Stream:
        """A GET on a connection of its own (a watch must not hold the shared one), closed with the stream."""
        url, sent = self._request(path, query, headers)
        connect_timeout, read_timeout = _timeouts(timeout)
        with self._failures():
            connection = self._new()
            try:
                _open(connection, connect_timeout, read_timeout)
                sock = connection.sock
                connection.request("GET", url, headers=sent)
                return _Stream(connection.getresponse(), connection, sock)
            except BaseException:
                connection.close()
                raise

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """Transport failures as the protocol raises them: UntrustedServer for a certificate that
        does not verify, Unanswered for the rest."""
        try:
            yield
        except ssl.SSLCertVerificationError as e:
            detail = f"certificate verify failed: {e.verify_message}" if e.verify_message else str(e)
            raise untrusted(self.endpoint.server, detail, self.endpoint.cluster) from e
        except (OSError, http.client.HTTPException) as e:
            raise transport.unanswered(e) from e

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        """GET ``path`` and decode the JSON; Unanswered or ValueError on any failure (for completion)."""
        answer = self.send("GET", path, (), {}, None, timeout)
        if answer.status != 200:
            raise ValueError(f"the API server answered {answer.status}")
        data: dict[str, Any] = json.loads(answer.body)
        return data

    def close(self) -> None:
        with self._lock:
            self._drop()


def _timeouts(value: Timeout) -> tuple[float | None, float | None]:
    if isinstance(value, tuple):
        return value[0], value[1]
    return value, value


def _open(connection: http.client.HTTPConnection, connect_timeout: float | None, read_timeout: float | None) -> None:
    connection.timeout = connect_timeout
    connection.connect()
    connection.sock.settimeout(read_timeout)
