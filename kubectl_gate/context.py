"""The one object every command shares: connection flags, a lazily opened connection, the clock,
the output streams and the colour decision.

The root group creates it; options fill it in (they may be given before or after the command
name, as with kubectl); commands receive it with :data:`pass_gate_ctx`. Tests build their own and
pass it with ``runner.invoke(cli, args, obj=GateContext(clock=...))``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

import click


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class GateContext:
    """Per-invocation state. None for a connection flag means "as the kubeconfig says"."""

    kubeconfig: str | None = None
    context: str | None = None
    cluster: str | None = None
    user: str | None = None
    namespace: str | None = None
    request_timeout: str | None = None
    all_namespaces: bool = False
    no_color: bool = False
    server: str | None = None
    token: str | None = None
    impersonate: str | None = None
    impersonate_groups: tuple[str, ...] = ()
    impersonate_uid: str | None = None
    insecure_skip_tls_verify: bool = False
    certificate_authority: str | None = None
    client_certificate: str | None = None
    client_key: str | None = None
    tls_server_name: str | None = None
    verbosity: int = 0
    clock: Callable[[], datetime] = utcnow
    stdout: IO[str] | None = None
    stderr: IO[str] | None = None
    #: Builds the connection from settings; tests may inject one. Default: canarygate.kube.connect.connect.
    connector: Callable[[Any], Any] | None = None
    _connection: Any = field(default=None, repr=False)
    _username: str | None = field(default=None, repr=False)
    _target_namespace: str | None = field(default=None, repr=False)

    # -- connection ---------------------------------------------------------------------------

    def settings(self):
        """Connection settings; the light transport unless KUBECTL_GATE_CLIENT=kubernetes.

        The connection flags fill the fields of the same names of Settings and of its Overrides
        (--server, --token, --as...), so that each flag is named once, here as in canarygate.kube.
        """
        from canarygate.kube.connect import LIGHT, OFFICIAL, Settings
        from canarygate.kube.kubeconfig import Overrides

        return Settings(
            overrides=Overrides(**self._flags_of(Overrides)),
            transport=OFFICIAL if os.environ.get("KUBECTL_GATE_CLIENT") == "kubernetes" else LIGHT,
            **self._flags_of(Settings),
        )

    def _flags_of(self, settings: type) -> dict[str, Any]:
        """This context's values for the fields of the dataclass ``settings`` it has too."""
        own = {f.name for f in dataclasses.fields(self)}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(settings) if f.name in own}

    @property
    def connection(self):
        """The API connection, opened on first use (so --help and render never touch a cluster)."""
        if self._connection is None:
            from canarygate import errors

            connector = self.connector
            if connector is None:
                from canarygate.kube.connect import connect as connector
            try:
                self._connection = connector(self.settings())
            except errors.ConfigError as e:
                hint = _flag_hint(self)
                if hint:
                    raise errors.ConfigError(f"{e}\n{hint}") from e
                raise
            if self.verbosity >= 6:
                self._connection.kube.log = self.err
        return self._connection

    @property
    def kube(self):
        return self.connection.kube

    def close(self) -> None:
        """Close the connection if one was opened (the CLI does at the end of every command)."""
        if self._connection is not None:
            close = getattr(self._connection, "close", None)
            if close is not None:
                close()

    @property
    def ns(self) -> str:
        """The namespace to use: the target's (see :meth:`in_namespace`), else -n, else the context's."""
        return self._target_namespace or self.connection.namespace

    def in_namespace(self, namespace: str):
        """A context in which :attr:`ns` is ``namespace``: a command acting on CanaryGates of several
        namespaces (-A) runs its one-gate code once per gate."""
        import contextlib

        @contextlib.contextmanager
        def scoped():
            previous, self._target_namespace = self._target_namespace, namespace
            try:
                yield self
            finally:
                self._target_namespace = previous

        return scoped()

    @property
    def list_namespace(self) -> str | None:
        """None (every namespace) with -A, else the namespace."""
        return None if self.all_namespaces else self.ns

    def username(self) -> str:
        """Who the API server says we are (SelfSubjectReview), else the kubeconfig user."""
        if self._username is None:
            from canarygate.kube import identity

            fallback = self.impersonate or self.connection.user or "unknown"
            self._username = identity.whoami(self.kube, fallback=fallback)
        return self._username

    def now(self) -> datetime:
        return self.clock()

    # -- output -------------------------------------------------------------------------------

    @property
    def color(self) -> bool:
        """Colour only on a terminal, never with --no-color, NO_COLOR or TERM=dumb (kubectl's rule)."""
        if self.no_color or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
            return False
        return self.tty

    @property
    def tty(self) -> bool:
        stream = self.stdout or sys.stdout
        return bool(getattr(stream, "isatty", lambda: False)())

    @property
    def unicode(self) -> bool:
        """Unicode icons unless the output encoding cannot carry them."""
        stream = self.stdout or sys.stdout
        encoding = (getattr(stream, "encoding", None) or "utf-8").lower().replace("-", "")
        return encoding.startswith("utf")

    def out(self, text: str = "", *, nl: bool = True) -> None:
        """Data: to stdout."""
        click.echo(text, file=self.stdout, nl=nl)

    def err(self, text: str = "", *, nl: bool = True) -> None:
        """Messages and progress: to stderr."""
        if self.stderr is not None:
            click.echo(text, file=self.stderr, nl=nl)
        else:
            click.echo(text, err=True, nl=nl)


pass_gate_ctx = click.make_pass_decorator(GateContext, ensure=True)


def _flag_hint(gctx: GateContext) -> str:
    """Say so when a -c/--context value names a kubeconfig cluster, or --cluster a context.

    ``-c/--cluster`` meant the context in the Go original; kubectl's ``--cluster`` is a kubeconfig
    cluster. We follow kubectl for ``--cluster`` and keep ``-c`` as the context; this catches the
    users who meant the other one.
    """
    contexts, clusters = _kubeconfig_names(gctx.kubeconfig)
    if gctx.context and gctx.context not in contexts and gctx.context in clusters:
        return (
            f'hint: "{gctx.context}" is a cluster in the kubeconfig, not a context: '
            f"use --cluster {gctx.context} (-c means --context, as in the Go canary-gate CLI)"
        )
    if gctx.cluster and gctx.cluster not in clusters and gctx.cluster in contexts:
        return (
            f'hint: "{gctx.cluster}" is a context, not a cluster: use -c {gctx.cluster} or '
            f"--context {gctx.cluster} (--cluster is kubectl's: a cluster entry of the kubeconfig)"
        )
    return ""


def _kubeconfig_names(explicit: str | None) -> tuple[set[str], set[str]]:
    from canarygate import errors
    from canarygate.kube import kubeconfig

    try:
        merged = kubeconfig.load(kubeconfig.paths(explicit))
    except errors.ConfigError:
        return set(), set()
    return {c["name"] for c in merged["contexts"]}, {c["name"] for c in merged["clusters"]}
