"""Where the real programs are: built once per machine by ``build-binaries.sh`` into a cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).with_name("build-binaries.sh")
PROGRAMS = ("etcd", "kube-apiserver", "kube-controller-manager", "flagger", "kubectl-krew")


@dataclass(frozen=True)
class Binaries:
    bin: Path
    sources: dict  # module directories with the CRDs, and the versions built

    def path(self, program: str) -> str:
        return str(self.bin / program)

    @property
    def versions(self) -> dict[str, str]:
        return self.sources["versions"]

    def flagger_file(self, relative: str) -> Path:
        return Path(self.sources["flagger"]) / relative

    def istio_crds(self) -> Path:
        return Path(self.sources["istio-api"]) / "kubernetes" / "customresourcedefinitions.gen.yaml"

    def gateway_api_crd(self, name: str = "httproutes") -> Path:
        return (
            Path(self.sources["gateway-api"]) / "config" / "crd" / "standard" / f"gateway.networking.k8s.io_{name}.yaml"
        )


def ensure(*, quiet: bool = False) -> Binaries:
    """The cached binaries, building what is missing (20-40 min cold on 2 cores; seconds warm).

    Progress of a build goes to stderr, as the script prints it.
    """
    started = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=None if not quiet else subprocess.PIPE,
        text=True,
        env=os.environ,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"building the e2e binaries failed (exit {proc.returncode}): "
            f"{(proc.stderr or '')[-4000:]}\nrun {SCRIPT} to see the whole build log"
        )
    bin_dir = Path(proc.stdout.strip().splitlines()[-1])
    missing = [p for p in PROGRAMS if not (bin_dir / p).is_file()]
    if missing:
        raise RuntimeError(f"{SCRIPT} finished but {', '.join(missing)} missing in {bin_dir}")
    sources = json.loads((bin_dir.parent / "sources.json").read_text())
    if not quiet:
        print(f"e2e binaries ready in {time.monotonic() - started:.1f} s: {bin_dir}", file=sys.stderr)
    return Binaries(bin_dir, sources)
