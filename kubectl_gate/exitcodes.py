"""Exit codes of ``kubectl gate``: stable, documented in ``--help`` and the README.

kubectl uses 1 for every failure; scripts need more, so a gating tool says *why* it stopped.
"""

from __future__ import annotations

OK = 0  #: done, or the awaited condition was reached
ERROR = 1  #: an error: API, auth, RBAC, not found, invalid input
USAGE = 2  #: the command line is wrong (click's own code)
FAILED = 3  #: the rollout failed or was rolled back
WAITING = 4  #: the rollout is waiting at a closed gate (``show --exit-code``)
TIMEOUT = 124  #: ``wait --timeout`` ran out (GNU timeout's code)
INTERRUPTED = 130  #: Ctrl-C

HELP = """\b
Exit codes:
  0    done, or the condition waited for was reached
  1    error (API, credentials, RBAC, not found, invalid input)
  2    usage error
  3    the rollout failed or was rolled back
  4    the rollout is waiting at a closed gate (show --exit-code only;
       wait keeps waiting there: --for waiting stops at a gate with 0)
  124  timed out"""
