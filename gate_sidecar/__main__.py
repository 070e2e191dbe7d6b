"""``gate-sidecar``: serve Flagger's gate webhooks from CanaryGate state.

Starts two informers (CanaryGates, Canaries), the background writer (and with ``--reconcile`` the
Canary reconciler) and a waitress server. SIGTERM
(and Ctrl-C) stops gracefully: /readyz turns 503, the listener closes, calls in flight finish,
pending writes are made, then the process exits 0.
"""

from __future__ import annotations

import functools
import gc
import logging
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

import click

from gate_sidecar import config as cfg

log = logging.getLogger("gate_sidecar")

RESYNC_EVERY = 300.0  # seconds between full reconciles of every CanaryGate (changes are reconciled at once)

CONTEXT_SETTINGS = {
    "auto_envvar_prefix": cfg.ENV_PREFIX,
    "help_option_names": ["-h", "--help"],
    "max_content_width": 100,
}


def _parsed_by(parse: Callable[[Any], Any]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """A click callback: the option's value through ``parse`` (gate_sidecar.config), whose ValueError
    becomes click's usage error naming the option."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        try:
            return parse(value)
        except ValueError as e:
            raise click.BadParameter(str(e)) from None

    return callback


def _env_name(flag: str) -> str:
    """The environment variable click reads for ``flag`` (auto_envvar_prefix): GATE_SIDECAR_<FLAG>."""
    return f"{cfg.ENV_PREFIX}_{flag.lstrip('-').replace('-', '_').upper()}"


def _env(flag: str) -> str:
    """The help's note of the environment variable of ``flag``."""
    return f"Env: {_env_name(flag)}."


def _go_env_option(
    flag: str,
    *,
    go_name: str,
    metavar: str,
    help: str,  # noqa: A002 - click's own keyword
    note: str = "",
) -> Callable[[Callable], Callable]:
    """A text flag (default empty) also read, as the Go original did, from ``go_name``: ours wins."""
    return click.option(
        flag,
        envvar=[_env_name(flag), go_name],
        default="",
        metavar=metavar,
        help=f"{help} Env: {_env_name(flag)}, else {go_name}{note}.",
    )


def _seconds_option(
    flag: str,
    *,
    minimum: float,
    default: float,
    help: str,  # noqa: A002 - click's own keyword
) -> Callable[[Callable], Callable]:
    """A duration flag in seconds, at least ``minimum``; its help ends with its environment variable."""
    return click.option(
        flag,
        type=click.FloatRange(min=minimum),
        default=default,
        show_default=True,
        metavar="SECONDS",
        help=f"{help} {_env(flag)}",
    )


def _count_option(
    flag: str,
    *,
    default: int,
    help: str,  # noqa: A002 - click's own keyword
    maximum: int | None = None,
) -> Callable[[Callable], Callable]:
    """A count flag, at least 1 (at most ``maximum``); its help ends with its environment variable."""
    return click.option(
        flag, type=click.IntRange(min=1, max=maximum), default=default, show_default=True, help=f"{help} {_env(flag)}"
    )


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--listen",
    default=cfg.DEFAULT_LISTEN,
    show_default=True,
    callback=_parsed_by(cfg.parse_listen),
    metavar="HOST:PORT",
    help="Address to serve on. Env: GATE_SIDECAR_LISTEN.",
)
@click.option(
    "--probe-listen",
    default="",
    callback=_parsed_by(cfg.parse_optional_listen),
    metavar="HOST:PORT",
    help="Also serve /healthz, /readyz and /metrics (only those) on this address, with its own threads "
    "and connection caps, so that abuse of the webhook port cannot starve the kubelet's probes "
    "(the shipped manifests probe 0.0.0.0:8081). Empty: none; --listen answers them too. "
    "Env: GATE_SIDECAR_PROBE_LISTEN.",
)
@_seconds_option(
    "--read-timeout",
    minimum=0.1,
    default=5.0,
    help="A request must arrive whole, headers and body, within this long of its first byte, else 408 "
    "and the connection is closed (slowloris).",
)
@_seconds_option(
    "--idle-timeout",
    minimum=0.1,
    default=30.0,
    help="Close a connection with no request under way after this long.",
)
@_count_option(
    "--max-connections",
    default=512,
    help="Open connections in all, per port.",
)
@_count_option(
    "--max-connections-per-peer",
    default=64,
    help="Open connections per source address, per port: a new one closes that address's longest-idle "
    "connection, and is refused (503) only when all of them have requests under way.",
)
@click.option(
    "--namespaces",
    default="",
    metavar="NS[,NS...]",
    help="Namespaces whose CanaryGates and Canaries to watch; empty or * watches all (needs the "
    "ClusterRole). Calls about other namespaces answer 503. Env: GATE_SIDECAR_NAMESPACES.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Kubeconfig to use (default: $KUBECONFIG, else in-cluster config when run in a pod, else "
    "~/.kube/config). Env: GATE_SIDECAR_KUBECONFIG.",
)
@click.option("--context", default=None, help="Kubeconfig context (default: current). Env: GATE_SIDECAR_CONTEXT.")
@click.option(
    "--in-cluster/--no-in-cluster",
    default=None,
    help="Use the pod's service account. Default: on when no kubeconfig is given and "
    "KUBERNETES_SERVICE_HOST is set. Env: GATE_SIDECAR_IN_CLUSTER.",
)
@_seconds_option(
    "--fail-closed-after",
    minimum=0.5,
    default=cfg.DEFAULT_FAIL_CLOSED_AFTER,
    help="Fail closed when nothing has arrived from the API server for this long (a liveness request "
    "goes out every SECONDS/3, so a partition that keeps sockets open counts too, and one lost "
    "request does not): progress gates answer 503 and rollback does not signal, until the "
    "API server answers again. Until the first sync the "
    "sidecar always fails closed.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Log lines as text or one JSON object per line. Env: GATE_SIDECAR_LOG_FORMAT.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
    default="info",
    show_default=True,
    help="Env: GATE_SIDECAR_LOG_LEVEL.",
)
@_count_option(
    "--threads",
    default=8,
    maximum=256,
    help="Worker threads of the HTTP server.",
)
@_seconds_option(
    "--status-interval",
    minimum=0.05,
    default=1.0,
    help="At most one status write per CanaryGate per interval (the latest event wins).",
)
@_seconds_option(
    "--shutdown-timeout",
    minimum=0,
    default=5.0,
    help="On SIGTERM, how long calls in flight and pending writes may take.",
)
@click.option(
    "--reconcile/--no-reconcile",
    default=False,
    show_default=True,
    help="Also create or update the Flagger Canary at spec.target of every CanaryGate, as `kubectl gate "
    "apply` does (spec.flagger with its own webhooks, plus the gate webhooks pointing at --endpoint; the "
    "Canary's status and others' labels and annotations kept): when a CanaryGate is created or its spec "
    "changes (not on status or annotation changes), and for each CanaryGate after every (re)list. Off the "
    "webhook path, retried with backoff; Events CanaryReconciled / ReconcileFailed on the CanaryGate say "
    "how it went. Canaries are never deleted, not even with their CanaryGate. Needs the "
    "canary-gate-reconciler ClusterRole "
    "(deploy/sidecar/reconcile). Env: GATE_SIDECAR_RECONCILE.",
)
@click.option(
    "--endpoint",
    default=None,
    callback=_parsed_by(cfg.resolve_endpoint),
    metavar="URL",
    help=f"Where Flagger reaches this sidecar: the base URL of the webhooks --reconcile renders. "
    f"Env: GATE_SIDECAR_ENDPOINT, else {cfg.LEGACY_ENDPOINT_ENV} (the Go original's). "
    f"[default: {cfg.DEFAULT_ENDPOINT}]",
)
@click.option(
    "--lease",
    default=None,
    metavar="NAMESPACE/NAME",
    help="With --reconcile, the coordination.k8s.io Lease the replicas elect a leader with: only its holder "
    "reconciles; every replica answers webhooks. Env: GATE_SIDECAR_LEASE. [default: in a pod, "
    "<its namespace>/canary-gate-reconciler; elsewhere none: this process reconciles alone]",
)
@_seconds_option(
    "--lease-seconds",
    minimum=1,
    default=15.0,
    help="How long a leader that stopped renewing keeps the Lease before another replica takes over.",
)
@_go_env_option(
    "--slack-token",
    go_name="SLACK_TOKEN",
    note=" (the Go original's)",
    metavar="TOKEN",
    help="Slack bot token (xoxb-…): post to Slack when a gate holds a rollout, opens or closes, and when a "
    "rollout is promoted, aborted or rolled back (docs/notifications.md). Give it from a Secret.",
)
@_go_env_option(
    "--slack-channel",
    go_name="SLACK_CHANNEL",
    metavar="CHANNEL",
    help="Channel for CanaryGates without the annotation notify.piggysec.com/slack-channel.",
)
@click.option(
    "--slack-api-url",
    default="",
    metavar="URL",
    help="Slack's Web API base URL (a proxy, GovSlack). Env: GATE_SIDECAR_SLACK_API_URL. "
    "[default: https://slack.com/api/]",
)
@click.option(
    "--notify-webhook",
    multiple=True,
    metavar="NAME=URL",
    help="A generic JSON webhook (Teams, Mattermost, PagerDuty, a chat-ops bridge) that CanaryGates name in "
    "the annotation notify.piggysec.com/webhooks; the one named default serves those without it. "
    "Repeatable. Env: GATE_SIDECAR_NOTIFY_WEBHOOK (space-separated).",
)
@_count_option(
    "--notify-queue-size",
    default=1000,
    help="Notifications waiting at most; more are dropped (counted, logged).",
)
@click.version_option(package_name="canary-gate", prog_name="gate-sidecar", message="%(prog)s %(version)s")
def main(
    listen,
    probe_listen,
    read_timeout,
    idle_timeout,
    max_connections,
    max_connections_per_peer,
    namespaces,
    kubeconfig,
    context,
    in_cluster,
    fail_closed_after,
    log_format,
    log_level,
    threads,
    status_interval,
    shutdown_timeout,
    reconcile,
    endpoint,
    lease,
    lease_seconds,
    slack_token,
    slack_channel,
    slack_api_url,
    notify_webhook,
    notify_queue_size,
):
    """Answer Flagger's gate webhooks from CanaryGate resources.

    Flagger POSTs to /confirm-rollout, /pre-rollout, /rollout, /confirm-traffic-increase,
    /confirm-promotion, /post-rollout and /rollback; an open gate answers 200, a closed one 403
    (for /rollback, 200 means "roll back now"). /event records Flagger's events on the CanaryGate's
    status. /healthz, /readyz (200 once the cache has synced), /version and /metrics (Prometheus)
    are for operators. With --probe-listen the probes and /metrics also have a port of their own,
    which abuse of the webhook port cannot starve; the webhook port refuses bodies over 64 KiB
    from their Content-Length, closes slow (--read-timeout) and idle (--idle-timeout)
    connections, and caps connections per source address.

    With --reconcile it also keeps the Flagger Canary of every CanaryGate rendered from it (see below).

    Answers come from a watch-fed cache: a webhook call makes no API request, except one conditional
    write recording a one-step approval as used before it answers "go on" (so it passes once, however
    many replicas answer). Replicas: every one answers; with --reconcile only the holder of --lease
    reconciles. Every flag can also be
    set with an environment variable GATE_SIDECAR_<FLAG> (for example GATE_SIDECAR_LISTEN).
    """
    host, port = listen
    config = cfg.Config(
        host=host,
        port=port,
        namespaces=cfg.parse_namespaces(namespaces),
        kubeconfig=kubeconfig,
        context=context,
        in_cluster=cfg.in_cluster_by_default(kubeconfig) if in_cluster is None else in_cluster,
        fail_closed_after=fail_closed_after,
        log_format=log_format,
        log_level=log_level,
        threads=threads,
        status_interval=status_interval,
        shutdown_timeout=shutdown_timeout,
        reconcile=reconcile,
        endpoint=endpoint,
        probe_listen=probe_listen,
        read_timeout=read_timeout,
        idle_timeout=idle_timeout,
        max_connections=max_connections,
        max_connections_per_peer=max_connections_per_peer,
        lease=_lease_ref(lease),
        lease_seconds=lease_seconds,
        notify=_notify_config(slack_token, slack_channel, slack_api_url, notify_webhook, notify_queue_size),
    )
    cfg.configure_logging(config.log_format, config.log_level)
    sys.exit(serve(config))


