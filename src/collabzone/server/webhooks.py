"""Notifications: signed webhooks (and e-mail when SMTP is configured).

Owners are told when a request awaits their decision, requesters when theirs is decided.
A payload names the request and its status, never data values. Each delivery carries
``Collabzone-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` under the
party's webhook secret (``GET /v1/notifications`` gives a party its own), so a receiver
can check origin and freshness with :func:`verify_signature`.

Destinations are the operator's to set (``collabzone webhook set`` on the host), never a
party's: each is checked against :mod:`collabzone.server.webhook_targets` when set and at
every delivery, which connects to the address just checked, follows no redirect and gives
up after the configured connect / read timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import smtplib
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx

from collabzone.errors import AuthenticationError, CollabzoneError, InvalidInputError
from collabzone.model import Request, RequestStatus
from collabzone.server._settings import SmtpSettings
from collabzone.server.webhook_targets import (
    IPAddress,
    Network,
    Resolver,
    Target,
    check_destination,
    system_resolver,
)

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


class Refused(Exception):
    """A delivery the destination policy stopped (not retried)."""


def _post(
    target: Target,
    address: IPAddress,
    headers: dict[str, str],
    body: bytes,
    timeout: float,
    verify: ssl.SSLContext | bool = True,
) -> int:
    """POST ``body`` to ``address`` (the checked one), naming ``target``'s host in ``Host``
    and in TLS (SNI and certificate check); no redirects, no proxies from the environment."""
    host = f"[{address}]" if address.version == 6 else str(address)
    default = 443 if target.scheme == "https" else 80
    named = target.host if ":" not in target.host else f"[{target.host}]"
    url = f"{target.scheme}://{host}:{target.port}{target.path}"
    headers = {**headers, "Host": named if target.port == default else f"{named}:{target.port}"}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    with httpx.Client(
        timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False, verify=verify
    ) as c:
        response = c.post(url, content=body, headers=headers, extensions=extensions)
    if response.is_redirect:
        raise Refused(f"answered {response.status_code} (a redirect): not followed")
    response.raise_for_status()
    return response.status_code


class Notifier:
    """Destinations (party -> url, e-mail) set by the operator; asynchronous, retried,
    signed deliveries, each checked against the SSRF policy of ``webhook_targets``.
    HTTPS receivers are verified against the system CAs, or ``ca`` (a PEM bundle).

    The destinations file is written by ``collabzone webhook`` on the host and re-read by
    the server when it changes.
    """

    def __init__(
        self,
        path: Path,
        secret_of: Callable[[str], bytes],
        *,
        smtp: SmtpSettings | None = None,
        timeout: float = 5.0,
        allow: Sequence[Network] = (),
        resolver: Resolver = system_resolver,
        attempts: int = 3,
        ca: Path | None = None,
    ) -> None:
        self._path = path
        self._secret_of = secret_of
        self._smtp = smtp
        self._timeout = timeout
        self._allow = tuple(allow)
        self._resolver = resolver
        self._attempts = attempts
        self._verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=str(ca)) if ca is not None else True
        )
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhooks")
        self._closing = threading.Event()
        self._seen: tuple[int, int] | None = None
        self._subs: dict[str, dict[str, str]] = {}
        self.outcomes: deque[tuple[str, str]] = deque(maxlen=100)
        """The latest deliveries' (party, outcome), newest last (for the operator's eyes)."""

    def _current(self) -> dict[str, dict[str, str]]:
        """The destinations, re-read if the file changed since the last look."""
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._seen != (stat.st_mtime_ns, stat.st_size):
                self._subs = json.loads(self._path.read_text(encoding="utf-8"))
                self._seen = (stat.st_mtime_ns, stat.st_size)
            return dict(self._subs)

    def set_destination(self, party: str, url: str | None, email: str | None) -> dict[str, str]:
        """Record where ``party``'s notices go (the operator's act, on the host). A URL is
        checked now (and again at every delivery) against the SSRF policy."""
        if url is not None:
            check_destination(url, self._allow, self._resolver)
        if email is not None and "@" not in email:
            raise InvalidInputError("give an e-mail address like name@example.org")
        subs = self._current()
        entry = {k: v for k, v in (("url", url), ("email", email)) if v}
        if entry:
            subs[party] = entry
        else:
            subs.pop(party, None)
        self._write(subs)
        return entry

    def _write(self, subs: dict[str, dict[str, str]]) -> None:
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(subs, indent=2, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self._path)

    def destinations(self) -> dict[str, dict[str, str]]:
        """Every party's destination (url, email)."""
        return self._current()

    def subscription(self, party: str) -> dict[str, str]:
        """What ``party`` may know of its own notices: destination and signing secret."""
        return {**self._current().get(party, {}), "secret": self._secret_of(party).hex()}

    def notify(self, request: Request) -> None:
        """Queue the notices ``request``'s current state calls for (never blocks the API)."""
        subs = self._current()
        for party, payload in notices_for(request):
            sub = subs.get(party)
            if sub:
                self._pool.submit(self._deliver, party, sub, payload)

    def _deliver(self, party: str, sub: Mapping[str, str], payload: dict[str, Any]) -> None:
        body = json.dumps({**payload, "party": party, "sent_at": int(time.time())}).encode()
        if "url" in sub:
            self.outcomes.append((party, self._post(party, sub["url"], body)))
        if "email" in sub and self._smtp is not None:
            self._mail(sub["email"], payload)

    def _post(self, party: str, url: str, body: bytes) -> str:
        """Deliver once, retrying transient failures; the outcome in words."""
        outcome = "not attempted"
        for attempt in range(self._attempts):
            headers = {
                "Content-Type": "application/json",
                SIGNATURE_HEADER: sign(self._secret_of(party), body, int(time.time())),
            }
            try:
                target, address = check_destination(url, self._allow, self._resolver)
                status = _post(target, address, headers, body, self._timeout, self._verify)
                return f"delivered ({status})"
            except (CollabzoneError, Refused) as exc:  # policy: retrying cannot help
                log.warning("webhook to %s refused: %s", party, exc)
                return f"refused: {exc}"
            except Exception as exc:  # a receiver's failure must not stop us
                outcome = f"failed: {type(exc).__name__}"
                log.warning("webhook to %s failed (%s), attempt %d", party, outcome, attempt + 1)
                if self._closing.wait(0.2 * 2**attempt):  # shutting down: no more retries
                    break
        return outcome

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
        """Finish queued deliveries (each tried once more at most: no retries from now)."""
        self._closing.set()
        self._pool.shutdown(wait=True)
