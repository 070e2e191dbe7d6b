"""Throwaway key material for the real control plane: a CA, the API server's serving certificate,
the service-account signing key and the secret that signs test tokens. All on 127.0.0.1 only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

TOKEN_PREFIX = "cg-e2e"


def write_pki(directory: Path) -> dict[str, str]:
    """Writes ca.crt, apiserver.crt/.key and sa.key into ``directory``; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="canary-gate e2e")
    cert = ca.issue_cert("127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc")
    paths = {
        "ca": directory / "ca.crt",
        "cert": directory / "apiserver.crt",
        "key": directory / "apiserver.key",
        "sa_key": directory / "sa.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths["sa_key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    for path in paths.values():
        path.chmod(0o600)
    return {k: str(v) for k, v in paths.items()}


def new_secret() -> str:
    return secrets.token_hex(32)


def sign_token(secret: str, username: str, groups: tuple[str, ...] = (), uid: str = "") -> str:
    """A bearer token the cluster's token webhook accepts as ``username`` in ``groups``.

    Stateless: the identity travels in the token, signed with the run's secret, so a test mints
    tokens for any user without telling the cluster (kube-apiserver's static token file cannot
    change while it runs; its token webhook authenticator can answer for any token).
    """
    body = (
        base64.urlsafe_b64encode(
            json.dumps({"u": username, "g": list(groups), "i": uid or username}, separators=(",", ":")).encode()
        )
        .decode()
        .rstrip("=")
    )
    mac = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{TOKEN_PREFIX}.{body}.{mac}"


def verify_token(secret: str, token: str) -> dict | None:
    """The identity ``{"u", "g", "i"}`` in a token made by :func:`sign_token`, or None."""
    try:
        prefix, body, mac = token.split(".")
    except ValueError:
        return None
    want = hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()[:32]
    if prefix != TOKEN_PREFIX or not hmac.compare_digest(mac, want):
        return None
    try:
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except ValueError:
        return None
