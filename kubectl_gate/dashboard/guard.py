"""Cross-site defences of the dashboard, as pure functions of the request's headers.

The dashboard can change gates with the user's credentials, so a page from anywhere else must not
drive it: every request but the static files needs the session's random token (a cookie set from
the URL the CLI opens), an action also needs it in a header (a page of another origin can neither
read it nor send a custom header without a CORS preflight, which is never answered), the Host header
must name the loopback address and port (against DNS rebinding), and a POST must come from our own
Origin.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from http.cookies import CookieError, SimpleCookie
from typing import Protocol


class Headers(Protocol):
    """What is read of a request's headers (http.server's Message, or a dict in tests)."""

    def get(self, name: str, /) -> str | None: ...


#: The header an action carries the token in.
TOKEN_HEADER = "X-Gate-Token"


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    """One cookie per port: cookies are scoped by host, not by port."""
    return f"gate-dashboard-{port}"


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1 or ``localhost``: the only addresses the dashboard may listen on."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(address: str, port: int) -> frozenset[str]:
    """The Host header values that name this server (a browser sends ``host:port``)."""
    names = {"127.0.0.1", "localhost", "[::1]"}
    bare = address.strip("[]")
    names.add(f"[{bare}]" if ":" in bare else bare)
    return frozenset(f"{name}:{port}" for name in names)


def same_token(given: str | None, token: str) -> bool:
    return given is not None and given != "" and hmac.compare_digest(given.encode(), token.encode())


def cookie_token(headers: Headers, port: int) -> str | None:
    raw = headers.get("Cookie")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(cookie_name(port))
    return morsel.value if morsel else None


def refusal(
    headers: Headers,
    *,
    method: str,
    token: str,
    hosts: frozenset[str],
    port: int,
    query_token: str | None = None,
) -> str | None:
    """Why the request is refused (a short sentence), or None when it may go on.

    ``query_token`` is the ``?token=`` of the first page load only (the URL the CLI opens).
    """
    host = (headers.get("Host") or "").lower()
    if host not in hosts:
        return f"Host {host or '(none)'} is not this dashboard's address"
    origin = headers.get("Origin")
    origins = {f"http://{h}" for h in hosts}
    if origin is not None and origin not in origins:
        return f"Origin {origin} is not this dashboard"
    if method == "POST" and origin is None:
        return "an action needs the Origin header of this dashboard"
    site = headers.get("Sec-Fetch-Site")
    if site in ("cross-site", "same-site") and query_token is None:
        return f"a request from another site ({site}) is refused"
    if not (same_token(cookie_token(headers, port), token) or same_token(query_token, token)):
        return "no valid session token: open the URL kubectl gate dashboard printed"
    if method == "POST" and not same_token(headers.get(TOKEN_HEADER), token):
        return f"an action needs the session token in the {TOKEN_HEADER} header"
    return None
