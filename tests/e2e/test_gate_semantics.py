"""End to end: gates that mean what they say in Flagger (issue 8), on the sandbox and on real Flagger.

Covers: API outages of the sidecar's own connection (a loopback TCP proxy between it and the API
server, cut or silenced), longer than its fail-closed bound, twice in a row, while a rollout waits at
confirm-promotion, at a held traffic step (pre-rollout every tick) and at confirm-rollout: no failed
check, no traffic step, no rollback, and the rollout goes on once approved; a one-step approval of
confirm-promotion promotes a blue/green rollout (two confirm-promotion ticks); an approval of one
revision does not start a newer one deployed before Flagger's next check, nor a ConfigMap-only or
Secret-only change (the entries recorded are Flagger's own trackedConfigs); outages during A/B
iterations promote and roll back nothing, and one at A/B's first iteration routes no traffic (a failed
check instead); show and abort on a canary
that is not ready say Flagger calls no gate until it is, and the rollback happens once it is. Weights and phases are
read from the Canary's status, so the tests run against the simulator and real Flagger alike.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from helpers.tiers import REAL, SLOWDOWN

pytestmark = pytest.mark.e2e
#: For tests that wait for a whole rollout after their checks: real Flagger's ticks are 10 s.
WHOLE_ROLLOUT = pytest.mark.timeout(600 if REAL else 120)


class ApiProxy:
    """A loopback TCP proxy to the API server that can cut (``down``) or silence (``silent``) it.

    ``down``: open connections are closed and new ones refused at once (unreachable). ``silent``:
    connections stay open but nothing is forwarded either way (a partition). Threads end with it.
    """

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.down = False
        self.silent = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, *, silent: bool = False) -> None:
        if silent:
            self.silent = True
            return
        self.down = True
        with self._lock:
            for sock in list(self._open):
                _close(sock)
            self._open.clear()

    def restore(self) -> None:
        self.down = self.silent = False

    def close(self) -> None:
        self._stopped.set()
        self.cut()
        _close(self._server)

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.down:
                _close(client)
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            src.settimeout(0.2)
        except OSError:  # cut (closed) before this thread started
            _close(dst)
            return
        while not self._stopped.is_set():
            try:
                data = src.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            if self.silent:
                continue  # a partition: what was sent is lost
            try:
                dst.sendall(data)
            except OSError:
                break
        _close(src)
        _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


@pytest.fixture
def cut_sidecar(sidecar_kubeconfig, make_sidecar, rollouts, tmp_path):
    """A sidecar whose API connection runs through an :class:`ApiProxy`; rollouts point at it."""
    config = yaml.safe_load(Path(sidecar_kubeconfig).read_text())
    cluster = config["clusters"][0]["cluster"]
    scheme, _, rest = cluster["server"].partition("://")
    host, _, port = rest.split("/", 1)[0].rpartition(":")
    proxy = ApiProxy((host.strip("[]"), int(port)))
    cluster["server"] = f"{scheme}://{host}:{proxy.port}"
    path = tmp_path / "sidecar-through-proxy"
    path.write_text(yaml.safe_dump(config))
    process = make_sidecar("--kubeconfig", str(path))
    rollouts.endpoint = process.url
    yield process, proxy
    proxy.close()


def status(rollouts) -> dict:
    return rollouts.canary().get("status") or {}


def outage(process, proxy, rollouts, wait_until, *, silent: bool, ticks: int = 3) -> list[dict]:
    """Cut the sidecar off the API server until it fails closed, let Flagger run ``ticks`` ticks (more than
    the threshold), restore, and wait until it answers again; the Canary's status after each tick."""
    proxy.cut(silent=silent)
    seen = []
    try:
        wait_until(lambda: process.get("/readyz")[0] == 503, what="the sidecar to fail closed")
        for _ in range(ticks):
            rollouts.wait_more_ticks(1)
            seen.append(status(rollouts))
        assert process.get("/readyz")[0] == 503, "the outage must outlast the ticks"
    finally:
        proxy.restore()
    wait_until(lambda: process.get("/readyz")[0] == 200, timeout=30, what="the sidecar to answer again")
    return seen


