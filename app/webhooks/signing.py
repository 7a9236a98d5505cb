"""Standard Webhooks signing: an endpoint's secret, and the headers that sign each attempt.

``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">``
with the endpoint's secret; for a day after a rotation the previous secret's signature follows
(space-separated), so a receiver that has either verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from app.models import WebhookEndpoint, WebhookMessage

#: How long the secret before a rotation still signs.
ROTATION_OVERLAP = timedelta(hours=24)
USER_AGENT = "Worklane-Webhooks/1"


def new_secret() -> str:
    """A signing secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def _signature(secret: str, signed: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def signing_secrets(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the current one, and the previous during a rotation."""
    found = [endpoint.secret]
    expires = endpoint.previous_secret_expires_at
    if endpoint.previous_secret and expires is not None and expires > now:
        found.append(endpoint.previous_secret)
    return found


def request_headers(endpoint: WebhookEndpoint, message: WebhookMessage, now: datetime) -> dict[str, str]:
    """The headers of one attempt: the message id, this attempt's time and its signatures."""
    timestamp = str(int(now.timestamp()))
    signed = f"{message.webhook_id}.{timestamp}.{message.body}".encode()
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message.webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": " ".join(
            _signature(secret, signed) for secret in signing_secrets(endpoint, now)
        ),
    }
