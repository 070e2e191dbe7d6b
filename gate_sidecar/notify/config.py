"""The notification settings (the sidecar's ``--slack-*`` and ``--notify-*`` flags), kept light: no
import of ``slack_sdk`` or of the rest of the notifier, so ``gate_sidecar.config`` can hold them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: The Go original's environment variables for --slack-token and --slack-channel.
SLACK_TOKEN_ENV = "SLACK_TOKEN"
SLACK_CHANNEL_ENV = "SLACK_CHANNEL"


@dataclass(frozen=True)
class NotifyConfig:
    """The sidecar's notification settings (flags); secrets never in the repr."""

    slack_token: str = field(default="", repr=False)
    slack_channel: str = ""
    #: Slack's Web API base URL (tests point it at a recorder; also GovSlack or a proxy).
    slack_api_url: str = ""
    #: name -> URL of the generic webhooks a CanaryGate may name.
    webhooks: Mapping[str, str] = field(default_factory=dict, repr=False)
    queue_size: int = 1000
    max_attempts: int = 8
    max_age: float = 900.0
    timeout: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.slack_token) or bool(self.webhooks)

    def __repr__(self) -> str:
        return (
            f"NotifyConfig(slack={'on' if self.slack_token else 'off'}, slack_channel={self.slack_channel!r}, "
            f"webhooks={sorted(self.webhooks)})"
        )


def parse_webhooks(values: Iterable[str]) -> dict[str, str]:
    """``NAME=URL`` pairs (an http(s) URL; names unique); ValueError says which is wrong, never the URL
    (webhook URLs carry secrets)."""
    out: dict[str, str] = {}
    for value in values:
        name, sep, url = value.partition("=")
        name, url = name.strip(), url.strip()
        if not sep or not name or not url:
            raise ValueError(
                f"a webhook is NAME=URL (got one named {name!r} without a URL)" if name else "a webhook is NAME=URL"
            )
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in ("http", "https"):
            raise ValueError(f"webhook {name!r}: the URL is not http(s)")
        if name in out:
            raise ValueError(f"webhook {name!r} is given twice")
        out[name] = url
    return out
