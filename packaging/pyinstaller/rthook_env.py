"""PyInstaller runtime hook: give child processes the environment the user had.

The bootloader points LD_LIBRARY_PATH (and on some systems LIBPATH or DYLD_LIBRARY_PATH) at the
bundle, saving the user's value as <NAME>_ORIG. kubeconfig `exec` credential plugins
(`aws eks get-token`, `gke-gcloud-auth-plugin`, `kubelogin`) inherit os.environ, and system
binaries then load the bundle's libssl or libz and break (pyinstaller#2237). The frozen program
itself has already loaded its libraries, so restoring the variables here is safe.
See "Launching External Programs from the Frozen Application" in the PyInstaller docs.
"""

import os
import sys


def _restore_library_paths(environ=os.environ):
    for name in ("LD_LIBRARY_PATH", "LIBPATH", "DYLD_LIBRARY_PATH"):
        original = environ.get(name + "_ORIG")
        if original is not None:
            environ[name] = original
        else:
            environ.pop(name, None)


if getattr(sys, "frozen", False):
    _restore_library_paths()
