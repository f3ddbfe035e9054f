"""Notifications: signed webhooks (and e-mail when SMTP is configured).

Owners are told when a request awaits their decision, requesters when theirs is decided.
A payload names the request and its status, never data values. Each delivery carries
``Collabzone-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` under the
party's webhook secret (returned when the party subscribes), so a receiver can check
origin and freshness with :func:`verify_signature`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from collabzone.errors import AuthenticationError, InvalidInputError
from collabzone.model import Request, RequestStatus
from collabzone.server._settings import SmtpSettings

SIGNATURE_HEADER = "Collabzone-Signature"
log = logging.getLogger("collabzone.server.webhooks")


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: bytes, header: str, body: bytes, *, tolerance: int = 300, now: int | None = None
) -> None:
    """Check a delivery's signature and freshness; raises AuthenticationError if wrong."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (ValueError, KeyError):
        raise AuthenticationError(f"malformed {SIGNATURE_HEADER} header") from None
    current = int(time.time()) if now is None else now
    if abs(current - timestamp) > tolerance:
        raise AuthenticationError("webhook delivery is too old (or clock skew): rejected")
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not hmac.compare_digest(expected, given):
        raise AuthenticationError("webhook signature does not match: rejected")


def notices_for(request: Request) -> list[tuple[str, dict[str, Any]]]:
    """Who to tell about ``request`` now: (party, payload) pairs. Pure."""
    base = {"request_id": request.id, "technique": request.technique, "status": request.status}
    if request.status is RequestStatus.AWAITING_APPROVAL:
        decided = {d.owner for d in request.decisions}
        return [
            (owner, {"event": "request.awaiting_approval", **base})
            for owner in request.owners_to_approve
            if owner not in decided
        ]
    if request.decisions and request.status in (
        RequestStatus.RELEASED,
        RequestStatus.REFUSED,
        RequestStatus.FAILED,
        RequestStatus.APPROVED,
    ):
        return [(request.requester, {"event": "request.decided", **base})]
    return []


Sender = Callable[[str, dict[str, str], bytes], None]


def _http_send(timeout: float) -> Sender:
    def send(url: str, headers: dict[str, str], body: bytes) -> None:
        httpx.post(url, content=body, headers=headers, timeout=timeout).raise_for_status()

    return send


class Notifier:
    """Subscriptions (party -> url, e-mail) and asynchronous, retried deliveries."""

    def __init__(
        self,
        path: Path,
        secret_of: Callable[[str], bytes],
        *,
        smtp: SmtpSettings | None = None,
        timeout: float = 5.0,
        sender: Sender | None = None,
    ) -> None:
        self._path = path
        self._secret_of = secret_of
        self._smtp = smtp
        self._send = sender or _http_send(timeout)
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhooks")
        self._subs: dict[str, dict[str, str]] = (
            json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        )

    def subscribe(self, party: str, url: str | None, email: str | None) -> dict[str, str]:
        """Record where ``party`` wants notices; returns the webhook secret to verify them."""
        if url is not None and not url.startswith(("http://", "https://")):
            raise InvalidInputError("the webhook url must start with http:// or https://")
        if email is not None and "@" not in email:
            raise InvalidInputError("give an e-mail address like name@example.org")
        with self._lock:
            self._subs[party] = {k: v for k, v in (("url", url), ("email", email)) if v}
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._subs), encoding="utf-8")
            os.replace(tmp, self._path)
        return {**self._subs[party], "secret": self._secret_of(party).hex()}

    def notify(self, request: Request) -> None:
        """Queue the notices ``request``'s current state calls for (never blocks the API)."""
        for party, payload in notices_for(request):
            sub = self._subs.get(party)
            if sub:
                self._pool.submit(self._deliver, party, sub, payload)

    def _deliver(self, party: str, sub: Mapping[str, str], payload: dict[str, Any]) -> None:
        body = json.dumps({**payload, "party": party, "sent_at": int(time.time())}).encode()
        if "url" in sub:
            for attempt in range(3):
                headers = {
                    "Content-Type": "application/json",
                    SIGNATURE_HEADER: sign(self._secret_of(party), body, int(time.time())),
                }
                try:
                    self._send(sub["url"], headers, body)
                    break
                except Exception as exc:  # a receiver's failure must not stop us
                    log.warning("webhook to %s failed (%s), attempt %d", party, type(exc), attempt)
                    time.sleep(0.2 * 2**attempt)
        if "email" in sub and self._smtp is not None:
            self._mail(sub["email"], payload)

    def _mail(self, to: str, payload: Mapping[str, Any]) -> None:
        assert self._smtp is not None
        message = EmailMessage()
        message["From"] = self._smtp.sender
        message["To"] = to
        message["Subject"] = f"collabzone: {payload['event']} {payload['request_id']}"
        message.set_content(json.dumps(dict(payload), indent=2, default=str))
        try:
            with smtplib.SMTP(self._smtp.host, self._smtp.port, timeout=10) as smtp:
                if self._smtp.starttls:
                    smtp.starttls()
                if self._smtp.username:
                    smtp.login(self._smtp.username, self._smtp.password or "")
                smtp.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            log.warning("e-mail notice failed (%s)", type(exc).__name__)

    def close(self) -> None:
        """Finish queued deliveries."""
        self._pool.shutdown(wait=True)