def test_outages_at_confirm_promotion_neither_fail_checks_nor_roll_back(cut_sidecar, rollouts, wait_until):
    process, proxy = cut_sidecar
    rollouts.create(confirm_promotion="closed")  # threshold 2
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    for silent in (False, True):
        for seen in outage(process, proxy, rollouts, wait_until, silent=silent):
            assert seen.get("phase") == "WaitingPromotion", seen
            assert int(seen.get("failedChecks") or 0) == 0, seen
    rollouts.set_gate("confirm-promotion", "opened")
    rollouts.wait_phase("demo", "Succeeded")


def test_outages_at_a_held_first_step_take_no_step_and_fail_no_check(cut_sidecar, rollouts, wait_until):
    process, proxy = cut_sidecar
    rollouts.create(confirm_traffic_increase="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Progressing")
    for silent in (True, False):
        for seen in outage(process, proxy, rollouts, wait_until, silent=silent):
            assert seen.get("phase") == "Progressing", seen
            assert int(seen.get("canaryWeight") or 0) == 0, seen  # pre-rollout every tick, no traffic step
            assert int(seen.get("failedChecks") or 0) == 0, seen
    rollouts.set_gate("confirm-traffic-increase", "opened")
    rollouts.wait_phase("demo", "Succeeded", timeout=60)


def test_outages_at_confirm_rollout_keep_the_revision_waiting(cut_sidecar, rollouts, wait_until):
    process, proxy = cut_sidecar
    rollouts.create(confirm_rollout="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Waiting")
    for silent in (False, True):
        for seen in outage(process, proxy, rollouts, wait_until, silent=silent, ticks=2):
            assert seen.get("phase") == "Waiting", seen
    rollouts.set_gate("confirm-rollout", "opened")
    rollouts.wait_phase("demo", "Succeeded", timeout=60)


AB_TESTING = {"interval": "10s", "threshold": 2, "iterations": 4, "match": [{"headers": {"x-canary": {"exact": "in"}}}]}


@WHOLE_ROLLOUT
def test_outages_during_ab_iterations_neither_promote_nor_roll_back(cut_sidecar, rollouts, wait_until):
    # runAB: an iteration after the first only counts (same routes, iterations + 1); promotion asks
    # confirm-promotion. So the checks pass during the outage, iterations may advance, and nothing else.
    process, proxy = cut_sidecar
    rollouts.create(confirm_promotion="closed", analysis=AB_TESTING)
    rollouts.new_revision()
    wait_until(lambda: int(status(rollouts).get("iterations") or 0) >= 1, timeout=60, what="the first A/B iteration")
    for silent in (False, True):
        for seen in outage(process, proxy, rollouts, wait_until, silent=silent):
            assert seen.get("phase") in ("Progressing", "WaitingPromotion"), seen  # no promotion, no rollback
            assert int(seen.get("failedChecks") or 0) == 0, seen
    rollouts.wait_phase("demo", "WaitingPromotion", timeout=60)
    rollouts.set_gate("confirm-promotion", "opened")
    rollouts.wait_phase("demo", "Succeeded", timeout=60)


