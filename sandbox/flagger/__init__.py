"""A Flagger simulator: drives Flagger Canaries through Flagger's phases over the Kubernetes API.

It follows Flagger v1.44.0's source (``pkg/controller/scheduler.go``, ``scheduler_hooks.go``,
``events.go``, ``pkg/canary/``). Layers, each usable alone:

* :mod:`sandbox.flagger.checksum`: Flagger's webhook ``checksum`` and a ``lastAppliedSpec`` hash;
* :mod:`sandbox.flagger.webhooks`: the HTTP caller with Flagger's payload, timeout, retry and
  success rules;
* :mod:`sandbox.flagger.readiness`: ``isDeploymentReady`` over a Deployment's status;
* :mod:`sandbox.flagger.configs`: the config tracker (``trackedConfigs``, primary copies);
* :mod:`sandbox.flagger.events`: client-go's event correlator (spam filter, aggregation);
* one ``advanceCanary`` tick as a pure function: :mod:`sandbox.flagger.tick` (``advance``, the
  tick's order), :mod:`sandbox.flagger.checks` (which webhooks run when, how their answers
  count), :mod:`sandbox.flagger.strategies` (canary, blue/green, A/B, mirroring steps),
  :mod:`sandbox.flagger.context` (status writes, events, webhook calls of one tick),
  :mod:`sandbox.flagger.records` (what a tick reads and returns), :mod:`sandbox.flagger.status`
  (phases, the ``Promoted`` condition), :mod:`sandbox.flagger.analysis` (the analysis spec's
  readers) and :mod:`sandbox.flagger.metrics` (the simulated metric checks);
* :mod:`sandbox.flagger.controller`: the loop against an API server (official ``kubernetes``
  client), and :class:`FlaggerSimulator`, a context manager for tests and the demo, which also
  runs :class:`sandbox.deployments.DeploymentStatusWriter` (``deployments=False`` to not);
* :mod:`sandbox.flagger.testing`: a recording webhook server for tests.

Run it from the shell with ``python -m sandbox.flagger --kubeconfig PATH --time-scale X``.

Sandbox knobs: ``sandbox.flagger.app/metrics: fail`` on the Canary makes the metric checks fail
(Flagger's "Halt ... advancement success rate ..." warning, a failed check). Readiness is read
from the Deployments' status, as Flagger reads it; ``sandbox.deployments/ready: "false"`` on a
Deployment holds it unready (its pods crash-loop), ``"deadline"`` exceeds its progress deadline
(see :mod:`sandbox.deployments`). Flagger copies the target's annotations into the primary it
creates, and clears the primary's on each promotion: so does the simulator.

Where it still differs from Flagger, and why that is kept:

* ``lastAppliedSpec`` is a hash of the pod template's JSON, not of Go's go-spew dump of the typed
  ``PodTemplateSpec`` (same shape, another number): reproducing go-spew needs every Go default
  and field of the type. The webhook ``checksum`` over it is exactly Flagger's algorithm, so it
  changes exactly when Flagger's does, but its value differs.
* No pods, Services, mesh, metric providers, MetricTemplates, alert providers or autoscalers:
  nothing on the test bench would serve them. Routes are kept in memory (rebuilt from
  ``status.canaryWeight`` after a restart); metrics are simulated as above; "all the metrics
  providers are available!" always. Alerts (Slack etc.) are never sent.
* Only ``Deployment`` targets (a DaemonSet or Service target is "not found"): the product only
  renders Deployment targets.
* No finalizers: ``revertOnDeletion``, Terminating and Terminated are not simulated.
* New Canaries are found by listing every control-loop interval (10 s x time scale), not by an
  informer, so a new Canary gets ``Initializing`` up to one interval later than with Flagger;
  two simulators on the same namespace would both drive its Canaries.
* Time: analysis intervals, webhook retry back-off, the progress deadline and the event
  correlator's windows (5 min, 10 min) are multiplied by the time scale so that they keep their
  ratio to the ticks; HTTP timeouts and every timestamp written are real time.
* A missing *required* ConfigMap or Secret is skipped as if optional; Flagger fails
  ``GetTargetConfigs`` instead (a "GetTargetConfigs failed" warning each tick, no status sync, no
  rollout). Error paths of a broken workload, which the product never has to tell apart.
* The target, its configs and the Canary are read once per tick (readiness is read at each of
  Flagger's checks); Flagger re-reads them at each step, so a change landing mid-tick is seen one
  tick later here. The Canary re-fetched in ``checkCanaryStatus`` is the tick's own copy with
  the status written so far, not a GET: only a concurrent *spec* change would differ.
* Kubernetes Events are written synchronously, before the event webhooks; Flagger's recorder
  queues them and writes them from another goroutine (possibly after the webhooks, dropped when
  its queue is full). The correlator's LRU bound (4096 keys) is not kept, and ``PopAny`` takes
  the oldest message, not a random one. Kept for deterministic tests.
* Status writes re-read on a conflict and write the tick's whole status again; Flagger re-applies
  only the fields it changes. Only Flagger writes a Canary's status, so the result is the same.
"""

from sandbox.flagger.controller import FlaggerController, FlaggerSimulator

__all__ = ["FlaggerController", "FlaggerSimulator"]
