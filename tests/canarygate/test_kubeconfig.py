"""The kubeconfig reader (canarygate.kube.kubeconfig), offline: which files (--kubeconfig alone,
KUBECONFIG list, default), kubectl's merge (first file to set a value wins, current-context too),
paths made absolute against the file that holds them, --context/--cluster/--user/-n overrides, and
errors that say what to do.
"""

from __future__ import annotations

import os

import pytest
import yaml

from canarygate import errors
from canarygate.kube import kubeconfig


def write(path, *, current=None, clusters=(), users=(), contexts=()):
    data = {"apiVersion": "v1", "kind": "Config"}
    if current:
        data["current-context"] = current
    data["clusters"] = [{"name": n, "cluster": c} for n, c in clusters]
    data["users"] = [{"name": n, "user": u} for n, u in users]
    data["contexts"] = [{"name": n, "context": c} for n, c in contexts]
    path.write_text(yaml.safe_dump(data))
    return str(path)


@pytest.fixture
def two_files(tmp_path, monkeypatch):
    """KUBECONFIG=a:b where both set current-context, a cluster, a user and a context of the same names."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write(
        tmp_path / "a" / "config",
        current="first",
        clusters=[("c", {"server": "https://a", "certificate-authority": "ca.pem"})],
        users=[("u", {"token": "from-a", "client-certificate": "certs/u.crt", "client-key": "/abs/u.key"})],
        contexts=[
            ("first", {"cluster": "c", "user": "u", "namespace": "ns-a"}),
            ("shared", {"cluster": "c", "user": "u", "namespace": "from-a"}),
        ],
    )
    b = write(
        tmp_path / "b" / "config",
        current="second",
        clusters=[("c", {"server": "https://b"}), ("only-b", {"server": "https://only-b"})],
        users=[
            ("u", {"token": "from-b"}),
            (
                "plugin",
                {
                    "exec": {"command": "./bin/get-token", "apiVersion": "v1", "interactiveMode": "Never"},
                    "tokenFile": "tok",
                },
            ),
            ("path-plugin", {"exec": {"command": "get-token"}}),
        ],
        contexts=[
            ("second", {"cluster": "only-b", "user": "plugin"}),
            ("shared", {"cluster": "c", "user": "u", "namespace": "from-b"}),
        ],
    )
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([a, str(tmp_path / "missing"), b]))
    return tmp_path


def test_paths_explicit_then_env_then_default(monkeypatch):
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join(["x", "", "y"]))
    assert kubeconfig.paths("only") == ["only"]
    assert kubeconfig.paths(None) == ["x", "y"]
    monkeypatch.delenv("KUBECONFIG")
    assert kubeconfig.paths(None) == ["~/.kube/config"]


def test_first_file_to_set_a_value_wins(two_files):
    merged = kubeconfig.load(kubeconfig.paths())
    assert merged["current-context"] == "first"  # the Python client's merger would say "second"
    assert [c["name"] for c in merged["clusters"]] == ["c", "only-b"]
    assert merged["clusters"][0]["cluster"]["server"] == "https://a"
    assert next(u for u in merged["users"] if u["name"] == "u")["user"]["token"] == "from-a"
    resolved = kubeconfig.resolve(context="shared")
    assert resolved.namespace == "from-a"
    assert kubeconfig.names(None, "contexts") == ["first", "second", "shared"]


def test_explicit_kubeconfig_reads_only_that_file(two_files):
    only_b = str(two_files / "b" / "config")
    resolved = kubeconfig.resolve(kubeconfig=only_b)
    assert (resolved.context_name, resolved.cluster["server"]) == ("second", "https://only-b")
    assert kubeconfig.names(only_b, "clusters") == ["c", "only-b"]
    assert kubeconfig.load([only_b])["clusters"][0]["cluster"]["server"] == "https://b"


def test_relative_paths_resolve_against_the_file_that_holds_them(two_files):
    a, b = two_files / "a", two_files / "b"
    resolved = kubeconfig.resolve()
    assert resolved.cluster["certificate-authority"] == str(a / "ca.pem")
    assert resolved.user["client-certificate"] == str(a / "certs" / "u.crt")
    assert resolved.user["client-key"] == "/abs/u.key"
    plugin = kubeconfig.resolve(context="second").user
    assert plugin["exec"]["command"] == str(b / "bin" / "get-token")  # a path: relative to its file
    assert plugin["tokenFile"] == str(b / "tok")
    bare = next(u for u in kubeconfig.load(kubeconfig.paths())["users"] if u["name"] == "path-plugin")
    assert bare["user"]["exec"]["command"] == "get-token"  # a bare name: looked up on PATH


def test_home_is_not_expanded_inside_a_file(tmp_path, monkeypatch):
    """kubectl reads "~/ca.pem" in a kubeconfig as a path relative to the file (test_transport_kubectl)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "dir").mkdir()
    path = write(
        tmp_path / "dir" / "config",
        current="x",
        clusters=[("c", {"server": "https://s", "certificate-authority": "~/ca.pem"})],
        contexts=[("x", {"cluster": "c"})],
    )
    assert kubeconfig.resolve(kubeconfig=path).cluster["certificate-authority"] == str(
        tmp_path / "dir" / "~" / "ca.pem"
    )


