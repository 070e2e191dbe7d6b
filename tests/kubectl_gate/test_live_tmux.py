"""The live view as a person sees it: ``kubectl gate show demo --watch`` run by the real kubectl in a
tmux pane, on the sandbox with the Flagger simulator and the gate sidecar; screens read with
``tmux capture-pane -p`` and compared with golden screens (normalised: ages, the namespace, and which
of Flagger's events is the latest, a race at 0.3 s ticks).

* a rollout waiting at confirm-promotion: the golden screen (100 columns), what is being approved;
  SIGTERM restores the terminal;
* ``p``, ``y``, a reason, Enter: the rollout is promoted and the screen says so; ``a`` rolls it back;
  ``o`` asks which gate and opens it;
* the API server down: the header says "reconnecting…", the last state stays; back up: it resumes;
  Ctrl-C restores the terminal;
* 60 columns: every line cut with an ellipsis, none wraps; ``q`` restores the terminal.
"""

# ruff: noqa: F811 - the e2e fixtures (rollouts, kube, ...) are imported by name, then requested by name
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from e2e.conftest import _real_flagger, flagger, kube, make_sidecar, rollouts, sidecar, sidecar_kubeconfig  # noqa: F401
from helpers.cli import GOLDEN
from helpers.tiers import SLOWDOWN, emulator_only

BIN = Path(sys.executable).parent
TMUX = shutil.which("tmux")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kubectl,
    pytest.mark.skipif(TMUX is None, reason="tmux is not installed: these tests read the screen a tmux pane shows"),
]


