"""The files ``kubectl gate`` ships beside its code, read with :mod:`importlib.resources`.

``deploy/`` here is a link to the repository's ``deploy/`` folder (the one copy, which kustomize
and the docs' URLs use): the wheel and the sdist get its CRD and sidecar files as package data
(pyproject ``[tool.setuptools.package-data]``), the PyInstaller binary as datas
(packaging/pyinstaller/kubectl-gate.spec, from ``deploy/`` itself, so a checkout without symlinks
builds it too). ``completion.json`` is completion's table (:mod:`kubectl_gate.completing`).
"""

from __future__ import annotations

from importlib import resources

#: The kustomization whose resources ``kubectl gate install`` prints, in its order.
SIDECAR = "deploy/sidecar"


def read(path: str) -> str:
    """The text of the shipped file ``path`` (``deploy/crd/canarygate.yaml``...)."""
    return resources.files(__name__).joinpath(path).read_text(encoding="utf-8")


def manifest_paths(kustomization: str = SIDECAR) -> list[str]:
    """The files a kustomization lists, in its order, a listed folder's own kustomization expanded
    in place (``../crd`` first): what ``kubectl apply -k`` would apply, before its patches."""
    import posixpath

    import yaml

    listed = yaml.safe_load(read(f"{kustomization}/kustomization.yaml")).get("resources") or []
    paths: list[str] = []
    for entry in listed:
        path = posixpath.normpath(posixpath.join(kustomization, entry))
        if resources.files(__name__).joinpath(path).is_dir():
            paths.extend(manifest_paths(path))
        else:
            paths.append(path)
    return paths