def test_overrides(two_files):
    resolved = kubeconfig.resolve(context="first", cluster="only-b", user="plugin", namespace="mine")
    assert (resolved.context_name, resolved.cluster_name, resolved.user_name) == ("first", "only-b", "plugin")
    assert resolved.cluster["server"] == "https://only-b" and resolved.namespace == "mine"
    # The config handed to the official loader carries the overridden context as current.
    config = resolved.config
    assert config["current-context"] == "first"
    assert [c["context"] for c in config["contexts"] if c["name"] == "first"] == [
        {"cluster": "only-b", "user": "plugin", "namespace": "ns-a"}
    ]
    assert kubeconfig.resolve(context="second").namespace == "default"  # no namespace in the context


def test_a_context_without_user_is_anonymous(tmp_path):
    path = write(
        tmp_path / "config", current="x", clusters=[("c", {"server": "https://s"})], contexts=[("x", {"cluster": "c"})]
    )
    resolved = kubeconfig.resolve(kubeconfig=path)
    assert (resolved.user_name, resolved.user) == ("", {})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"context": "nope"}, r'context "nope" not found in the kubeconfig \(contexts: first, second, shared\)'),
        ({"cluster": "nope"}, r'cluster "nope" not found in the kubeconfig \(clusters: c, only-b\)'),
        ({"user": "nope"}, r'user "nope" not found in the kubeconfig \(users: path-plugin, plugin, u\)'),
    ],
)
def test_unknown_names_list_the_known_ones(two_files, overrides, message):
    with pytest.raises(errors.ConfigError, match=message):
        kubeconfig.resolve(**overrides)


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(errors.ConfigError, match=r"no kubeconfig found .*pass --kubeconfig, set KUBECONFIG"):
        kubeconfig.resolve(kubeconfig=str(tmp_path / "nothing"))
    (tmp_path / "bad").write_text("clusters: [\n")
    with pytest.raises(errors.ConfigError, match="is not valid YAML"):
        kubeconfig.resolve(kubeconfig=str(tmp_path / "bad"))
    (tmp_path / "list").write_text("- a\n- b\n")
    with pytest.raises(errors.ConfigError, match="is not a kubeconfig"):
        kubeconfig.resolve(kubeconfig=str(tmp_path / "list"))
    (tmp_path / "dir").mkdir()
    with pytest.raises(errors.ConfigError, match="cannot read the kubeconfig"):
        kubeconfig.resolve(kubeconfig=str(tmp_path / "dir"))
    no_current = write(
        tmp_path / "nocurrent", clusters=[("c", {"server": "https://s"})], contexts=[("x", {"cluster": "c"})]
    )
    with pytest.raises(errors.ConfigError, match="no current context: pass --context"):
        kubeconfig.resolve(kubeconfig=no_current)
    dangling = write(tmp_path / "dangling", current="x", contexts=[("x", {"cluster": "gone"})])
    with pytest.raises(errors.ConfigError, match=r'cluster "gone" \(named by context "x"\) not found'):
        kubeconfig.resolve(kubeconfig=dangling)


