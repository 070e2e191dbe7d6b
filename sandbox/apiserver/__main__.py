"""``python -m sandbox.apiserver --port PORT --kubeconfig-out PATH [--token-file PATH]``

Serves the emulator on 127.0.0.1 until SIGINT/SIGTERM, after writing an admin
kubeconfig (with the throwaway CA) to PATH and, with --token-file, the admin
token to that file.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox.apiserver.server import ApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.apiserver", description=__doc__.splitlines()[2])
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--kubeconfig-out", required=True, help="where to write the admin kubeconfig")
    parser.add_argument("--token-file", help="also write the admin token to this file")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with ApiServer(port=args.port) as srv:
        srv.write_kubeconfig(args.kubeconfig_out)
        if args.token_file:
            with open(args.token_file, "w") as f:
                f.write(srv.admin_token + "\n")
        print(f"sandbox apiserver serving on {srv.url} (kubeconfig: {args.kubeconfig_out})", flush=True)
        stop.wait()
    print("sandbox apiserver stopped", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
