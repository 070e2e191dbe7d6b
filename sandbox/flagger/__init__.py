"""A Flagger simulator: drives Flagger Canaries through Flagger's phases over the Kubernetes API.

Layers, each usable alone:

* :mod:`sandbox.flagger.checksum`: Flagger's webhook ``checksum`` and a ``lastAppliedSpec`` hash;
* :mod:`sandbox.flagger.webhooks`: the HTTP caller with Flagger's payload, timeout, retry and
  success rules;
* :mod:`sandbox.flagger.scheduler`: one ``advanceCanary`` tick as a pure function;
* :mod:`sandbox.flagger.controller`: the loop against an API server (official ``kubernetes``
  client), and :class:`FlaggerSimulator`, a context manager for tests and the demo;
* :mod:`sandbox.flagger.testing`: a recording webhook server for tests.

Run it from the shell with ``python -m sandbox.flagger --kubeconfig PATH --time-scale X``.
"""

from sandbox.flagger.controller import FlaggerController, FlaggerSimulator

__all__ = ["FlaggerController", "FlaggerSimulator"]