class Pane:
    """One tmux server of our own (its own socket), one pane running ``command``."""

    def __init__(self, command: str, *, width: int, height: int, env: dict[str, str]):
        self.socket = f"gate-live-{uuid.uuid4().hex[:8]}"
        self.env = env
        self._tmux("new-session", "-d", "-s", "live", "-x", str(width), "-y", str(height), command, env=env)

    def _tmux(self, *args: str, env: dict | None = None) -> str:
        proc = subprocess.run(
            [TMUX, "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            env=env or self.env,
            timeout=10,
        )
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {proc.stderr}")
        return proc.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "live")

    def keys(self, *keys: str, literal: bool = True) -> None:
        self._tmux("send-keys", "-t", "live", *(["-l"] if literal else []), *keys)

    def wait_for(self, predicate, what: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout * SLOWDOWN  # NB: real Flagger ticks every 10 s at least
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if predicate(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")

    def program_pid(self) -> int:
        """The pid of the program the pane's shell runs (kubectl execs the plugin in its place)."""
        shell = self._tmux("display-message", "-p", "-t", "live", "#{pane_pid}").strip()
        children = subprocess.run(["pgrep", "-P", shell], capture_output=True, text=True, timeout=10).stdout.split()
        assert len(children) == 1, children
        return int(children[0])

    def close(self) -> None:
        subprocess.run([TMUX, "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def normalise(screen: str, namespace: str) -> str:
    """Only what moves between runs: ages, seconds to the next check, the test's namespace, and which
    of Flagger's events is the latest (the simulator sends one or more every 0.3 s tick: which one a
    capture meets is a race; that the line shows one is asserted by the tests)."""
    text = screen.replace(namespace, "NS")
    text = re.sub(r"(?m)^Last event  \S.*$", "Last event  <the latest Flagger event>", text)
    # NB: an age keeps its width (the columns are aligned on it): "  3s ago" and " 36s ago" read "  Ns ago"
    text = re.sub(r"( *\d+)(s|m) ago", lambda m: "N".rjust(len(m.group(1))) + m.group(2) + " ago", text)
    text = re.sub(r"in \d+s", "in Ns", text)
    return "\n".join(line.rstrip() for line in text.rstrip("\n").splitlines()) + "\n"


def reaches_golden(pane: Pane, name: str, namespace: str, ready, timeout: float = 30.0) -> str:
    """Wait until the screen, normalised, is golden ``name`` (the simulator moves on its own, so the
    screen is awaited, not sampled once); ``ready`` says when to write it with KUBECTL_GATE_REGENERATE."""
    path = GOLDEN / name
    if os.environ.get("KUBECTL_GATE_REGENERATE"):
        screen = pane.wait_for(ready, f"a screen for {name}", timeout)
        path.write_text(normalise(screen, namespace))
    assert path.exists(), f"golden {name} is missing (write it with KUBECTL_GATE_REGENERATE=1 and review it)"
    want = path.read_text()
    try:
        return pane.wait_for(lambda s: normalise(s, namespace) == want, f"the screen of {name}", timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}\nwanted ({name}):\n{want}") from None


@pytest.fixture
def watch(kubeconfig, namespace, tmp_path):
    """``watch(width, height)``: the live view of CanaryGate demo in a new pane; the shell prints
    ``EXITED <code>`` when kubectl ends, so a test sees the terminal it leaves behind."""
    panes: list[Pane] = []
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "KUBECONFIG": kubeconfig,
        "KUBECACHEDIR": str(tmp_path / "kubecache"),
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }

    def start(width: int = 100, height: int = 40) -> Pane:
        command = f"kubectl gate show demo -n {namespace} --watch; echo EXITED $?; sleep 60"
        pane = Pane(command, width=width, height=height, env=env)
        panes.append(pane)
        return pane

    yield start
    for pane in panes:
        pane.close()


HELD = re.compile(r"confirm-promotion +◷ closed, holding +403 +\d+s ago")


def waiting_promotion(rollouts, kube, namespace) -> None:
    """A CanaryGate with confirm-promotion closed; image podinfo:2 shipped over podinfo:1, held at max weight."""
    from canarygate.kube.client import MERGE_PATCH

    rollouts.create(confirm_promotion="closed")
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/demo",
        body={"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "podinfo:2"}]}}}},
        content_type=MERGE_PATCH,
    )
    rollouts.wait_phase("demo", "WaitingPromotion")


def settled(screen: str) -> bool:
    """Held at confirm-promotion, with the sidecar's records of every hook called so far."""
    return "WaitingPromotion" in screen and bool(HELD.search(screen)) and "rollback                  • closed" in screen


def held_view(rollouts, kube, namespace, watch, width: int = 100) -> Pane:
    """The live view (``width`` x 40) of a rollout held at confirm-promotion (:func:`waiting_promotion`),
    once :func:`settled`."""
    waiting_promotion(rollouts, kube, namespace)
    pane = watch(width, 40)
    pane.wait_for(settled, "the rollout held at confirm-promotion")
    return pane


def test_a_rollout_waiting_for_promotion_shows_what_is_being_approved(rollouts, kube, watch, namespace):
    waiting_promotion(rollouts, kube, namespace)
    pane = watch(100, 40)
    screen = reaches_golden(pane, "live-waiting-promotion.txt", namespace, settled)
    assert "canary   demo          1/1    podinfo:2" in screen
    assert "primary  demo-primary  1/1    podinfo:1" in screen
    assert "Weight    40/40  failed checks 0/2" in screen  # NB: Flagger's status.canaryWeight reads 0 here
    assert all(len(line) <= 100 for line in screen.splitlines())
    assert re.search(r"(?m)^Last event  \S", screen)
    os.kill(pane.program_pid(), signal.SIGTERM)
    after = pane.wait_for(lambda s: "EXITED" in s, "kubectl to end on SIGTERM")
    assert after.strip() == "EXITED 0"  # the terminal restored: the shell's own screen is back


def test_promote_from_the_view_after_confirmation_and_a_reason(rollouts, kube, watch, namespace, kubectl):
    pane = held_view(rollouts, kube, namespace, watch)
    pane.keys("p")
    pane.wait_for(lambda s: "promote canarygate/demo (opens confirm-promotion)? [y/N]" in s, "the confirmation line")
    pane.keys("n")
    pane.wait_for(lambda s: "promote: cancelled" in s, "a cancelled promotion")
    assert rollouts.phase() == "WaitingPromotion"
    pane.keys("p")
    pane.wait_for(lambda s: "[y/N]" in s, "the confirmation line")
    pane.keys("y")
    pane.wait_for(lambda s: "reason (Enter sends, Esc cancels): _" in s, "the reason prompt")
    pane.keys("CAB-7 ok")
    pane.wait_for(lambda s: "reason (Enter sends, Esc cancels): CAB-7 ok_" in s, "the reason typed")
    pane.keys("Enter", literal=False)
    screen = pane.wait_for(
        lambda s: "canarygate/demo promoted: confirm-promotion opened for this promotion" in s and "Succeeded" in s,
        "the promotion on screen",
    )
    assert "Held at   - (no rollout in progress)" in screen
    assert "primary  demo-primary  1/1    podinfo:2" in pane.wait_for(
        lambda s: "demo-primary  1/1    podinfo:2" in s, "the primary running the new image"
    )
    events = kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].message}").stdout
    assert "CAB-7 ok" in events  # the reason, recorded as promote records it


@pytest.mark.disruptive
def test_an_api_outage_says_reconnecting_keeps_the_state_and_resumes(apiserver, rollouts, kube, watch, namespace):
    emulator_only(apiserver, "stops the API server (apiserver.faults.down)")
    pane = held_view(rollouts, kube, namespace, watch)
    try:
        apiserver.faults.down = True
        screen = pane.wait_for(lambda s: s.startswith("reconnecting… last update"), "the outage header")
        assert HELD.search(screen) and "WaitingPromotion" in screen  # the last state stays on screen
        first = int(re.search(r"last update (\d+)s ago", screen).group(1))
        later = pane.wait_for(
            lambda s: (m := re.search(r"last update (\d+)s ago", s)) is not None and int(m.group(1)) >= first + 2,
            "the age of the last update to move",
        )
        assert HELD.search(later)
    finally:
        apiserver.faults.down = False
    screen = pane.wait_for(lambda s: re.match(r"updated \ds ago · canarygate/demo", s), "the view to resume")
    assert not screen.startswith("reconnecting")
    pane.keys("C-c", literal=False)
    after = pane.wait_for(lambda s: "EXITED" in s, "kubectl to end on Ctrl-C")
    assert after.strip() == "EXITED 0"  # the terminal restored: the shell's own screen is back


def test_a_narrow_terminal_cuts_lines_with_an_ellipsis_and_q_restores_it(rollouts, kube, watch, namespace):
    waiting_promotion(rollouts, kube, namespace)
    pane = watch(60, 40)
    screen = reaches_golden(pane, "live-narrow-60.txt", namespace, settled)
    lines = screen.rstrip().splitlines()
    assert all(len(line) <= 60 for line in lines)
    assert any(line.endswith("…") and len(line) == 60 for line in lines)
    assert lines[-1].startswith("p promote")  # no line wrapped onto the next
    pane.keys("q")
    after = pane.wait_for(lambda s: "EXITED 0" in s, "kubectl to end")
    assert after.strip() == "EXITED 0"  # the alternate screen is gone: the shell's own screen is back


def test_open_a_chosen_gate_from_the_view(rollouts, kube, watch, namespace, kubectl):
    pane = held_view(rollouts, kube, namespace, watch)
    pane.keys("o")
    pane.wait_for(lambda s: "  5 confirm-promotion (closed)" in s, "the gates to choose from")
    pane.keys("5")
    pane.wait_for(lambda s: "open confirm-promotion canarygate/demo? [y/N]" in s, "the confirmation line")
    pane.keys("y")
    pane.keys("go: CAB-9")
    pane.keys("Enter", literal=False)
    pane.wait_for(
        lambda s: "gate confirm-promotion of canarygate/demo opened for this rollout" in s and "✔ Succeeded" in s,
        "the gate opened, then the promotion, on screen",
    )
    events = kubectl("get", "events", "-n", namespace, "-o", "jsonpath={.items[*].message}").stdout
    assert "go: CAB-9" in events  # the reason, recorded as open records it


def test_off_a_terminal_a_page_per_change_and_json_lines(rollouts, kubeconfig, namespace):
    rollouts.create(confirm_promotion="closed")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "KUBECONFIG": kubeconfig}
    for args, first in ((), "Name:"), (("-o", "json"), '{"'):
        with subprocess.Popen(
            [str(BIN / "kubectl"), "gate", "show", "demo", "-n", namespace, "--watch", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        ) as proc:
            try:
                line = proc.stdout.readline()
                assert line.startswith(first), line
                assert "\x1b" not in line  # no screen control off a terminal
            finally:
                proc.terminate()
                proc.wait(10)


@pytest.mark.disruptive
def test_an_api_that_answers_nothing_is_an_outage_too(apiserver, rollouts, kube, watch, namespace):
    emulator_only(apiserver, "hangs the API server (apiserver.faults.hang)")
    pane = held_view(rollouts, kube, namespace, watch, width=160)
    try:
        apiserver.faults.hang = True
        screen = pane.wait_for(
            lambda s: s.startswith("reconnecting… last update") and "no answer for" in s.splitlines()[0],
            "the silent API server on the header",
            timeout=20,
        )
        assert HELD.search(screen)
    finally:
        apiserver.faults.hang = False
    pane.wait_for(lambda s: re.match(r"updated \ds ago · canarygate/demo", s), "the view to resume")


def test_abort_from_the_view_rolls_the_release_back(rollouts, kube, watch, namespace):
    pane = held_view(rollouts, kube, namespace, watch, width=120)
    pane.keys("a")
    pane.wait_for(lambda s: "abort canarygate/demo? [y/N]" in s, "the confirmation line")
    pane.keys("y")
    pane.keys("bad canary")
    pane.keys("Enter", literal=False)
    screen = pane.wait_for(lambda s: "✖ Failed" in s and "Rolled back  " in s, "the rollback on screen")
    assert "primary  demo-primary  1/1    podinfo:1" in screen  # the primary kept the old image
    assert rollouts.phase() == "Failed"