def test_reading_it_does_not_import_the_kubernetes_client():
    import subprocess
    import sys

    probe = (
        "import sys\nfrom canarygate.kube import kubeconfig, light, connect\n"
        "assert not [m for m in sys.modules if m == 'kubernetes' or m.startswith('kubernetes.')]\n"
        "assert 'urllib3' not in sys.modules"
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "section,field,value",
    [
        ("clusters", "insecure-skip-tls-verify", "false"),
        ("clusters", "insecure-skip-tls-verify", "true"),
        ("clusters", "insecure-skip-tls-verify", 0),
        ("clusters", "disable-compression", "yes please"),
        ("clusters", "server", 5),
        ("users", "token", 12345),
        ("users", "as-groups", "admins"),
        ("users", "exec", {"command": "x", "provideClusterInfo": "false"}),
        ("users", "exec", {"command": "x", "env": [{"name": "A", "value": 1}]}),
        ("contexts", "namespace", 7),
    ],
)
def test_a_typed_field_of_another_type_is_refused_naming_file_entry_and_field(tmp_path, section, field, value):
    """kubectl refuses such a file; reading a string's truthiness would turn TLS verification off."""
    entries = {
        "clusters": [("c", {"server": "https://x"})],
        "users": [("u", {"token": "t"})],
        "contexts": [("ctx", {"cluster": "c", "user": "u"})],
    }
    name, body = entries[section][0]
    entries[section] = [(name, {**body, field: value})]
    path = write(tmp_path / "config", current="ctx", **entries)
    with pytest.raises(errors.ConfigError) as e:
        kubeconfig.resolve(kubeconfig=path)
    text = str(e.value)
    assert path in text and f'{section[:-1]} "{name}"' in text and field.split(".")[0] in text, text


def test_real_booleans_and_nulls_are_accepted(tmp_path):
    path = write(
        tmp_path / "config",
        current="ctx",
        clusters=[("c", {"server": "https://x", "insecure-skip-tls-verify": False, "proxy-url": None})],
        users=[("u", {"token": "t", "exec": None})],
        contexts=[("ctx", {"cluster": "c", "user": "u"})],
    )
    assert kubeconfig.resolve(kubeconfig=path).cluster["insecure-skip-tls-verify"] is False


def test_entries_that_are_not_mappings_are_refused(tmp_path):
    path = tmp_path / "config"
    path.write_text("current-context: ctx\nclusters: [just-a-string]\n")
    with pytest.raises(errors.ConfigError, match="each of clusters must be a mapping"):
        kubeconfig.load([str(path)])
    path.write_text("current-context: [a]\n")
    with pytest.raises(errors.ConfigError, match="current-context must be a string"):
        kubeconfig.load([str(path)])


# --- Shapes kubectl accepts or refuses (client-go: YAML to JSON, then Go's encoding/json) -----------------
#
# Each row is a users[0].user body, what kubectl does with the file, and for an accepted one the field
# as client-go decodes it. "refused" means the file is refused whole (kubectl: "error loading config file
# ...: json: cannot unmarshal ..."); "refused-in-use" means the file is read but kubectl refuses to use
# that user (client-go validateAuthInfo). test_the_table_is_what_kubectl_does checks every row against
# the real kubectl when one is installed.
EXEC = "{exec: {command: /bin/true, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Never, %s}}"
SHAPES = [
    # null or missing is Go's zero value: "", false, empty; a null list item of strings is ""
    (
        "env item without value",
        EXEC % "env: [{name: AWS_PROFILE}]",
        "accepted",
        ("exec.env", [{"name": "AWS_PROFILE", "value": ""}]),
    ),
    ("env value null", EXEC % "env: [{name: A, value: null}]", "accepted", ("exec.env", [{"name": "A", "value": ""}])),
    ("env null", EXEC % "env: null", "accepted", ("exec.env", None)),
    ("args null item", EXEC % "args: [a, null]", "accepted", ("exec.args", ["a", ""])),
    ("as-groups null item", "{as: bob, as-groups: [a, null]}", "accepted", ("as-groups", ["a", ""])),
    (
        "as-user-extra null item",
        "{as: bob, as-user-extra: {k: [a, null]}}",
        "accepted",
        ("as-user-extra", {"k": ["a", ""]}),
    ),
    ("token null", "{token: null}", "accepted", ("token", None)),
    ("provideClusterInfo null", EXEC % "provideClusterInfo: null", "accepted", ("exec.provideClusterInfo", None)),
    # read, but kubectl will not use the user: an env variable needs a name
    ("env item null", EXEC % "env: [null]", "refused-in-use", None),
    ("env item without name", EXEC % "env: [{value: x}]", "refused-in-use", None),
    ("env name null", EXEC % "env: [{name: null, value: x}]", "refused-in-use", None),
    # another type than the field's: the whole file is refused
    ("env value number", EXEC % "env: [{name: A, value: 1}]", "refused", "exec.env"),
    ("env name number", EXEC % "env: [{name: 1, value: x}]", "refused", "exec.env"),
    ("env value bool", EXEC % "env: [{name: A, value: true}]", "refused", "exec.env"),
    ("env a mapping", EXEC % "env: {A: b}", "refused", "exec.env"),
    ("env item a string", EXEC % "env: [A=b]", "refused", "exec.env"),
    ("args number item", EXEC % "args: [a, 1]", "refused", "exec.args"),
    ("as-groups number item", "{as: bob, as-groups: [a, 1]}", "refused", "as-groups"),
    ("as-groups a string", "{as: bob, as-groups: a}", "refused", "as-groups"),
    ("as-user-extra number item", "{as: bob, as-user-extra: {k: [1]}}", "refused", "as-user-extra"),
    ("token number", "{token: 12345}", "refused", "token"),
    ("provideClusterInfo quoted false", EXEC % 'provideClusterInfo: "false"', "refused", "exec.provideClusterInfo"),
]
SHAPE_FILE = """apiVersion: v1
kind: Config
current-context: c
clusters:
- name: k
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
contexts:
- name: c
  context: {cluster: k, user: u, namespace: default}
users:
- name: u
  user: %s
"""


