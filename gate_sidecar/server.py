"""The HTTP servers the sidecar runs on (waitress), hardened for a port anyone in reach can abuse.

Flagger's webhook calls carry no credentials, so whatever can open a connection can try to starve
Flagger and the kubelet's probes. What :class:`GuardedServer` adds to waitress (the settings are
:class:`Limits`):

* **Bodies in memory, refused early.** A ``Content-Length`` over ``max_body`` is answered 413 from
  the headers, before a byte of the body is read; a chunked body is cut off with 413 once
  ``max_body`` bytes of it have arrived (framing included). waitress spools a body past
  ``inbuf_overflow`` to a temporary file: that threshold is set above anything that can be
  accepted, so no request ever touches the disk (the pod's /tmp is a small emptyDir).
* **Read deadline (slowloris).** A request must arrive whole, headers and body, within
  ``read_timeout`` seconds of its first byte, however it trickles in: else 408 and the connection
  is closed. A connection with no request under way is closed after ``idle_timeout``. Both are
  checked every second, so either may act up to about two seconds late.
* **Connections per peer.** A peer (source IP) holds at most ``max_per_peer`` connections: the
  next one closes that peer's longest-idle connection (no request under way; HTTP allows closing
  an idle keep-alive connection at any time), and only when all of them are mid-request, each
  bounded by the read deadline, is it refused with 503. When ``max_total`` is reached the same is
  done to the peer holding the most. So one peer's thousand idle connections cost another peer
  (Flagger) and the probes nothing: they never wait for a free slot.
* **poll(), not select()**: more than 1,024 descriptors do not crash the loop.
* Errors waitress itself answers (400, 413, 431, 501) are JSON ``{code, name, message}`` like the
  app's, and a Content-Length too long to be a number is a 400, not a traceback.

:func:`create_server` serves the webhooks; :func:`start_probe_server` serves only ``/healthz``,
``/readyz`` and ``/metrics`` on a second port with its own loop, threads and connection caps, so
abuse of the webhook port cannot starve the kubelet's probes. The benchmark serves its bare
baseline app through :func:`create_server` too, to compare both on the same server and settings.
"""

from __future__ import annotations

import logging
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher
from waitress.utilities import Error, RequestEntityTooLarge

from gate_sidecar import answers

log = logging.getLogger(__name__)

#: Paths the probe port serves; anything else there is 404.
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
#: Connections per peer and in all on the probe port, at most.
PROBE_CAPS = (16, 128)
#: Descriptors kept free for everything but client connections (API watches, logs, the listeners).
FD_RESERVE = 64


@dataclass(frozen=True)
class Limits:
    """What one port accepts (see the module docstring for how each is enforced)."""

    #: Biggest request body, in bytes.
    max_body: int = answers.MAX_BODY
    #: Biggest request line plus headers, in bytes (431 past it).
    max_header: int = 16 * 1024
    #: Seconds from a request's first byte until it must have arrived whole (408 after).
    read_timeout: float = 5.0
    #: Seconds a connection with no request under way is kept open.
    idle_timeout: float = 30.0
    #: Connections one source address may hold.
    max_per_peer: int = 64
    #: Connections in all.
    max_total: int = 512

    def __post_init__(self):
        if min(self.max_body, self.max_header, self.max_per_peer, self.max_total) < 1:
            raise ValueError("sizes and connection caps must be positive")
        if min(self.read_timeout, self.idle_timeout) <= 0:
            raise ValueError("timeouts must be positive")


def fd_bounded(limits: Limits) -> Limits:
    """``limits`` with ``max_total`` lowered to what the descriptor limit allows.

    That is the soft RLIMIT_NOFILE less :data:`FD_RESERVE` and the probe port's total cap: were the
    descriptors to run out, accept() would fail and the loop spin on the listener.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    room = soft - FD_RESERVE - PROBE_CAPS[1] if soft != resource.RLIM_INFINITY else limits.max_total
    if room >= limits.max_total:
        return limits
    room = max(room, 1)
    log.warning("only %d descriptors: at most %d connections (not %d)", soft, room, limits.max_total)
    return replace(limits, max_total=room, max_per_peer=min(limits.max_per_peer, room))


# -- errors ----------------------------------------------------------------------------------------


class JsonError(Error):
    """A waitress error answer as the app's error bodies: JSON ``{code, name, message}``."""

    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason = code, reason

    def to_response(self, ident=None):
        body = answers.encode({"code": self.code, "name": self.reason, "message": self.body})
        return f"{self.code} {self.reason}", [("Content-Type", "application/json")], body


