"""Recording servers on 127.0.0.1: stand-ins for Slack's Web API and for a generic JSON webhook.

:class:`SlackRecorder` answers ``chat.postMessage`` and ``chat.update`` as Slack's Web API does
(``{"ok": true, "channel": "C…", "ts": "…"}``; ``ok: false`` with ``invalid_auth``,
``channel_not_found`` or ``message_not_found``; the bot token checked from the ``Authorization``
header), and keeps every channel's messages and thread replies, so a test reads what a person in
the channel would see. :class:`WebhookRecorder` takes any JSON POST.

Both record every request and can be told to misbehave, in order: ``fail(status, headers=…,
body=…)`` answers the next request so (a 429 with ``Retry-After``, a 500), ``slow(seconds)`` delays
it, and ``down()`` / ``up()`` close and reopen the port (connections refused meanwhile).

Shares no code with the product (the sandbox never imports it).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    status: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Fault:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    #: Only for a request whose path ends so ("" for any).
    path: str = ""


class _Server:
    """A threaded HTTP server on 127.0.0.1 that keeps its port across down()/up()."""

    def __init__(self, port: int = 0):
        self.port = port
        self.requests: list[Recorded] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control --------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                recorder._handle(self)

            def do_GET(self):
                recorder._handle(self)

            def log_message(self, fmt, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def down(self) -> None:
        """Close the port: connections are refused until :meth:`up`."""
        self.stop()

    def up(self):
        return self.start()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(
        self, status: int, *, headers: dict[str, str] | None = None, body: Any = None, times: int = 1, path: str = ""
    ) -> None:
        """Answer the next ``times`` requests (to a path ending with ``path``, if given) with ``status``
        (and ``headers``, ``body``)."""
        with self._lock:
            self._faults.extend(
                _Fault(status=status, headers=dict(headers or {}), body=body, path=path) for _ in range(times)
            )

    def slow(self, seconds: float, *, times: int = 1) -> None:
        """Delay the next ``times`` requests by ``seconds`` before answering them normally."""
        with self._lock:
            self._faults.extend(_Fault(delay=seconds) for _ in range(times))

    def wait_for(self, count: int, *, timeout: float = 10.0, path: str = "") -> list[Recorded]:
        """Block until ``count`` requests (to ``path``, if given) were answered; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            got = [r for r in list(self.requests) if r.status and (not path or r.path.endswith(path))]
            if len(got) >= count:
                return got
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(got)} of {count} requests to {path or 'any path'} arrived")
            time.sleep(0.02)

    # -- serving ----------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        record = Recorded(handler.command, handler.path, dict(handler.headers.items()), _decode(raw, handler.headers))
        with self._lock:
            self.requests.append(record)
            fault = next((f for f in self._faults if record.path.split("?")[0].endswith(f.path)), None)
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status:
            status, headers, body = fault.status, fault.headers, fault.body
        else:
            status, headers, body = self.answer(record)
        data = body if isinstance(body, bytes) else json.dumps(body if body is not None else {}).encode()
        record.status = status
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (its timeout): recorded all the same

    def answer(self, record: Recorded) -> tuple[int, dict[str, str], Any]:
        return 200, {}, {"ok": True}


def _decode(raw: bytes, headers) -> Any:
    kind = headers.get("Content-Type", "")
    text = raw.decode("utf-8", errors="replace")
    if "json" in kind:
        try:
            return json.loads(text)
        except ValueError:
            return text
    if "x-www-form-urlencoded" in kind:
        return dict(urllib.parse.parse_qsl(text))
    return text


@dataclass
class Message:
    ts: str
    text: str
    thread_ts: str = ""
    edits: int = 0
    replies: list[Message] = field(default_factory=list)


class SlackRecorder(_Server):
    """Slack's ``chat.postMessage`` and ``chat.update`` at ``url + "/api/"`` (a WebClient's base_url)."""

    def __init__(self, token: str, port: int = 0):
        super().__init__(port)
        self.token = token
        #: channel id -> top-level messages, in order
        self.channels: dict[str, list[Message]] = {}
        self._clock = 1_700_000_000.0
        self._names: dict[str, str] = {}

    @property
    def base_url(self) -> str:
        return self.url + "/api/"

    def channel_id(self, name: str) -> str:
        """The id this workspace gives a channel name (``#releases`` and ``releases`` alike)."""
        name = name.lstrip("#")
        if name.startswith("C") and name.isupper():
            return name
        return self._names.setdefault(name, "C" + hashlib.sha256(name.encode()).hexdigest()[:8].upper())

    def messages(self, channel: str) -> list[Message]:
        return list(self.channels.get(self.channel_id(channel), []))

    def answer(self, record: Recorded) -> tuple[int, dict[str, str], Any]:
        method = record.path.rsplit("/", 1)[-1].split("?", 1)[0]
        if record.headers.get("Authorization") != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        body = record.body if isinstance(record.body, dict) else {}
        channel = str(body.get("channel") or "")
        if not channel:
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        cid = self.channel_id(channel)
        with self._lock:
            if method == "chat.postMessage":
                self._clock += 0.0001
                ts = f"{self._clock:.6f}"
                message = Message(ts=ts, text=str(body.get("text", "")), thread_ts=str(body.get("thread_ts") or ""))
                top = self.channels.setdefault(cid, [])
                if message.thread_ts:
                    parent = next((m for m in top if m.ts == message.thread_ts), None)
                    if parent is None:
                        return 200, {}, {"ok": False, "error": "thread_not_found"}
                    parent.replies.append(message)
                else:
                    top.append(message)
                return 200, {}, {"ok": True, "channel": cid, "ts": ts, "message": {"text": message.text, "ts": ts}}
            if method == "chat.update":
                ts = str(body.get("ts") or "")
                edited = next((m for m in self.channels.get(cid, []) if m.ts == ts), None)
                if edited is None:
                    return 200, {}, {"ok": False, "error": "message_not_found"}
                edited.text = str(body.get("text", ""))
                edited.edits += 1
                return 200, {}, {"ok": True, "channel": cid, "ts": ts, "text": edited.text}
        return 200, {}, {"ok": False, "error": "unknown_method"}


class WebhookRecorder(_Server):
    """Any JSON POST, answered 200; ``bodies()`` are the JSON objects received, in order."""

    def bodies(self) -> list[Any]:
        return [r.body for r in self.requests if r.status == 200]
