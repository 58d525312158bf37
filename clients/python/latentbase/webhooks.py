"""Standard Webhooks verification (the scheme shared/src/webhooks/sign.ts signs with): HMAC-SHA256 over "id.timestamp.body"."""
import base64
import binascii
import hashlib
import hmac
import json
import time
from typing import Any, Mapping, Optional, Union

from .errors import WebhookVerificationError

SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


def _key(secret: str) -> bytes:
    raw = secret[len(SECRET_PREFIX):] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if not key:
        raise TypeError("webhook secret must be whsec_ followed by base64")
    return key


def sign_webhook(secret: str, message_id: str, timestamp: int, body: Union[str, bytes]) -> str:
    """``v1,<base64 HMAC>``: what a sender puts in ``webhook-signature`` (for tests and forwarding proxies)."""
    payload = body.encode() if isinstance(body, str) else body
    mac = hmac.new(_key(secret), f"{message_id}.{timestamp}.".encode() + payload, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: Union[str, bytes],
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: Optional[float] = None,
) -> Any:
    """
    Check the ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers against the raw body and return the
    parsed JSON event. ``body`` must be the bytes as received (re-serialized JSON does not verify). Raises
    WebhookVerificationError with ``reason`` one of missing-header, invalid-timestamp, timestamp-too-old,
    timestamp-too-new, bad-signature, invalid-body.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id, ts_header, sig_header = lower.get("webhook-id"), lower.get("webhook-timestamp"), lower.get("webhook-signature")
    missing = [n for n, v in (("webhook-id", msg_id), ("webhook-timestamp", ts_header), ("webhook-signature", sig_header)) if not v]
    if missing:
        raise WebhookVerificationError("missing-header", f"missing header(s): {', '.join(missing)}")
    if not ts_header.strip().isdigit():
        raise WebhookVerificationError("invalid-timestamp", f"webhook-timestamp is not a whole number of seconds: {ts_header!r}")
    timestamp = int(ts_header.strip())
    current = int(time.time() if now is None else now)
    if current - timestamp > tolerance_seconds:
        raise WebhookVerificationError("timestamp-too-old", f"webhook-timestamp is {current - timestamp} s old (tolerance {tolerance_seconds} s)")
    if timestamp - current > tolerance_seconds:
        raise WebhookVerificationError("timestamp-too-new", f"webhook-timestamp is {timestamp - current} s in the future (tolerance {tolerance_seconds} s)")
    payload = body.encode() if isinstance(body, str) else body
    expected = base64.b64decode(sign_webhook(secret, msg_id, timestamp, payload)[3:])
    # Several space-separated signatures are allowed (a sender rotating its secret): any valid v1 one is enough.
    for entry in sig_header.split(" "):
        version, _, mac = entry.partition(",")
        if version != "v1" or not mac:
            continue
        try:
            given = base64.b64decode(mac, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(given, expected):
            if not payload:
                return None
            try:
                return json.loads(payload)
            except ValueError:
                raise WebhookVerificationError("invalid-body", "the signature is valid but the body is not JSON") from None
    raise WebhookVerificationError("bad-signature", "no v1 signature in webhook-signature matches the body and secret")