def _raw_answer(code: int, reason: str, message: str) -> bytes:
    """A complete ``Connection: close`` answer, for what is sent outside a request task."""
    body = answers.encode({"code": code, "name": reason, "message": message})
    head = (
        f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


# -- parsing ---------------------------------------------------------------------------------------


class GuardedParser(HTTPRequestParser):
    """waitress's parser with every refusal in JSON and a bad Content-Length a 400, not a crash."""

    error: Any  # waitress's: the refusal found so far, if any

    def __init__(self, adj: Adjustments, limits: Limits):
        super().__init__(adj)
        self.limits = limits

    def parse_header(self, header_plus: bytes) -> None:
        try:
            super().parse_header(header_plus)
        except ValueError:  # int() of a Content-Length of thousands of digits
            raise ParsingError("Content-Length is invalid") from None

    def received(self, data: bytes) -> int:
        consumed = super().received(data)
        error = self.error
        if error is not None and not isinstance(error, JsonError):
            if isinstance(error, RequestEntityTooLarge):
                message = (
                    f"the body is over {self.limits.max_body // 1024} KiB "
                    f"({self.limits.max_body} bytes): Flagger's payloads are far smaller"
                )
            elif error.code == 431:
                message = f"the request line and headers are over {self.limits.max_header // 1024} KiB"
            else:
                message = str(error.body)
            self.error = JsonError(error.code, error.reason, message)
        return consumed


# -- connections -----------------------------------------------------------------------------------


class GuardedChannel(HTTPChannel):
    """A connection that knows its peer and when its request under way began."""

    #: When the first byte of the request under way arrived (time.time(), as waitress's clock).
    request_began = 0.0
    request: Any  # waitress's: the request being read, if any

    def __init__(self, server: GuardedServer, sock, addr, adj, map=None):  # noqa: A002 - waitress's name
        super().__init__(server, sock, addr, adj, map=map)
        self.peer = addr[0] if isinstance(addr, tuple) and addr else str(addr)
        server.peers.setdefault(self.peer, set()).add(self)

    def parser_class(self, adj: Adjustments) -> GuardedParser:
        return GuardedParser(adj, self.server.limits)

    def received(self, data: bytes) -> bool:
        if self.request is None and data:
            self.request_began = time.time()
        return super().received(data)

    def idle(self) -> bool:
        """No request under way: neither being read nor being answered."""
        return not self.requests and self.request is None

    def time_out(self, seconds: float) -> None:
        """The request under way missed its read deadline: answer 408 and close (loop thread)."""
        request, self.request = self.request, None
        if request is not None:
            request.close()
        data = _raw_answer(408, "Request Timeout", f"the request did not arrive whole within {seconds:g}s")
        with self.outbuf_lock:
            self.outbufs[-1].append(data)
            self.total_outbufs_len += len(data)
            self.current_outbuf_count += len(data)
        self.close_when_flushed = True

    def del_channel(self, map=None):  # noqa: A002 - waitress's name
        held = self.server.peers.get(self.peer)
        if held is not None:
            held.discard(self)
            if not held:
                self.server.peers.pop(self.peer, None)
        super().del_channel(map)


class GuardedServer(TcpWSGIServer):
    """A waitress TCP server with the read deadline, idle timeout and per-peer caps of :class:`Limits`."""

    channel_class = GuardedChannel

    def __init__(self, application: Callable, *, limits: Limits, adj: Adjustments, map: dict, dispatcher, **kw):  # noqa: A002 - waitress's name
        self.limits = limits
        #: peer address -> its open connections (loop thread only).
        self.peers: dict[str, set[GuardedChannel]] = {}
        self._last_warning: dict[str, float] = {}
        super().__init__(application, map=map, adj=adj, dispatcher=dispatcher, **kw)

    @property
    def connections(self) -> int:
        return len(self.active_channels)

    def handle_accept(self) -> None:
        try:
            accepted = self.accept()
            if accepted is None:
                return
            conn, addr = accepted
        except OSError:
            return  # the peer gave up before we got to it, or descriptors ran out (see fd_bounded)
        # NB: nothing a peer does may raise out of here: wasyncore would close the listener itself.
        try:
            self.set_socket_options(conn)
            addr = self.fix_addr(addr)
            peer = addr[0]
            why = self._make_room(peer)
            if why:
                self._refuse(conn, peer, why)
                return
            self.channel_class(self, conn, addr, self.adj, map=self._map)
        except OSError:
            conn.close()  # reset before we got to it
        except Exception:
            log.exception("bug while accepting a connection")
            conn.close()

    def _make_room(self, peer: str) -> str:
        """Room for one more connection from ``peer``: "" when there is, else why not."""
        limits = self.limits
        held = self.peers.get(peer, ())
        if len(held) >= limits.max_per_peer:
            if self._close_longest_idle(held):
                return ""
            return (
                f"{peer} already has {len(held)} requests under way "
                f"(at most {limits.max_per_peer} connections per peer)"
            )
        if self.connections >= limits.max_total:
            for channels in sorted(self.peers.values(), key=len, reverse=True):
                if self._close_longest_idle(channels):
                    return ""
            return f"all {limits.max_total} connections have requests under way"
        return ""

    def _close_longest_idle(self, channels: Iterable[GuardedChannel]) -> bool:
        idle = [c for c in list(channels) if c.idle()]
        if not idle:
            return False
        victim = min(idle, key=lambda c: c.last_activity)
        self._warn(victim.peer, f"{victim.peer} is at its connection cap: closing its longest-idle connections")
        victim.handle_close()
        return True

    def _refuse(self, conn: socket.socket, peer: str, why: str) -> None:
        self._warn(peer, f"refusing connections: {why}")
        try:
            conn.setblocking(False)
            conn.send(_raw_answer(503, "Service Unavailable", f"too many connections: {why}; try again"))
        except OSError:
            pass
        finally:
            conn.close()

    def _warn(self, peer: str, message: str) -> None:
        """Log at most once every 10 s per peer: an attack must not flood the log."""
        now = time.monotonic()
        if now - self._last_warning.get(peer, -1e9) >= 10.0:
            self._last_warning[peer] = now
            if len(self._last_warning) > 4096:
                self._last_warning.clear()
            log.warning("%s", message)

    def maintenance(self, now: float) -> None:
        """Every second (loop thread): enforce the read deadline and the idle timeout."""
        limits = self.limits
        for channel in list(self.active_channels.values()):
            if channel.requests or channel.will_close or channel.close_when_flushed:
                continue  # being answered (bounded by the app), or closing already
            if channel.request is not None:
                if now - channel.request_began > limits.read_timeout:
                    channel.time_out(limits.read_timeout)
            elif now - channel.last_activity > limits.idle_timeout:
                channel.will_close = True


# -- building the servers --------------------------------------------------------------------------


def _adjustments(*, host: str, port: int, threads: int, ident: str, limits: Limits) -> Adjustments:
    return Adjustments(
        host=host,
        port=port,
        threads=threads,
        ident=ident,
        clear_untrusted_proxy_headers=True,
        # waitress refuses a Content-Length >= max_request_body_size from the headers alone.
        max_request_body_size=limits.max_body + 1,
        max_request_header_size=limits.max_header,
        # Never spool: the largest body buffered is max_body plus one recv() past it.
        inbuf_overflow=limits.max_body + 4 * 65536,
        outbuf_overflow=16 * 1024 * 1024,  # answers are a few KiB (/metrics the largest)
        # GuardedServer enforces the caps; waitress's own limit (which stops accepting) stays out of reach.
        connection_limit=limits.max_total + 16,
        channel_timeout=max(1, int(limits.idle_timeout) + 1),
        cleanup_interval=1,
        asyncore_use_poll=True,
        ipv6=":" in host,
        ipv4=":" not in host,
    )


def create_server(
    app: Callable, *, host: str, port: int, threads: int, ident: str = "gate-sidecar", limits: Limits | None = None
) -> GuardedServer:
    """A guarded waitress server for ``app`` on ``host:port`` (not started: call ``run()``)."""
    limits = fd_bounded(limits or Limits())
    adj = _adjustments(host=host, port=port, threads=threads, ident=ident, limits=limits)
    dispatcher = ThreadedTaskDispatcher()
    dispatcher.set_thread_count(adj.threads)
    return GuardedServer(app, limits=limits, adj=adj, map={}, dispatcher=dispatcher, sockinfo=adj.listen[0])


def probe_only(app: Callable) -> Callable:
    """``app`` restricted to GET/HEAD of :data:`PROBE_PATHS`; anything else is 404 or 405, in JSON."""

    def probe_app(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in PROBE_PATHS:
            message = f"the probe port serves {', '.join(sorted(PROBE_PATHS))} only"
            body = answers.encode({"code": 404, "name": "Not Found", "message": message})
            start_response("404 NOT FOUND", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return app(environ, start_response)

    return probe_app


class ProbeServer:
    """The probe port: its own server, socket map, loop thread and worker threads."""

    def __init__(self, server: GuardedServer):
        self.server = server
        self.thread = threading.Thread(target=server.run, name="probe-server", daemon=True)

    @property
    def effective_port(self) -> int:
        return self.server.effective_port

    def close(self) -> None:
        self.server.task_dispatcher.shutdown(timeout=1)
        wasyncore.close_all(self.server._map)


def start_probe_server(
    app: Callable, *, host: str, port: int, threads: int = 2, limits: Limits | None = None
) -> ProbeServer:
    """Serve the probes of ``app`` on ``host:port`` in a thread of their own; close() to stop.

    Its caps are ``limits``' but at most :data:`PROBE_CAPS` (the kubelet and a scraper need a few
    connections), so both ports together stay within the descriptors :func:`fd_bounded` allows.
    """
    limits = limits or Limits()
    per_peer, total = PROBE_CAPS
    limits = replace(limits, max_per_peer=min(limits.max_per_peer, per_peer), max_total=min(limits.max_total, total))
    probe = ProbeServer(create_server(probe_only(app), host=host, port=port, threads=threads, limits=limits))
    probe.thread.start()
    return probe