@WHOLE_ROLLOUT
def test_an_outage_at_the_first_ab_iteration_routes_no_traffic(cut_sidecar, rollouts, kube, namespace, wait_until):
    # The first A/B iteration follows pre-rollout with no confirm gate between and routes the matched
    # traffic to the canary: during an outage pre-rollout answers 503 (a failed check), so no iteration.
    from canarygate.kube.client import MERGE_PATCH

    def canary_ready(ready: bool) -> None:
        kube.request(
            "PATCH",
            f"/apis/apps/v1/namespaces/{namespace}/deployments/demo",
            content_type=MERGE_PATCH,
            body={"metadata": {"annotations": {"sandbox.deployments/ready": None if ready else "false"}}},
        )

    process, proxy = cut_sidecar
    rollouts.create(analysis={**AB_TESTING, "threshold": 5})
    canary_ready(False)  # Flagger calls no hook until the canary is ready: the first tick waits for the outage
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Progressing")
    proxy.cut()
    try:
        wait_until(lambda: process.get("/readyz")[0] == 503, what="the sidecar to fail closed")
        canary_ready(True)
        ticks = [t for t in rollouts.wait_more_ticks(2) if t]
        seen = status(rollouts)
        assert process.get("/readyz")[0] == 503, "the outage must outlast the ticks"
    finally:
        proxy.restore()
    assert ticks
    assert seen.get("phase") == "Progressing", seen
    assert int(seen.get("iterations") or 0) == 0 and int(seen.get("canaryWeight") or 0) == 0, seen
    assert 1 <= int(seen.get("failedChecks") or 0) < 5, seen  # failed checks, below the threshold
    wait_until(lambda: process.get("/readyz")[0] == 200, timeout=30, what="the sidecar to answer again")
    rollouts.wait_phase("demo", "Succeeded", timeout=90)


def test_one_step_promotion_promotes_a_blue_green_rollout(rollouts, wait_until):
    rollouts.create(confirm_promotion="closed", analysis={"interval": "10s", "threshold": 2, "iterations": 2})
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    rollouts.set_gate("confirm-promotion", "opened", scope="step")  # what kubectl gate promote writes
    rollouts.wait_phase("demo", "Succeeded", timeout=60)
    wait_until(
        lambda: "gate.piggysec.com/confirm-promotion" not in (rollouts.gate()["metadata"].get("annotations") or {}),
        what="the promotion step to end with the promotion",
    )


@WHOLE_ROLLOUT
def test_an_approval_for_one_revision_does_not_start_a_newer_one(rollouts, kube, namespace, wait_until):
    from canarygate import rollouts as marks
    from canarygate.annotations import LiveChange
    from canarygate.kube.client import MERGE_PATCH
    from canarygate.kube.resources import CANARYGATES
    from canarygate.model import parse_canary

    rollouts.create(confirm_rollout="closed")
    rollouts.new_revision(version="2")
    rollouts.wait_phase("demo", "Waiting")
    seen = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/demo")  # what the approver saw
    # Revision 3 lands, then the approval of revision 2 (recorded as kubectl gate open records it while
    # Waiting), both before Flagger's next check could start anything.
    rollouts.new_revision(version="3")
    mark = marks.mark_of(parse_canary(rollouts.canary()))
    approval = LiveChange(
        gate="confirm-rollout",
        state="opened",
        by="alice",
        at="2026-11-22T10:00:00Z",
        rollout=mark.__class__(mark.active, mark.since, mark.revision, marks.template_hash(seen)),
    )
    kube.request(
        "PATCH",
        CANARYGATES.path(namespace, "demo"),
        content_type=MERGE_PATCH,
        body={"metadata": {"annotations": {approval.key: approval.encode()}}},
    )
    for _ in range(3):
        rollouts.wait_more_ticks(1)
        assert rollouts.phase() == "Waiting"  # revision 3 was approved by nobody
    rollouts.set_gate("confirm-rollout", "opened")  # an approval of what is deployed now
    rollouts.wait_phase("demo", "Succeeded", timeout=60)


