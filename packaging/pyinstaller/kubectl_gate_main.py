"""Entry script for the PyInstaller build: the `kubectl-gate` console script, frozen."""

import sys

from kubectl_gate.cli import main

if __name__ == "__main__":
    sys.exit(main())
