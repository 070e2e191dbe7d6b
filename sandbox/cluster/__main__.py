"""``python -m sandbox.cluster --kubeconfig-out PATH``: the real control plane and Flagger, here.

Builds what is missing (once per machine), starts etcd, kube-apiserver, kube-controller-manager,
the Deployment status stand-in and Flagger v1.44 on 127.0.0.1, writes an admin kubeconfig to
PATH, its description to PATH.json and test users' kubeconfigs to PATH.d/, prints one line when
ready, and stops everything on SIGTERM or Ctrl-C. With ``-- CMD ...`` it runs CMD with
GATE_E2E_KUBECONFIG=PATH once the cluster is ready, stops when CMD ends, and exits with CMD's code.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sandbox.cluster import binaries
from sandbox.cluster.runner import Cluster


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig-out", required=True, type=Path, help="where to write the admin kubeconfig")
    parser.add_argument(
        "--mesh-provider",
        default="istio",
        help="Flagger's -mesh-provider: istio (the seed's; Istio's CRDs only) or gatewayapi:v1",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, audit log) afterwards")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...: run CMD against the cluster")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command

    built = binaries.ensure()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    started = time.monotonic()
    with Cluster(
        built, kubeconfig_out=args.kubeconfig_out, mesh_provider=args.mesh_provider, keep=args.keep
    ) as cluster:
        versions = ", ".join(f"{c.name} {c.version}" for c in cluster.components.values())
        print(
            f"cluster ready in {time.monotonic() - started:.1f} s: {versions}; "
            f"kubeconfig {args.kubeconfig_out} (described in {args.kubeconfig_out}.json); logs {cluster.run_dir}/logs",
            flush=True,
        )
        if not command:
            stop.wait()
            return 0
        env = {
            **os.environ,
            "GATE_E2E_KUBECONFIG": str(args.kubeconfig_out.resolve()),
            "CANARYGATE_E2E_BIN": str(built.bin),
        }
        child = subprocess.Popen(command, env=env)
        while child.poll() is None and not stop.is_set():
            time.sleep(0.2)
        if child.poll() is None:
            child.terminate()
        code = child.wait()
        if code != 0:
            for component in cluster.components.values():
                print(f"--- last lines of {component.log_path}", file=sys.stderr)
                print("\n".join(component.log_path.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
        return code


if __name__ == "__main__":
    sys.exit(main())