def _notify_config(token, channel, api_url, webhooks, queue_size):
    from gate_sidecar.notify.config import NotifyConfig, parse_webhooks

    try:
        hooks = parse_webhooks(webhooks)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--notify-webhook") from None
    return NotifyConfig(
        slack_token=token.strip(),
        slack_channel=channel.strip(),
        slack_api_url=api_url.strip(),
        webhooks=hooks,
        queue_size=queue_size,
    )


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def _lease_ref(value: str | None) -> tuple[str, str] | None:
    """NAMESPACE/NAME of the Lease: given, else in a pod its namespace and the default name; None (no
    election: this process reconciles alone) outside a pod without --lease."""
    if value:
        namespace, sep, name = value.partition("/")
        if not sep or not namespace or not name or "/" in name:
            raise click.BadParameter(f"{value!r}: give NAMESPACE/NAME", param_hint="--lease")
        return namespace, name
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            namespace = f.read().strip()
    except OSError:
        return None
    return (namespace, "canary-gate-reconciler") if namespace else None


def _identity() -> str:
    """This replica's name in the Lease: POD_NAME if set, else the hostname (a pod's is its name), and a
    random suffix, unique per process."""
    import os
    import socket
    import uuid

    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def serve(config: cfg.Config) -> int:
    """Run the sidecar until SIGTERM/SIGINT; the exit status. With --reconcile and ``config.lease``,
    only the holder of that Lease reconciles (gate_sidecar.leader)."""
    from canarygate import errors
    from canarygate.kube.informers import Informer, Liveness, feed_timing
    from canarygate.kube.resources import CANARIES, CANARYGATES
    from canarygate.kube.service import connect_service
    from gate_sidecar.app import create_app
    from gate_sidecar.cache import GateCache
    from gate_sidecar.metrics import Metrics
    from gate_sidecar.server import Limits, create_server, start_probe_server
    from gate_sidecar.writes import Writer

    started = time.monotonic()
    try:
        kube, server_url = connect_service(
            kubeconfig=config.kubeconfig, context=config.context, in_cluster=config.in_cluster, timeout=10.0
        )
    except errors.ConfigError as e:
        log.error("%s", e)
        return 2
    cache = GateCache(namespaces=config.namespaces, fail_closed_after=config.fail_closed_after)
    reconciler = None  # set below with --reconcile: every list of CanaryGates is then reconciled once
    elector = None

    resynced: dict[str | None, float] = {}

    def on_gate_list(items: list[dict[str, Any]], namespace: str | None) -> None:
        # Quiet watches are relisted every bound/2 (fresh data, not a probe, is contact); changes reach
        # the reconciler as cache events, so a full resync (a Canary read per CanaryGate) happens on
        # the first list and then at most every RESYNC_EVERY, not on every relist.
        cache.replace_gates(items, namespace)
        now = time.monotonic()
        if reconciler is not None and now - resynced.get(namespace, -RESYNC_EVERY) >= RESYNC_EVERY:
            resynced[namespace] = now
            reconciler.resync(namespace)

    # Contact means fresh data the cache took (a list, an event, a bookmark), never an answered probe;
    # a watch silent for bound/2 is relisted (feed_timing). The liveness probe only reopens watches
    # once the API server answers again after an outage.
    bound = config.fail_closed_after
    max_silence, probe_interval, probe_timeout = feed_timing(bound)
    informers = []
    for namespace in config.namespaces or (None,):
        informers.append(
            Informer(
                kube,
                CANARYGATES,
                namespace=namespace,
                max_silence=max_silence,
                on_list=functools.partial(on_gate_list, namespace=namespace),
                on_event=cache.apply_gate_event,
            )
        )
        informers.append(
            Informer(
                kube,
                CANARIES,
                namespace=namespace,
                missing_ok=True,
                max_silence=max_silence,
                on_list=functools.partial(cache.replace_canaries, namespace=namespace),
                on_event=cache.apply_canary_event,
            )
        )
    cache.health.extend(informers)
    liveness = Liveness(kube, informers, interval=probe_interval, timeout=probe_timeout)
    metrics = Metrics()
    writer = Writer(kube, cache, metrics=metrics, status_interval=config.status_interval, record_history=True)
    if config.reconcile:
        from gate_sidecar.leader import LeaderElector
        from gate_sidecar.reconcile import Reconciler

        if config.lease is None:
            reconciler = Reconciler(kube, cache, endpoint=config.endpoint, metrics=metrics)
        else:
            elector = LeaderElector(kube, *config.lease, _identity(), lease_seconds=config.lease_seconds)
            reconciler = Reconciler(
                kube, cache, endpoint=config.endpoint, metrics=metrics, leading=lambda: elector.leading
            )
            elector.on_start = reconciler.resync  # NB: what changed while another replica led is redone
    notifier = notify_elector = None
    if config.notify.enabled:
        from gate_sidecar.notify.notifier import NOTIFY_LEASE, Notifier

        leading = lambda: True  # noqa: E731 - without a Lease (outside a pod) this process notifies alone
        if config.lease is not None:
            from gate_sidecar.leader import LeaderElector

            # NB: every replica answers Flagger, only the holder of this Lease notifies (no double posts)
            notify_elector = LeaderElector(
                kube, config.lease[0], NOTIFY_LEASE, _identity(), lease_seconds=config.lease_seconds
            )
            leading = lambda: notify_elector.leading  # noqa: E731
        notifier = Notifier(config.notify, cache, writer=writer, metrics=metrics, leading=leading)
        if notify_elector is not None:
            notify_elector.on_start = notifier.resync  # NB: what happened before it led is looked at again
    app = create_app(cache=cache, writer=writer, metrics=metrics)
    limits = Limits(
        read_timeout=config.read_timeout,
        idle_timeout=config.idle_timeout,
        max_per_peer=config.max_connections_per_peer,
        max_total=config.max_connections,
    )
    server = create_server(app, host=config.host, port=config.port, threads=config.threads, limits=limits)
    probe = None
    if config.probe_listen is not None:
        probe = start_probe_server(app, host=config.probe_listen[0], port=config.probe_listen[1], limits=limits)

    def on_signal(signum, frame):
        log.info("received %s: shutting down", signal.Signals(signum).name)
        app.draining = True
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    writer.start()
    if notifier is not None:
        notifier.start()
    if notify_elector is not None:
        notify_elector.start()
    if reconciler is not None:
        reconciler.start()
    if elector is not None:
        elector.start()
    for informer in informers:
        informer.start()
    liveness.start()
    scope = ", ".join(config.namespaces) if config.namespaces else "all namespaces"
    log.info(
        "gate-sidecar serving on http://%s:%s (API %s, watching %s, fail closed after %gs)",
        config.host,
        server.effective_port,
        server_url,
        scope,
        config.fail_closed_after,
    )
    if probe is not None and config.probe_listen is not None:
        log.info(
            "probes also on http://%s:%s (/healthz, /readyz, /metrics)", config.probe_listen[0], probe.effective_port
        )
    if reconciler is not None:
        log.info("reconciling the Canary of every CanaryGate, webhooks to %s", config.endpoint)
    if notifier is not None:
        log.info("notifications on: %r", config.notify)
    _announce_ready(cache, started)
    try:
        server.run()  # returns after SystemExit from the signal handler, calls in flight done
    finally:
        app.draining = True
        server.close()
        if probe is not None:
            probe.close()
        liveness.stop()
        for informer in informers:
            informer.stop()
        if elector is not None:
            elector.stop(config.shutdown_timeout)  # releases the Lease: the other replica takes over now
        if reconciler is not None:
            reconciler.stop(config.shutdown_timeout)
        if notify_elector is not None:
            notify_elector.stop(config.shutdown_timeout)
        if notifier is not None:
            notifier.stop(config.shutdown_timeout / 2)  # NB: before the writer, whose last writes record it
        writer.stop(config.shutdown_timeout)
        log.info("gate-sidecar stopped")
    return 0


def _announce_ready(cache, started: float) -> None:
    """Log once when the cache has synced, with the time it took (a daemon thread)."""
    import threading

    def wait():
        while not cache.synced:
            time.sleep(0.01)
        # NB: the imported modules and the first cache fill are long-lived; freezing them keeps the
        # collector from walking them on every full collection the request path triggers.
        gc.collect()
        gc.freeze()
        log.info("ready: cache synced with %d CanaryGates in %.2fs", len(cache), time.monotonic() - started)

    threading.Thread(target=wait, name="ready-announcer", daemon=True).start()


if __name__ == "__main__":
    main(prog_name="gate-sidecar")
