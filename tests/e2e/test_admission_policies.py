"""The shipped admission policies (deploy/policies) on the real API server.

Each test installs copies of the shipped ValidatingAdmissionPolicies and Bindings under names unique
to this run, bound only to namespaces carrying this run's label (other tests share the cluster), and
deletes them after. Users are tokens of the cluster's webhook, bound to copies of deploy/roles.

Covers (a) a live change must name its author: real kubectl and ``kubectl gate`` as several users,
forged, duplicated and escaped ``by`` keys, the README's folded form, system:masters too; the
sidecar's own writes (remove, rebind) allowed and nothing else; (b) the opt-in ``approve`` verb,
by namespace label; (c) a cross-namespace target only for who may update Canaries there.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import kubernetes
import pytest
import yaml
from helpers.as_user import AsUser, demo_canarygate
from helpers.rbac import SIDECAR_USER
from helpers.tiers import REAL

from canarygate.annotations import LiveChange, RolloutMark
from canarygate.kube import canarygates
from canarygate.kube.client import Kube
from canarygate.model import parse_canarygate

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not REAL, reason="the emulator evaluates no ValidatingAdmissionPolicy: these policies need a real API server"
    ),
]

ROOT = Path(__file__).resolve().parents[2]
RUN = uuid.uuid4().hex[:8]
RUN_LABEL = "canarygate-e2e/policies"
FORGED = "alice@example.com"


def shipped(directory: str, suffix: str) -> list[dict]:
    """The shipped objects of deploy/<directory>, renamed with ``suffix``; Bindings limited to
    namespaces labelled with this run (their own selector kept)."""
    docs = []
    for path in sorted((ROOT / "deploy" / directory).glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            doc["metadata"]["name"] += suffix
            if doc["kind"] == "ValidatingAdmissionPolicyBinding":
                doc["spec"]["policyName"] += suffix
                selector = doc["spec"].setdefault("matchResources", {}).setdefault("namespaceSelector", {})
                selector.setdefault("matchLabels", {})[RUN_LABEL] = RUN
            docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def installed(apiserver, kubectl, crds):
    """The policies and roles of this run, installed once for the module and removed after."""
    objects = shipped("policies", f"-{RUN}") + shipped("roles", f"-{RUN}")
    try:
        for obj in objects:
            apiserver.apply(obj)
        yield {o["metadata"]["name"].removesuffix(f"-{RUN}"): o["metadata"]["name"] for o in objects}
    finally:
        for obj in reversed(objects):
            kubectl("delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found", "--wait=false")


class Bench(AsUser):
    """One test's namespace under this run's policies, its users and a CanaryGate in it."""

    def __init__(self, apiserver, api_client, namespace, names, tmp_path, kubectl):
        self.apiserver, self.api, self.ns, self.names, self.tmp = apiserver, api_client, namespace, names, tmp_path
        self.kubectl_fixture = kubectl
        self.label(namespace)

    def label(self, namespace: str, **extra: str) -> None:
        kubernetes.client.CoreV1Api(self.api).patch_namespace(
            namespace, {"metadata": {"labels": {RUN_LABEL: RUN, **extra}}}
        )

    def user(self, name: str, *roles: str, namespace: str | None = None, groups=()) -> str:
        """A kubeconfig for ``name``, bound in ``namespace`` to the shipped ClusterRoles ``roles``
        (each of which reads CanaryGates: returned once that grant has reached the authorizer)."""
        namespace = namespace or self.ns
        token = f"{name}-{uuid.uuid4().hex}"
        self.apiserver.add_token(token, name, groups)
        for role in roles:
            self.bind(name, role, namespace)
        config = self.apiserver.write_kubeconfig(
            self.tmp / f"{name}-{namespace}.kubeconfig", token=token, namespace=namespace
        )
        if roles:
            self.wait_can(config, "get", "canarygates.piggysec.com", namespace)
        return config

    def bind(self, user: str, role: str, namespace: str, kind: str = "ClusterRole") -> None:
        ref = self.names.get(role, role) if kind == "ClusterRole" else role
        self.apiserver.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{user.replace(':', '-').replace('@', '-')}-{role}", "namespace": namespace},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": ref},
                "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}],
            }
        )

    def role(self, name: str, rules: list[dict], namespace: str | None = None) -> None:
        self.apiserver.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": name, "namespace": namespace or self.ns},
                "rules": rules,
            }
        )

    def gate_object(self, name: str = "demo", target_ns: str | None = None) -> dict:
        return demo_canarygate(name, self.ns, target_ns)

    def create_gate(self, name: str = "demo", target_ns: str | None = None) -> dict:
        return self.apiserver.apply(self.gate_object(name, target_ns))

    def annotations(self, name: str = "demo") -> dict[str, str]:
        raw = self.kubectl_fixture("get", "canarygate", name, "-n", self.ns, "-o", "json").stdout
        return {
            k: v
            for k, v in (json.loads(raw)["metadata"].get("annotations") or {}).items()
            if k.startswith("gate.piggysec.com/")
        }

    def annotate(self, config: str, gate: str, value: str | None, name: str = "demo") -> subprocess.CompletedProcess:
        arg = f"gate.piggysec.com/{gate}-" if value is None else f"gate.piggysec.com/{gate}={value}"
        return self.kubectl(config, "annotate", "--overwrite", "canarygate", name, arg)

    def wait_enforced(self, config: str) -> None:
        """Policies take a moment to reach the API server's admission: wait until a forged ``by`` is
        refused (server-side dry run, so nothing is written)."""
        forged = dict(self.gate_object("probe"))
        forged["metadata"] = {
            **forged["metadata"],
            "annotations": {"gate.piggysec.com/rollout": live("opened", FORGED)},
        }
        deadline = time.monotonic() + 60
        while True:
            proc = self.kubectl(config, "create", "--dry-run=server", "-f", "-", input=json.dumps(forged))
            if proc.returncode != 0 and "canary-gate-live-changes" in proc.stderr:
                return
            assert time.monotonic() < deadline, f"policies not enforced after 60 s: {proc.stdout}{proc.stderr}"
            time.sleep(0.5)


def live(state: str, by: str, scope: str = "rollout", **rollout) -> str:
    return LiveChange(
        gate="rollout",
        state=state,
        scope=scope,
        by=by,
        at="2026-12-01T10:00:00Z",
        reason="CAB-1",
        rollout=RolloutMark(**rollout),
    ).encode()


@pytest.fixture
def bench(apiserver, api_client, namespace, installed, tmp_path, kubectl) -> Bench:
    bench = Bench(apiserver, api_client, namespace, installed, tmp_path, kubectl)
    bench.wait_enforced(apiserver.kubeconfig)
    return bench


# -- (a) who made a change ------------------------------------------------------------------------------


def test_kubectl_gate_changes_pass_and_name_their_author(bench):
    bench.create_gate()
    carol = bench.user("carol@example.com", "canary-gate-approver")
    for args in (
        ("open", "confirm-promotion", "demo", "--reason", "CAB-7"),
        ("open", "confirm-rollout", "demo"),
        ("close", "rollback", "demo", "--sticky"),
        ("pause", "demo"),
    ):
        proc = bench.gate(carol, *args)
        assert proc.returncode == 0, proc.stderr
    written = {k: json.loads(v) for k, v in bench.annotations().items()}
    assert written and {v["by"] for v in written.values()} == {"carol@example.com"}
    assert bench.gate(carol, "resume", "demo").returncode == 0  # removals pass too


#: A live change by dave up to its rollout mark (the tests append one).
HEAD = '{"state":"opened","scope":"rollout","by":"dave","at":"2026-12-01T10:00:00Z"'


@pytest.mark.parametrize(
    "value, why",
    [
        (live("opened", FORGED), "another user's name"),
        (live("opened", ""), "no name"),
        (live("opened", "dave").replace('"by":"dave"', '"by":"dave","by":"' + FORGED + '"'), "a second by key"),
        (live("opened", "dave")[:-1] + ',"\\u0062y":"' + FORGED + '"}', "an escaped second by key"),
        ('{"by":"' + FORGED + '","state":"opened","scope":"rollout","by":"dave","at":"x"}', "keys out of order"),
        (live("opened", "dave").replace('"opened"', '"open"'), "a state spelling the policy does not know"),
        ("opened", "not JSON"),
        (
            HEAD + ',"rollout":{"a":"{"}, "by":"' + FORGED + '", "z":{"q":"}"}}',
            "a second by key behind braces inside the rollout mark's strings",
        ),
        (HEAD + ',"rollout":{"configs":{"a":{"b":"c"}}}}', "a rollout mark nested deeper"),
    ],
)
def test_a_live_change_that_does_not_name_its_author_is_refused(bench, value, why):
    bench.create_gate()
    dave = bench.user("dave", "canary-gate-approver")
    before = bench.annotations()
    proc = bench.annotate(dave, "rollout", value)
    assert proc.returncode != 0, f"{why}: accepted"
    assert "canary-gate-live-changes" in proc.stderr, proc.stderr
    assert ('"by" must be "dave"' in proc.stderr) or ("not in the documented form" in proc.stderr), proc.stderr
    assert bench.annotations() == before


def test_hand_written_changes_in_the_documented_form_pass_folded_or_not(bench):
    bench.create_gate()
    dave = bench.user("dave", "canary-gate-approver")
    folded = (
        '{"state":"opened","scope":"rollout","by":"dave","at":"2026-11-22T10:00:00Z",\n '
        '"reason":"CAB-123","rollout":{"active":true,"since":"2026-11-22T09:58:10Z"}}'
    )
    assert bench.annotate(dave, "confirm-promotion", folded).returncode == 0
    bound = (
        '{"state":"opened","scope":"step","by":"dave","at":"2026-11-22T10:00:00Z","rollout":{"active":false,'
        '"since":"","template":"5d9c","configs":{"configmap/podinfo-config":"a1b2","secret/podinfo":"c3d4"}}}'
    )
    proc = bench.annotate(dave, "confirm-rollout", bound)  # an approval bound to a revision and its configs
    assert proc.returncode == 0, proc.stderr
    sticky = '{ "state" : "closed", "scope" : "sticky", "by" : "dave", "at" : "2026-11-22T10:00:00Z" }'
    proc = bench.annotate(dave, "rollback", sticky)
    assert proc.returncode == 0, proc.stderr
    assert bench.annotations()["gate.piggysec.com/rollback"] == sticky


def test_names_needing_json_escapes_are_compared_as_the_cli_writes_them(bench):
    bench.create_gate()
    odd = 'o"brien\\ops'
    config = bench.user(odd, "canary-gate-approver")
    proc = bench.gate(config, "open", "confirm-promotion", "demo")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(bench.annotations()["gate.piggysec.com/confirm-promotion"])["by"] == odd
    assert bench.annotate(config, "rollout", live("opened", "o")).returncode != 0


def test_cluster_admins_cannot_forge_an_author_either(bench, apiserver):
    bench.create_gate()
    proc = bench.annotate(apiserver.kubeconfig, "rollout", live("opened", FORGED))
    assert proc.returncode != 0 and "canary-gate-live-changes" in proc.stderr
    # A whole object carrying a forged change is refused at create as well.
    obj = bench.gate_object("forged")
    obj["metadata"]["annotations"] = {"gate.piggysec.com/rollout": live("opened", FORGED)}
    created = bench.kubectl(apiserver.kubeconfig, "create", "-f", "-", input=json.dumps(obj))
    assert created.returncode != 0 and "canary-gate-live-changes" in created.stderr
    me = bench.kubectl(apiserver.kubeconfig, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout
    obj["metadata"]["annotations"] = {"gate.piggysec.com/rollout": live("opened", me)}  # in its own name
    created = bench.kubectl(apiserver.kubeconfig, "create", "-f", "-", input=json.dumps(obj))
    assert created.returncode == 0, created.stderr


def test_the_sidecar_may_remove_and_rebind_changes_and_nothing_else(bench, sidecar_kubeconfig, apiserver, request):
    bench.create_gate()
    dave = bench.user("dave", "canary-gate-approver")
    sidecar = Kube(kubernetes.config.new_client_from_config(config_file=sidecar_kubeconfig), timeout=10)
    request.addfinalizer(sidecar.close)  # NB: its TLS connections, not the garbage collector's
    gate = parse_canarygate(bench.create_gate())
    # Hand-written, folded: the sidecar's rewrite is canonical, its fields must still match.
    idle = (
        '{"state":"opened", "scope":"step", "by":"dave", "at":"2026-12-01T10:00:00Z",\n'
        ' "reason":"CAB-1", "rollout":{"active":false,"since":""}}'
    )
    assert bench.annotate(dave, "confirm-promotion", idle).returncode == 0
    assert bench.annotate(dave, "confirm-rollout", live("opened", "dave", scope="step")).returncode == 0
    raw = json.loads(bench.kubectl(apiserver.kubeconfig, "get", "canarygate", "demo", "-o", "json").stdout)
    changes = parse_canarygate(raw).live
    bound = changes["confirm-promotion"].bound_to(
        RolloutMark(active=True, since="2026-12-01T10:05:00Z", revision="abc123")
    )
    path = "/metadata/annotations/gate.piggysec.com~1confirm-promotion"
    bind = bench.kubectl(
        sidecar_kubeconfig,
        "patch",
        "canarygate",
        "demo",
        "--type",
        "json",
        "-o",
        "json",
        "-p",
        json.dumps(
            [{"op": "test", "path": path, "value": idle}, {"op": "replace", "path": path, "value": bound.encode()}]
        ),
    )
    assert bind.returncode == 0, bind.stderr
    # NB: read from the answer: any sidecar on this cluster may end that change at once (no Canary runs).
    written = json.loads(bind.stdout)["metadata"]["annotations"]["gate.piggysec.com/confirm-promotion"]
    assert json.loads(written)["rollout"]["revision"] == "abc123" and json.loads(written)["by"] == "dave"
    gate = parse_canarygate(raw)
    assert canarygates.replace_live_change(sidecar, gate, changes["confirm-rollout"], None)  # consume, as it does
    assert "gate.piggysec.com/confirm-rollout" not in bench.annotations()
    # Unbound changes stay (no sidecar ends them): each refused rewrite below leaves this one as it is.
    assert bench.annotate(dave, "confirm-promotion", live("opened", "dave", scope="step")).returncode == 0

    def refused(ops: list[dict]) -> str:
        proc = bench.kubectl(sidecar_kubeconfig, "patch", "canarygate", "demo", "--type", "json", "-p", json.dumps(ops))
        assert proc.returncode != 0, f"the sidecar could write {ops}"
        return proc.stderr

    current = bench.annotations()["gate.piggysec.com/confirm-promotion"]
    for field, value in (
        ("state", "closed"),
        ("by", SIDECAR_USER),
        ("scope", "sticky"),
        ("reason", "other"),
        ("at", "2030-01-01T00:00:00Z"),
    ):
        body = json.loads(current)
        body[field] = value
        assert "only remove a live gate change or rebind it" in refused(
            [{"op": "replace", "path": path, "value": json.dumps(body, separators=(",", ":"))}]
        )
    assert "only remove" in refused(
        [
            {
                "op": "add",
                "path": "/metadata/annotations/gate.piggysec.com~1rollout",
                "value": live("opened", SIDECAR_USER),
            }
        ]
    )
    assert bench.annotations()["gate.piggysec.com/confirm-promotion"] == current
    # A sticky change lasts until a person changes it: the sidecar never ends one.
    sticky = live("closed", "dave", scope="sticky")
    assert bench.annotate(dave, "rollout", sticky).returncode == 0
    assert "never ends a sticky live change" in refused(
        [{"op": "remove", "path": "/metadata/annotations/gate.piggysec.com~1rollout"}]
    )
    assert bench.annotations()["gate.piggysec.com/rollout"] == sticky


# -- (b) the approve verb, opted in by namespace label ------------------------------------------------------


def test_approve_verb_is_required_only_where_the_namespace_opts_in(bench):
    bench.create_gate()
    bench.role(
        "patch-only",
        [
            {"apiGroups": ["piggysec.com"], "resources": ["canarygates"], "verbs": ["get", "list", "watch", "patch"]},
            {"apiGroups": ["flagger.app"], "resources": ["canaries"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "list"]},
        ],
    )
    editor = bench.user("erin")
    bench.bind("erin", "patch-only", bench.ns, kind="Role")
    bench.wait_can(editor, "patch", "canarygates.piggysec.com")
    approver = bench.user("frank", "canary-gate-approver")
    # Not opted in: patch is enough.
    assert bench.gate(editor, "open", "confirm-promotion", "demo").returncode == 0
    bench.label(bench.ns, **{"gate.piggysec.com/require-approve": "true"})
    deadline = time.monotonic() + 60
    while True:  # the binding's namespace selector sees the label a moment later
        proc = bench.gate(editor, "close", "confirm-promotion", "demo")
        if proc.returncode != 0:
            break
        assert time.monotonic() < deadline, "the approve verb was never required"
        time.sleep(0.5)
    assert "requires the verb approve" in proc.stderr and "erin" in proc.stderr, proc.stderr
    assert bench.annotate(editor, "confirm-promotion", None).returncode != 0  # removing is approving too
    assert bench.annotate(editor, "rollout", live("opened", "erin")).returncode != 0
    # The spec, labels and other annotations stay the editor's to change.
    assert bench.kubectl(editor, "annotate", "canarygate", "demo", "team=payments").returncode == 0
    assert (
        bench.kubectl(
            editor, "patch", "canarygate", "demo", "--type", "merge", "-p", '{"spec":{"rollback":"closed"}}'
        ).returncode
        == 0
    )
    # Whoever holds approve changes gates as before.
    for args in (("close", "confirm-promotion", "demo"), ("open", "rollout", "demo"), ("resume", "demo")):
        proc = bench.gate(approver, *args)
        assert proc.returncode == 0, proc.stderr


# -- (c) cross-namespace targets -------------------------------------------------------------------------


@pytest.fixture
def other_namespace(api_client):
    core = kubernetes.client.CoreV1Api(api_client)
    name = f"t-policy-other-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name, "labels": {"sandbox.test/owner": "pytest"}}})
    yield name
    core.delete_namespace(name)


def test_a_cross_namespace_target_needs_update_on_canaries_there(bench, other_namespace):
    manager = bench.user("grace", "canary-gate-release-manager")
    cross = yaml.safe_dump(bench.gate_object("cross", target_ns=other_namespace))
    proc = bench.kubectl(manager, "apply", "-f", "-", input=cross)
    assert proc.returncode != 0, "a CanaryGate took over another namespace's Canary"
    assert f"targets Canary {other_namespace}/cross" in proc.stderr and "may not update" in proc.stderr
    # Through kubectl gate apply too (it renders the Canary after the CanaryGate is admitted).
    path = bench.tmp / "cross.yaml"
    path.write_text(cross)
    gate_apply = bench.gate(manager, "apply", "-f", str(path))
    assert gate_apply.returncode == 1 and "may not update canaries.flagger.app there" in gate_apply.stderr
    # Own namespace: fine; retargeting it elsewhere is refused like creating it there.
    assert bench.kubectl(manager, "apply", "-f", "-", input=yaml.safe_dump(bench.gate_object("own"))).returncode == 0
    retarget = bench.kubectl(
        manager,
        "patch",
        "canarygate",
        "own",
        "--type",
        "merge",
        "-p",
        json.dumps({"spec": {"target": {"namespace": other_namespace, "name": "own"}}}),
    )
    assert retarget.returncode != 0 and "may not update" in retarget.stderr
    # Once allowed to update that Canary there, the same CanaryGate is accepted.
    bench.role(
        "canary-updater",
        [{"apiGroups": ["flagger.app"], "resources": ["canaries"], "resourceNames": ["cross"], "verbs": ["update"]}],
        namespace=other_namespace,
    )
    bench.bind("grace", "canary-updater", other_namespace, kind="Role")
    bench.wait_can(manager, "update", "canaries.flagger.app/cross", other_namespace)
    proc = bench.kubectl(manager, "apply", "-f", "-", input=cross)
    assert proc.returncode == 0, proc.stderr


def test_gates_of_an_existing_cross_namespace_canarygate_can_still_be_changed(bench, other_namespace):
    bench.create_gate("cross", target_ns=other_namespace)  # by an admin, who may
    approver = bench.user("heidi", "canary-gate-approver")
    bench.bind("heidi", "canary-gate-viewer", other_namespace)  # to read the Canary there
    bench.wait_can(approver, "get", "canaries.flagger.app", other_namespace)
    proc = bench.gate(approver, "open", "confirm-promotion", "cross")
    assert proc.returncode == 0, proc.stderr


# -- the sidecar under the policies, and the verbs it uses ---------------------------------------------------


def granted(path: Path) -> set[tuple[str, str, str]]:
    """(apiGroup, resource[/subresource], verb) the ClusterRole at ``path`` grants."""
    role = yaml.safe_load(path.read_text())
    return {
        (g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }


def used(record) -> tuple[str, str, str]:
    parts = record.path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    resource = record.resource + (f"/{record.subresource}" if record.subresource else "")
    return group, resource, record.verb


def policy_denials(apiserver, namespace: str, user: str) -> list[str]:
    """What the admission policies refused ``user`` in ``namespace`` (the audit log's messages)."""
    found = []
    with open(apiserver.info["audit_log"], encoding="utf-8", errors="replace") as log:
        for line in log:
            if namespace in line and "ValidatingAdmissionPolicy" in line:
                event = json.loads(line)
                if event.get("user", {}).get("username") == user and event.get("stage") == "ResponseComplete":
                    found.append(event["responseStatus"].get("message", ""))
    return found


@pytest.fixture
def audit_from(apiserver) -> float:
    """Read the audit log from here on; asked for before ``rollouts``, so the sidecar's start is in it."""
    apiserver.clear_requests()
    return time.time()


def test_a_rollout_under_the_policies_uses_only_and_exactly_the_sidecars_verbs(bench, audit_from, apiserver, rollouts):
    """A real rollout with real Flagger: approvals by ``kubectl gate`` as an approver, the sidecar
    binding, consuming and ending them under the policies; then the audit log of the sidecar's user
    in this namespace (plus its cluster-wide lists and watches) against its ClusterRole."""
    approver = bench.user("rita", "canary-gate-approver")
    rollouts.create("demo", confirm_rollout="closed", confirm_promotion="closed")
    assert bench.gate(approver, "open", "post-rollout", "demo").returncode == 0  # idle: bound, then ended
    rollouts.new_revision()
    for gate in ("confirm-rollout", "confirm-promotion"):
        waited = bench.gate(approver, "wait", "demo", "--for", f"gate={gate}", "--timeout", "5m")
        assert waited.returncode == 0, waited.stderr
        promoted = bench.gate(approver, "promote", "demo")
        assert promoted.returncode == 0, promoted.stderr
    done = bench.gate(approver, "wait", "demo", "--for", "promoted", "--timeout", "5m")
    assert done.returncode == 0, done.stderr

    def settled():
        return not bench.annotations()  # steps consumed, the rollout's change ended, by the sidecar

    deadline = time.monotonic() + 120
    while not settled():
        assert time.monotonic() < deadline, f"live changes left: {bench.annotations()}"
        time.sleep(1)
    records = [
        r
        for r in apiserver.requests
        if r.user == SIDECAR_USER and r.time >= audit_from - 1 and r.namespace in ("", bench.ns) and r.resource
    ]  # (not /version, discovery)
    # NB: cluster-wide lists and watches come from every sidecar on this cluster, some of them tests of
    # missing rights; RBAC refusals are checked here, for what this rollout made it do.
    assert not [r for r in records if r.status == 403 and r.namespace == bench.ns], "RBAC refused the sidecar"
    denied = policy_denials(apiserver, bench.ns, SIDECAR_USER)
    assert not denied, denied  # (a 422 of its own is a JSON-patch test that lost a race: another sidecar's write)
    uses = {used(r) for r in records}
    role = granted(ROOT / "deploy" / "sidecar" / "clusterrole.yaml")
    assert uses <= role, f"the sidecar used rights it lacks: {uses - role}"
    writes = {u for u in uses if u[2] in ("create", "update", "patch", "delete")}
    assert ("piggysec.com", "canarygates", "patch") in writes  # consumed, bound, ended
    assert ("piggysec.com", "canarygates/status", "patch") in writes
    assert ("", "events", "create") in writes
    unused = sorted(role - uses)
    print("sidecar used:", sorted(uses), "granted, unused:", unused)
    # Granted and not used: get on CanaryGates, which grants nothing list and watch do not (they
    # return every CanaryGate whole), and get on ConfigMaps, read only for a target whose pod template
    # references one (this one references none: test_gate_semantics' config-only tests use it, on this
    # role); the rest of the role is what the code does.
    assert set(unused) <= {("piggysec.com", "canarygates", "get"), ("", "configmaps", "get")}, unused


def test_every_shipped_policy_type_checks_against_the_crd_without_warnings(installed, kubectl):
    """The API server type-checks each expression against the CanaryGate schema (the policies name
    v1alpha1: with "*" it checks nothing): a misspelt field would only show as a warning there, and
    as a denial of every request at run time (failurePolicy Fail)."""
    names = [n for k, n in installed.items() if k.startswith("canary-gate-") and "policy" not in k]
    policies = [
        n
        for n in names
        if kubectl("get", "validatingadmissionpolicy", n, "--ignore-not-found", "-o", "name").stdout.strip()
    ]
    assert len(policies) == 3, names
    for name in policies:
        deadline = time.monotonic() + 60
        while True:
            status = (
                json.loads(kubectl("get", "validatingadmissionpolicy", name, "-o", "json").stdout).get("status") or {}
            )
            if status.get("observedGeneration"):
                break
            assert time.monotonic() < deadline, f"{name} never type-checked"
            time.sleep(0.5)
        assert not (status.get("typeChecking") or {}).get("expressionWarnings"), (name, status)
