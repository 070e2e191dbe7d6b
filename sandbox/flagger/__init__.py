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

Sandbox knobs (annotations on the Canary): ``sandbox.flagger.app/metrics: fail`` makes the
metric checks fail (Flagger's "Halt ... advancement success rate ..." warning, a failed check);
``sandbox.flagger.app/primary-ready`` and ``sandbox.flagger.app/canary-ready`` set to
``"false"`` hold the tick as a not-ready workload would, ``"deadline"`` is a progress deadline
exceeded (rollback, or a failed promotion).

What it does not do (its edges):

* ``lastAppliedSpec`` is a hash of the pod template's JSON, not Flagger's spew-based value
  (same shape, different number); the webhook ``checksum`` over it is exactly Flagger's.
* No ConfigMap/Secret tracking: ``trackedConfigs`` is always ``{}``, so only pod-template
  changes start a rollout.
* No pods, Services, mesh, metric providers, MetricTemplates, alert providers or autoscalers.
  Routes are kept in memory (rebuilt from ``status.canaryWeight`` after a restart); readiness
  and metrics are simulated as above; "all the metrics providers are available!" always.
* Only ``Deployment`` targets are read (a DaemonSet or Service target is "not found").
* No finalizers: ``revertOnDeletion``, Terminating and Terminated are not simulated.
* New Canaries are found by listing every control-loop interval (10 s x time scale), not by
  an informer; two simulators on the same namespace would both drive its Canaries.
* Analysis intervals and retry back-off are scaled; HTTP timeouts and status timestamps are
  real time.
"""

from sandbox.flagger.controller import FlaggerController, FlaggerSimulator

__all__ = ["FlaggerController", "FlaggerSimulator"]
