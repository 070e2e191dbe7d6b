"""Notifications from the sidecar: Slack (``slack_sdk``) and generic JSON webhooks, off the webhook path.

* :mod:`.notices`: what happened (a gate holds a rollout, is opened or closed; a rollout is promoted,
  aborted or rolled back), each with a stable id, and how it reads (pure).
* :mod:`.sinks`: one delivery to Slack (chat.postMessage, then thread replies and chat.update of the
  top message) or to a webhook; each says "sent", "retry after N s" or "give up".
* :mod:`.delivery`: the bounded queue and its thread: backoff, Retry-After, drops with a metric.
* :mod:`.notifier`: watches the cache and the writer's holds, routes each CanaryGate to its
  receivers (annotations ``notify.piggysec.com/*``), remembers what was sent in the CanaryGate's
  ``status.notifications`` (written with the sidecar's coalesced status writes).

docs/notifications.md has the design and why no chat button approves anything.
"""
