"""The terminal side of the live view (``kubectl gate show NAME --watch`` on a terminal): thin on
purpose; what is drawn and what a key does are :mod:`kubectl_gate.live`'s pure functions.

Three threads: this one ``select``\\ s on stdin, a wake-up pipe and a 1 s tick, and draws; a reader
polls the API (every :data:`POLL_SECONDS`, and at once when the watch of the CanaryGate or the
Canary sees a change); an action, once confirmed, runs the very ``kubectl gate`` command a user
would type (same parser, same code), its output shown on the prompt line. A failed read keeps the
last state on screen and says "reconnecting…"; the next good read resumes. The alternate screen,
the cursor and the terminal mode are restored however the loop ends (q, Ctrl-C, SIGTERM, an error).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import select
import signal
import sys
import threading
import time
from datetime import datetime
from typing import Any

from kubectl_gate import live
from kubectl_gate.context import GateContext

POLL_SECONDS = 2.0
TICK_SECONDS = 1.0
#: A read that has not answered for this long is shown as an outage, before it fails.
SILENT_SECONDS = 5.0
ENTER_SCREEN = "\x1b[?1049h\x1b[?25l"
LEAVE_SCREEN = "\x1b[?25h\x1b[?1049l"


class Reader:
    """Reads the view and the two Deployments in the background; :attr:`snapshot` is the latest."""

    def __init__(self, gctx: GateContext, name: str, wake: int):
        self.gctx, self.name, self._wake = gctx, name, wake
        self.snapshot = live.Snapshot()
        self.reading_since: float | None = None
        self._kick = threading.Event()
        self._stop = threading.Event()

    def start(self) -> Reader:
        threading.Thread(target=self._poll, daemon=True, name="live-reader").start()
        threading.Thread(target=self._follow, daemon=True, name="live-follower").start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._kick.set()

    def kick(self) -> None:
        """Read again now (after an action, or a change the watch saw)."""
        self._kick.set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._kick.clear()
            self.reading_since = time.monotonic()
            self.snapshot = self.read(self.snapshot)
            self.reading_since = None
            _poke(self._wake)
            self._kick.wait(POLL_SECONDS)

    def read(self, previous: live.Snapshot) -> live.Snapshot:
        """One read: the next snapshot (the previous one kept, with the error, when it fails)."""
        from canarygate import errors
        from canarygate.kube import workloads
        from kubectl_gate import lookup

        now = self.gctx.now()
        try:
            view = lookup.load_view(self.gctx, self.name)
            found = []
            try:
                namespace = view.canary.namespace if view.canary is not None else ""
                for role, deployment in live.workload_names(view):  # NB: none without a Canary
                    raw = workloads.get_deployment(self.gctx.kube, namespace, deployment)
                    found.append(live.workload(raw, role=role, name=deployment))
            except errors.Forbidden:
                found = []  # NB: a viewer may not read Deployments: the view shows none, as show's readiness does
        except errors.NotFound as e:
            if e.kind == "CanaryGate" and not isinstance(e, errors.CrdMissing):
                return dataclasses.replace(previous, deleted=True, error="", read_at=now)
            return _failed(previous, e, now)
        except Exception as e:  # noqa: BLE001 - the view never dies of a read; it says so and tries again
            return _failed(previous, e, now)
        return live.Snapshot(view=view, workloads=tuple(found), read_at=now)

    def _follow(self) -> None:
        """Kick a read on every change the watches see; the poll goes on if the watch fails."""
        from kubectl_gate.following import Follower

        while not self._stop.is_set():
            try:
                for _ in Follower(self.gctx, self.name).changes():
                    if self._stop.is_set():
                        return
                    self.kick()
            except Exception:  # noqa: BLE001 - the poll goes on; the watch is tried again
                pass
            self._stop.wait(POLL_SECONDS)


def _failed(previous: live.Snapshot, error: BaseException, now: datetime) -> live.Snapshot:
    text = str(error).split("\n", 1)[0] or type(error).__name__
    return dataclasses.replace(previous, error=text, failing_since=previous.failing_since or now)


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.write(fd, b".")


def run_command(gctx: GateContext, action: live.Action, name: str) -> str:
    """Run ``kubectl gate VERB ... NAME --reason R -n NS`` as typed (the same command, the same code),
    on the same connection; its output and errors, as text."""
    import click

    from kubectl_gate.cli import cli

    args = [action.verb]
    if action.gate:
        args.append(action.gate)
    args += [name, "--reason", action.reason, "-n", gctx.ns]
    if action.verb == "close" and action.gate in _check_gates():
        args.append("--yes")  # NB: the confirmation line said what the command's refusal says
    buffer = io.StringIO()
    scoped = dataclasses.replace(gctx, stdout=buffer, stderr=buffer)
    try:
        code = cli.main(args=args, obj=scoped, prog_name="kubectl gate", standalone_mode=False)
    except click.ClickException as e:
        return (buffer.getvalue() + f"error: {e.format_message()}").strip()
    except click.exceptions.Exit as e:
        code = e.exit_code
    except Exception as e:  # noqa: BLE001 - shown on the prompt line, the view goes on
        return (buffer.getvalue() + f"error: {e}").strip()
    text = buffer.getvalue().strip()
    if isinstance(code, int) and code:
        text += f" (exit {code})"
    return text or f"{action.verb}: done"


def _check_gates() -> frozenset[str]:
    from canarygate import hooks

    return frozenset(hooks.CHECK_GATES)


def _refusal(view, gate: str) -> str | None:
    from kubectl_gate.commands.change import check_close_refusal

    return check_close_refusal(view, gate)


def split_keys(data: str) -> list[str]:
    """Keys from what the terminal sent: escape sequences (arrows, function keys) are dropped, a
    lone Esc is kept."""
    keys, i = [], 0
    while i < len(data):
        c = data[i]
        if c == "\x1b" and i + 1 < len(data) and data[i + 1] in "[O":
            i += 2
            while i < len(data) and not ("@" <= data[i] <= "~"):
                i += 1
            i += 1
            continue
        keys.append(c)
        i += 1
    return keys


class Screen:
    """The terminal: cbreak mode on stdin (when it is a terminal), the alternate screen, drawing by
    cursor home and overwrite (no clear, so no flicker)."""

    def __init__(self, out, keys_fd: int | None, color: bool):
        self.out, self.keys_fd, self.color = out, keys_fd, color
        self._saved: list[Any] | None = None

    def __enter__(self) -> Screen:
        if self.keys_fd is not None:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.keys_fd)
            tty.setcbreak(self.keys_fd)
        self.out.write(ENTER_SCREEN)
        self.out.flush()
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            self.out.write(LEAVE_SCREEN)
            self.out.flush()
        if self._saved is not None and self.keys_fd is not None:
            import termios

            with contextlib.suppress(Exception):
                termios.tcsetattr(self.keys_fd, termios.TCSADRAIN, self._saved)

    def size(self) -> tuple[int, int]:
        try:
            size = os.get_terminal_size(self.out.fileno())
            return size.columns, size.lines
        except (OSError, ValueError):
            return 80, 24

    def draw(self, lines: list[str], width: int, alarm: bool) -> None:
        parts = ["\x1b[H"]
        for i, line in enumerate(lines):
            text = line
            if i == 0 and self.color:
                text = ("\x1b[1;31m" if alarm else "\x1b[1m") + line + "\x1b[0m"
            # NB: erase-line only when the line is short: at the last column it would erase the last cell
            parts.append(text + ("\x1b[K" if live.cells(line) < width else ""))
            if i < len(lines) - 1:
                parts.append("\r\n")
        parts.append("\x1b[J")
        self.out.write("".join(parts))
        self.out.flush()


def run(gctx: GateContext, name: str, gate_filter: str | None) -> None:
    """The live view until q, Ctrl-C or SIGTERM."""
    out = sys.stdout
    keys_fd = sys.stdin.fileno() if sys.stdin.isatty() else None
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    options = live.Options(unicode=gctx.unicode, gate_filter=gate_filter, name=name, namespace=gctx.ns)
    reader = Reader(gctx, name, wake_w)
    state = {"keys": live.Keys() if keys_fd is not None else live.Keys(message="(stdin is not a terminal: no keys)")}
    actions: list[threading.Thread] = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGWINCH)}
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGWINCH, lambda *_: _poke(wake_w))
    try:
        with Screen(out, keys_fd, gctx.color) as screen:
            reader.start()
            next_tick = time.monotonic()
            while True:
                width, height = screen.size()
                snap = reader.snapshot
                if reader.reading_since is not None and time.monotonic() - reader.reading_since > SILENT_SECONDS:
                    silent = int(time.monotonic() - reader.reading_since)
                    snap = dataclasses.replace(snap, error=f"no answer for {silent}s")
                screen.draw(
                    live.frame(snap, state["keys"], gctx.now(), width, height, options), width, bool(snap.error)
                )
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_SECONDS
                fds = [wake_r] + ([keys_fd] if keys_fd is not None else [])
                ready, _, _ = select.select(fds, [], [], max(0.0, next_tick - time.monotonic()))
                if wake_r in ready:
                    with contextlib.suppress(OSError):
                        os.read(wake_r, 4096)
                if keys_fd is not None and keys_fd in ready:
                    data = os.read(keys_fd, 1024).decode("utf-8", "replace")
                    if not data:
                        keys_fd = None  # stdin closed: the view goes on without keys
                        continue
                    for key in split_keys(data):
                        warn = live.close_warnings(reader.snapshot.view, _refusal)
                        state["keys"], action = live.press(state["keys"], key, warn=warn)
                        if action is None:
                            continue
                        if action.verb == "quit":
                            return
                        actions.append(_start_action(gctx, action, name, state, reader, wake_w))
    except KeyboardInterrupt:
        return
    finally:
        reader.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        # NB: the pipe stays open: a reader or action thread may still poke it as the process ends


def _start_action(gctx, action: live.Action, name: str, state: dict, reader: Reader, wake: int) -> threading.Thread:
    def work() -> None:
        message = run_command(gctx, action, name)
        state["keys"] = live.done(state["keys"], message)
        reader.kick()
        _poke(wake)

    thread = threading.Thread(target=work, daemon=True, name=f"live-{action.verb}")
    thread.start()
    return thread
