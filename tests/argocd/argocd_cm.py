"""Build deploy/argocd/argocd-cm.yaml from the Lua sources in deploy/argocd/CanaryGate/.

Argo CD runs each script on its own, so ``common.lua`` (the shared reading of a CanaryGate) is put
at the head of every script in the ConfigMap. ``python tests/argocd/argocd_cm.py`` rewrites the
file; the tests check that the committed file is what this builds.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "deploy" / "argocd"
SOURCES = ARGOCD / "CanaryGate"
CONFIGMAP = ARGOCD / "argocd-cm.yaml"
GROUP_KIND = "piggysec.com_CanaryGate"
HEALTH_KEY = f"resource.customizations.health.{GROUP_KIND}"
ACTIONS_KEY = f"resource.customizations.actions.{GROUP_KIND}"
#: In the order Argo CD's UI lists them (discovery returns a map; the definitions keep this order).
ACTIONS = ("promote", "promote-full", "pause", "resume", "abort")

HEADER = """\
# Argo CD resource customizations for piggysec.com/CanaryGate: a health check and the actions
# promote, promote-full, pause, resume and abort (see deploy/argocd/README.md).
# Generated from deploy/argocd/CanaryGate/*.lua by `python tests/argocd/argocd_cm.py`: edit those.
# Merge it into Argo CD's argocd-cm:
#   kubectl -n argocd patch configmap argocd-cm --type merge --patch-file deploy/argocd/argocd-cm.yaml
"""


def script(relative: str) -> str:
    """One script as Argo CD gets it: common.lua, then the script itself."""
    common = (SOURCES / "common.lua").read_text()
    return common + "\n" + (SOURCES / relative).read_text()


def scripts() -> dict[str, str]:
    """Every script by name: "health", "discovery" and each action."""
    found = {"health": script("health.lua"), "discovery": script("actions/discovery.lua")}
    for action in ACTIONS:
        found[action] = script(f"actions/{action}/action.lua")
    return found


def _block(text: str, indent: int) -> str:
    pad = " " * indent
    return "".join(pad + line if line.strip() else "\n" for line in text.splitlines(keepends=True))


def build() -> str:
    """The ConfigMap's text: literal blocks, so the Lua reads as written."""
    found = scripts()
    actions = "discovery.lua: |\n" + _block(found["discovery"], 2) + "definitions:\n"
    for action in ACTIONS:
        actions += f"- name: {action}\n  action.lua: |\n" + _block(found[action], 4)
    return (
        HEADER
        + "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\n  namespace: argocd\n"
        + "  labels:\n    app.kubernetes.io/name: argocd-cm\n    app.kubernetes.io/part-of: argocd\n"
        + "data:\n"
        + f"  {HEALTH_KEY}: |\n"
        + _block(found["health"], 4)
        + f"  {ACTIONS_KEY}: |\n"
        + _block(actions, 4)
    )


if __name__ == "__main__":
    CONFIGMAP.write_text(build())
    sys.stdout.write(f"wrote {CONFIGMAP.relative_to(ROOT)}\n")