def test_show_and_abort_tell_a_canary_that_is_not_ready(rollouts, kube, namespace, kubeconfig, wait_until):
    from click.testing import CliRunner

    from canarygate.kube.client import MERGE_PATCH
    from kubectl_gate.cli import cli

    def gate(*args):
        return CliRunner().invoke(cli, [*args, "--kubeconfig", kubeconfig, "-n", namespace])

    rollouts.create(confirm_promotion="closed")
    # The new revision's pods never become ready (the Deployment status stand-in holds it, as a
    # crash-looping pod would): Flagger starts the rollout, then calls no hook at all.
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/demo",
        content_type=MERGE_PATCH,
        body={"metadata": {"annotations": {"sandbox.deployments/ready": "false"}}},
    )
    rollouts.new_revision()
    rollouts.wait_phase("demo", "Progressing")
    page = wait_until(
        lambda: (out := gate("show", "demo").stdout) and "is not ready" in out and out,
        what="show to tell the canary is not ready",
    )
    assert "canary Deployment demo is not ready" in page and "Flagger calls no gate, rollback included" in page
    aborted = gate("abort", "demo", "--reason", "crash loop")
    assert aborted.exit_code == 0, aborted.output
    assert "rolls back once the Deployments are ready" in aborted.stdout
    assert "nothing Canary Gate writes reaches Flagger before then" in aborted.stderr
    time.sleep(1.0 * SLOWDOWN)  # about 3 intervals: Flagger still calls nothing, rollback included
    assert rollouts.phase() == "Progressing"
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/demo",
        content_type=MERGE_PATCH,
        body={"metadata": {"annotations": {"sandbox.deployments/ready": None}}},
    )
    rollouts.wait_phase("demo", "Failed", timeout=60)  # ready again: the rollback gate is read


def test_the_canarygate_status_follows_the_canary_and_records_flaggers_calls(rollouts, wait_until):
    rollouts.create(confirm_promotion="closed")
    rollouts.new_revision()
    rollouts.wait_phase("demo", "WaitingPromotion")
    # Flagger records its "waiting for promotion approval" event with the phase it had before; the
    # CanaryGate's status still shows the Canary's own phase, and the calls it answered.
    status = wait_until(
        lambda: (
            (s := rollouts.gate().get("status") or {}).get("phase") == "WaitingPromotion"
            and (s.get("calls") or {}).get("confirm-promotion")
            and s
        ),
        what="the CanaryGate's status to show WaitingPromotion and the confirm-promotion call",
    )
    assert status["calls"]["confirm-promotion"]["answer"] == 403
    assert status["calls"]["rollout"]["answer"] == 200
    assert status["holding"] == "confirm-promotion"
    rollouts.set_gate("confirm-promotion", "opened")
    rollouts.wait_phase("demo", "Succeeded")
    wait_until(
        lambda: (rollouts.gate().get("status") or {}).get("phase") == "Succeeded",
        what="the CanaryGate's status to show Succeeded",
    )


def _approve_revision(kube, namespace, rollouts, configs) -> None:
    """Write an approval of confirm-rollout while Waiting, as ``kubectl gate open`` records it, naming
    the template deployed now and ``configs`` (None: as for an approver who may not read them all)."""
    from dataclasses import replace

    from canarygate import rollouts as marks
    from canarygate.annotations import LiveChange
    from canarygate.kube.client import MERGE_PATCH
    from canarygate.kube.resources import CANARYGATES
    from canarygate.model import parse_canary

    deployment = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/demo")
    mark = marks.mark_of(parse_canary(rollouts.canary()))
    approval = LiveChange(
        gate="confirm-rollout",
        state="opened",
        by="alice",
        at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        rollout=replace(
            mark,
            template=marks.template_hash(deployment),
            configs=None if configs is None else tuple(sorted(configs.items())),
        ),
    )
    kube.request(
        "PATCH",
        CANARYGATES.path(namespace, "demo"),
        content_type=MERGE_PATCH,
        body={"metadata": {"annotations": {approval.key: approval.encode()}}},
    )


def _config_entries(kube, namespace) -> dict:
    from canarygate.kube import revisions

    deployment = kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/demo")
    return revisions.config_entries(kube, namespace, deployment["spec"]["template"])


@pytest.fixture
def sidecar_reads_secrets(kube):
    """deploy/sidecar/track-secrets applied, as an overlay adds it; removed after the test."""
    root = Path(__file__).resolve().parents[2] / "deploy" / "sidecar" / "track-secrets"
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    made = []
    for plural, name in (("clusterroles", "clusterrole.yaml"), ("clusterrolebindings", "clusterrolebinding.yaml")):
        body = yaml.safe_load((root / name).read_text())
        kube.request("POST", f"{rbac}/{plural}", body=body)
        made.append(f"{rbac}/{plural}/{body['metadata']['name']}")
    yield
    for path in made:
        kube.request("DELETE", path)


