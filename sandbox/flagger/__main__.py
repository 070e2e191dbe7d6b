"""``python -m sandbox.flagger``: run the Flagger simulator until interrupted."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from sandbox.flagger.controller import FlaggerSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.flagger",
        description="Drive Flagger Canaries through Flagger's phases, calling their webhooks "
        "as Flagger does. Metric checks fail while a Canary is annotated "
        "sandbox.flagger.app/metrics=fail.",
    )
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="multiply every analysis interval and retry back-off by this "
        "(0.01 turns a 1m interval into 0.6 s; default 1)",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        help="watch only this namespace (repeatable; default all)",
    )
    parser.add_argument("--mesh-provider", default="", help="Flagger's -mesh-provider; 'kubernetes' forces blue/green")
    parser.add_argument(
        "--event-webhook", default=None, help="Flagger's -event-webhook, for Canaries without event hooks"
    )
    parser.add_argument(
        "--no-deployments",
        action="store_true",
        help="do not write Deployment status (something else does, e.g. sandbox.cluster)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every tick")
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with FlaggerSimulator(
        kubeconfig=args.kubeconfig,
        context=args.context,
        time_scale=args.time_scale,
        namespaces=args.namespaces,
        mesh_provider=args.mesh_provider,
        event_webhook=args.event_webhook,
        deployments=not args.no_deployments,
    ):
        print(f"flagger simulator running (time scale {args.time_scale}); Ctrl-C stops it", file=sys.stderr, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