def _field(body, dotted):
    for part in dotted.split("."):
        body = (body or {}).get(part)
    return body


@pytest.mark.parametrize("user, outcome, detail", [row[1:] for row in SHAPES], ids=[row[0] for row in SHAPES])
def test_shapes_accepted_and_refused_as_kubectl_does(tmp_path, user, outcome, detail):
    path = tmp_path / "config"
    path.write_text(SHAPE_FILE % user)
    if outcome == "accepted":
        resolved = kubeconfig.resolve(kubeconfig=str(path))
        key, value = detail
        assert _field(resolved.user, key) == value
    elif outcome == "refused-in-use":
        with pytest.raises(errors.ConfigError) as e:
            kubeconfig.resolve(kubeconfig=str(path))
        assert "env variable name must be specified" in str(e.value) and "kubectl refuses this user too" in str(e.value)
    else:
        with pytest.raises(errors.ConfigError) as e:
            kubeconfig.load([str(path)])
        text = str(e.value)
        assert str(path) in text and f"field {detail} must be" in text and "(kubectl refuses this file too)" in text


def test_a_null_env_item_elsewhere_does_not_stop_the_user_in_use(tmp_path):
    """kubectl validates only the user it uses: another user's unnamed env variable is no reason to refuse."""
    path = tmp_path / "config"
    path.write_text(SHAPE_FILE % "{token: t}" + "- name: other\n  user: " + EXEC % "env: [null]" + "\n")
    assert kubeconfig.resolve(kubeconfig=str(path)).user == {"token": "t"}


def _kubectl():
    import shutil
    import sys

    local = os.path.join(os.path.dirname(sys.executable), "kubectl")
    return local if os.access(local, os.X_OK) else shutil.which("kubectl")


@pytest.mark.skipif(_kubectl() is None, reason="no kubectl to compare with")
@pytest.mark.parametrize("user, outcome, detail", [row[1:] for row in SHAPES], ids=[row[0] for row in SHAPES])
def test_the_table_is_what_kubectl_does(tmp_path, user, outcome, detail):
    import json
    import subprocess

    path = tmp_path / "config"
    path.write_text(SHAPE_FILE % user)
    view = subprocess.run(
        [_kubectl(), "config", "view", "--raw", "-o", "json", "--kubeconfig", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if outcome == "refused":
        assert view.returncode != 0 and "cannot unmarshal" in view.stderr, view.stderr
        return
    assert view.returncode == 0, view.stderr
    if outcome == "accepted":
        key, value = detail
        decoded = _field(json.loads(view.stdout)["users"][0]["user"], key)
        assert decoded == value or (value is None and decoded in ("", False, None)), decoded
    else:
        used = subprocess.run(
            [_kubectl(), "get", "--raw", "/", "--kubeconfig", str(path), "--request-timeout=2s"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert used.returncode != 0 and "env variable name must be specified" in used.stderr, used.stderr