@WHOLE_ROLLOUT
def test_a_config_only_change_while_waiting_ends_the_approval(
    rollouts, kube, namespace, wait_until, sidecar_reads_secrets
):
    from canarygate.kube.client import MERGE_PATCH
    from canarygate.kube.resources import CANARIES
    from canarygate.model import parse_canarygate

    def change(kind: str, value: str) -> None:
        path = f"/api/v1/namespaces/{namespace}/{kind}s/demo-{kind}"
        data = (
            {"mode": value}
            if kind == "configmap"
            else {"token": __import__("base64").b64encode(value.encode()).decode()}
        )
        kube.request("PATCH", path, content_type=MERGE_PATCH, body={"data": data})

    def stays_waiting(why: str) -> None:
        for _ in range(3):
            rollouts.wait_more_ticks(1)
            assert rollouts.phase() == "Waiting", why

    rollouts.create(confirm_rollout="closed")
    for kind, body in (
        ("ConfigMap", {"data": {"mode": "a"}}),
        ("Secret", {"type": "Opaque", "stringData": {"token": "a"}}),
    ):
        meta = {"name": f"demo-{kind.lower()}"}
        kube.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/{kind.lower()}s",
            body={"apiVersion": "v1", "kind": kind, "metadata": meta, **body},
        )
    # The revision that waits: the template now reads the ConfigMap and the Secret (envFrom).
    kube.request(
        "PATCH",
        f"/apis/apps/v1/namespaces/{namespace}/deployments/demo",
        content_type="application/strategic-merge-patch+json",
        body={
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "envFrom": [
                                    {"configMapRef": {"name": "demo-configmap"}},
                                    {"secretRef": {"name": "demo-secret"}},
                                ],
                            }
                        ]
                    }
                }
            }
        },
    )
    rollouts.wait_phase("demo", "Waiting")

    # ConfigMap-only: approved as it was, changed before Flagger's next check.
    seen = _config_entries(kube, namespace)
    assert sorted(seen) == ["configmap/demo-configmap", "secret/demo-secret"]
    change("configmap", "b")
    _approve_revision(kube, namespace, rollouts, seen)
    stays_waiting("a ConfigMap-only change is a revision nobody approved")

    # Secret-only, the same way.
    seen = _config_entries(kube, namespace)
    change("secret", "b")
    _approve_revision(kube, namespace, rollouts, seen)
    stays_waiting("a Secret-only change is a revision nobody approved")

    # An approver who may not read the Secret records no configs: the sidecar binds the approval to
    # what it reads when it sees it (Flagger held meanwhile by spec.suspend, so that nothing starts
    # between the binding and the change), and a change after that ends it too.
    kube.request("PATCH", CANARIES.path(namespace, "demo"), content_type=MERGE_PATCH, body={"spec": {"suspend": True}})
    _approve_revision(kube, namespace, rollouts, None)
    bound = wait_until(
        lambda: (
            (c := parse_canarygate(rollouts.gate()).live.get("confirm-rollout")) and c.rollout.configs is not None and c
        ),
        what="the sidecar to bind the approval to the configs",
    )
    assert dict(bound.rollout.configs) == _config_entries(kube, namespace)
    change("secret", "c")
    kube.request("PATCH", CANARIES.path(namespace, "demo"), content_type=MERGE_PATCH, body={"spec": {"suspend": False}})
    stays_waiting("a Secret changed after the sidecar bound the approval")

    # An approval of what is deployed now starts it.
    rollouts.set_gate("confirm-rollout", "opened")
    rollouts.wait_phase("demo", ("Progressing", "Succeeded"), timeout=60)
    recorded = rollouts.canary()["status"].get("trackedConfigs") or {}
    assert recorded == _config_entries(kube, namespace)  # the entries are Flagger's own
