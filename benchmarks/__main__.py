"""Run every benchmark in one process and print their tables: ``python -m benchmarks [NAME ...]``."""

from __future__ import annotations

import importlib
import sys

SUITES = ("sidecar", "cli")


def main(argv: list[str]) -> int:
    names = argv or list(SUITES)
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(SUITES)}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name} ==", flush=True)
        importlib.import_module(f"benchmarks.{name}").run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
