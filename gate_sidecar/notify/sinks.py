"""Where notifications go: Slack's Web API (the official ``slack_sdk``) and generic JSON webhooks.

A send returns what the receiver gave back, or raises :class:`Retry` (the receiver is down, slow,
rate-limited or failing: try again, not before ``after`` seconds when it said so) or
:class:`GiveUp` (it refused the message for good: a bad token, an unknown channel, a 4xx).

Secrets stay out of every message these raise and every line they log: the Slack token travels
only in the ``Authorization`` header (``slack_sdk`` logs it redacted), and a webhook is named by
the name the operator gave it, never by its URL (Slack, Teams and Mattermost webhook URLs carry
their secret in the path).
"""

from __future__ import annotations

import email.utils
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Longest wait a Retry-After may ask for that we honour as given (seconds); longer is capped.
MAX_RETRY_AFTER = 300.0
#: Slack errors (``ok: false``) that say "try again": everything else is final.
SLACK_TRANSIENT = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class Retry(Exception):
    """Try this delivery again; ``after``: seconds the receiver asked us to wait (Retry-After)."""

    def __init__(self, why: str, after: float | None = None):
        super().__init__(why)
        self.after = after


class GiveUp(Exception):
    """The receiver refused this message for good: drop it (counted and logged)."""


class Gone(GiveUp):
    """The Slack message a reply or an update was for is not there (deleted): start a new one."""


#: Slack errors that say the thread's top message is gone.
SLACK_GONE = frozenset({"message_not_found", "thread_not_found", "cant_update_message"})


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), capped; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Posted:
    """Where a Slack message landed: the channel's id (chat.update needs it, not its name) and ts."""

    channel: str
    ts: str


class SlackSink:
    """chat.postMessage and chat.update through ``slack_sdk.WebClient`` (``base_url``: tests point it
    at a local recorder). The client's own retries are off: the delivery queue retries, off this thread's
    clock, and honours Retry-After."""

    name = "slack"

    def __init__(self, token: str, *, base_url: str | None = None, timeout: float = 10.0):
        from slack_sdk import WebClient

        self.client = WebClient(
            token=token,
            base_url=base_url or WebClient.BASE_URL,
            timeout=max(1, round(timeout)),
            retry_handlers=[],
            logger=logging.getLogger("gate_sidecar.notify.slack_sdk"),
        )

    def post(self, channel: str, text: str, *, thread_ts: str | None = None) -> Posted:
        args = {"channel": channel, "text": text, "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            args["thread_ts"] = thread_ts
        data = self._call("chat.postMessage", args)
        return Posted(channel=str(data.get("channel") or channel), ts=str(data.get("ts") or ""))

    def update(self, posted: Posted, text: str) -> None:
        self._call("chat.update", {"channel": posted.channel, "ts": posted.ts, "text": text})

    def _call(self, method: str, args: dict) -> dict:
        from slack_sdk.errors import SlackApiError, SlackClientError

        try:
            response = self.client.api_call(method, json=args)
        except SlackApiError as e:
            status = e.response.status_code
            error = str((e.response.data or {}).get("error", "")) if isinstance(e.response.data, dict) else ""
            if status == 429 or error in SLACK_TRANSIENT:
                raise Retry(
                    f"Slack {method}: {error or 'rate limited'} ({status})", _header(e.response.headers)
                ) from None
            if status >= 500:
                raise Retry(f"Slack {method}: HTTP {status}") from None
            if error in SLACK_GONE:
                raise Gone(f"Slack {method}: {error}") from None
            raise GiveUp(f"Slack {method}: {error or f'HTTP {status}'}") from None
        except SlackClientError as e:
            raise GiveUp(f"Slack {method}: {type(e).__name__}") from None
        except (OSError, ValueError) as e:  # URLError, timeouts, resets; a body that is not JSON
            raise Retry(f"Slack {method}: {_reason(e)}") from None
        return dict(response.data) if isinstance(response.data, dict) else {}


class WebhookSink:
    """A JSON POST to an operator-configured URL (Teams/Mattermost/PagerDuty/chat-ops bridge)."""

    def __init__(self, name: str, url: str, *, timeout: float = 5.0):
        self.name = f"webhook:{name}"
        self.label = name
        self._url = url
        self.timeout = timeout

    def __repr__(self) -> str:  # NB: never the URL
        return f"WebhookSink({self.label!r})"

    def post(self, body: dict) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        request = urllib.request.Request(
            self._url,
            data=data,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "canary-gate-sidecar"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read(65536)
        except urllib.error.HTTPError as e:
            status = e.code
            after = _header(e.headers)
            e.close()
            if status in (408, 425, 429) or status >= 500:
                raise Retry(f"webhook {self.label}: HTTP {status}", after) from None
            raise GiveUp(f"webhook {self.label}: HTTP {status}") from None
        except (OSError, ValueError) as e:
            raise Retry(f"webhook {self.label}: {_reason(e)}") from None


def _header(headers) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return retry_after(value)


def _reason(e: BaseException) -> str:
    """What went wrong, without any URL: urllib's reason (refused, timed out), else the type."""
    reason = getattr(e, "reason", None)
    if isinstance(reason, BaseException):
        e = reason
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, ConnectionError):
        return type(e).__name__
    return type(e).__name__
