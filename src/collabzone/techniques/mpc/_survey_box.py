"""The zone's side of a survey: invitations, one answer each, per-server sealed inboxes.

One directory per survey under the zone's survey root::

    <root>/keys/<server>.pub          each compute server's public key (it publishes it)
    <root>/<survey>/survey.json       the survey, the servers' public keys, the field
    <root>/<survey>/tokens.bin        SHA-256 of every invitation, sorted (fixed at creation)
    <root>/<survey>/used.bin          one byte per invitation in that sorted order: 1 once
                                      used (written in place: no order of use, no time)
    <root>/<survey>/inbox/<i>/<id>.json   server i's sealed shares of one answer
    <root>/<survey>/closed            present once the report ran: no more answers

An answer spends its invitation and drops one sealed file per server under a fresh random
id, with its modification time set to 0, so nothing on disk ties an invitation to an
answer (the invitation is a URL fragment: it never reaches an access log either). The
zone cannot open the files: each is sealed to one server's key.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import json
import mmap
import os
import re
import secrets
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from collabzone.errors import ConflictError, InvalidInputError, NotAuthorisedError, NotFoundError
from collabzone.techniques.mpc._survey import SurveySpec, unseal

SURVEY_ID = re.compile(r"^[0-9a-f]{16}$")
DIGEST = 32
MAX_SEALED = 64 * 1024
"""Bytes of one sealed share list (100 questions x 20 answers of 40 digits fit)."""


def _write(path: Path, doc: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, sort_keys=True)
    os.replace(tmp, path)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def publish_server_key(root: Path, server: str, public: str) -> None:
    """A compute server publishes its survey public key (see :meth:`ShareStore.inbox_key`)."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", server):
        raise InvalidInputError(f"{server!r} is not a party name")
    folder = Path(root) / "keys"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{server}.pub").write_text(public, "utf-8")


class SurveyBox:
    """One survey's directory at the zone."""

    def __init__(self, root: Path, survey: str) -> None:
        if not SURVEY_ID.fullmatch(survey):
            raise NotFoundError("no such survey")
        self.root, self.id = Path(root), survey
        self.path = self.root / survey

    @classmethod
    def create(cls, root: Path, spec: SurveySpec) -> tuple[SurveyBox, list[str]]:
        """A new survey and its invitation tokens (shown once, stored only as hashes)."""
        from collabzone.techniques.mpc._shares import field, frac_length

        keys = []
        for server in spec.servers:
            published = Path(root) / "keys" / f"{server}.pub"
            if not published.exists():
                raise ConflictError(
                    f"compute server {server!r} has not published its survey key: it runs "
                    "publish_server_key(root, name, store.inbox_public())"
                )
            keys.append(published.read_text("utf-8").strip())
        box = cls(root, secrets.token_hex(8))
        box.path.mkdir(parents=True)
        for index in range(len(spec.servers)):
            (box.path / "inbox" / str(index)).mkdir(parents=True)
        tokens = [secrets.token_urlsafe(24) for _ in range(spec.invitations)]
        (box.path / "tokens.bin").write_bytes(b"".join(sorted(_hash(t) for t in tokens)))
        (box.path / "used.bin").write_bytes(bytes(len(tokens)))
        _write(
            box.path / "survey.json",
            {
                "id": box.id,
                "spec": spec.to_json(),
                "keys": keys,
                "modulus": str(int(field().modulus)),
                "one": str(1 << frac_length()),
            },
        )
        return box, tokens

    def document(self) -> dict[str, Any]:
        """What the respondent's page needs: questions, servers' keys, the field."""
        try:
            doc: dict[str, Any] = json.loads((self.path / "survey.json").read_text("utf-8"))
        except FileNotFoundError:
            raise NotFoundError("no such survey") from None
        return doc

    def spec(self) -> SurveySpec:
        return SurveySpec.from_json(self.document()["spec"])

    @property
    def closed(self) -> bool:
        return (self.path / "closed").exists()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with (self.path / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def answer(self, token: str, sealed: Sequence[Mapping[str, Any]]) -> None:
        """Spend ``token`` and file one sealed share list per server (all or nothing)."""
        doc = self.document()
        if len(sealed) != len(doc["keys"]) or not all(
            isinstance(s, Mapping)
            and set(s) == {"epk", "iv", "ct"}
            and all(isinstance(v, str) for v in s.values())
            and sum(len(v) for v in s.values()) <= MAX_SEALED
            for s in sealed
        ):
            raise InvalidInputError(
                f"send one sealed share list ({{epk, iv, ct}}) per server ({len(doc['keys'])})"
            )
        digest = _hash(token)
        with self._locked():
            if self.closed:
                raise ConflictError("this survey is closed: its report has been computed")
            with (self.path / "tokens.bin").open("rb") as handle:
                digests = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                count = len(digests) // DIGEST
                at = bisect.bisect_left(
                    range(count), digest, key=lambda i: digests[i * DIGEST : (i + 1) * DIGEST]
                )
                known = at < count and digests[at * DIGEST : (at + 1) * DIGEST] == digest
                digests.close()
            fd = os.open(self.path / "used.bin", os.O_RDWR)
            try:
                if not known or os.pread(fd, 1, at) != b"\0":
                    raise NotAuthorisedError("this invitation is unknown or was already used")
                answer = secrets.token_hex(16)
                for index, part in enumerate(sealed):
                    target = self.path / "inbox" / str(index) / f"{answer}.json"
                    _write(target, dict(part))
                    os.utime(target, (0, 0))
                os.pwrite(fd, b"\1", at)
            finally:
                os.close(fd)

    def close(self) -> None:
        with self._locked():
            (self.path / "closed").touch()

    def status(self) -> dict[str, int]:
        """How many invitations were answered and how many are left (counts only)."""
        used = (self.path / "used.bin").read_bytes()
        return {"answered": used.count(1), "unused": used.count(0)}

    def inbox(self, index: int) -> dict[str, dict[str, str]]:
        """Server ``index``'s sealed files by answer id (what the zone relays to it)."""
        folder = self.path / "inbox" / str(index)
        return {f.stem: json.loads(f.read_text("utf-8")) for f in sorted(folder.glob("*.json"))}


def open_inbox(
    sealed: Mapping[str, Mapping[str, str]],
    key: ec.EllipticCurvePrivateKey,
    survey: str,
    index: int,
    width: int,
) -> dict[str, list[int]]:
    """On server ``index``: its shares per answer id; answers that do not open are left out
    (the servers then keep only the ids every one of them could open)."""
    out = {}
    for answer, part in sealed.items():
        try:
            values = unseal(key, part, survey, index)
        except InvalidInputError:
            continue
        if len(values) == width:
            out[answer] = values
    return out


def package(
    spec: SurveySpec,
    survey: str,
    index: int,
    shares: Mapping[str, Sequence[int]],
    answers: Sequence[str],
) -> dict[str, Any]:
    """Server ``index``'s upload package of the answers ``answers`` (ids all servers opened),
    for :meth:`ShareStore.put`: dataset ``survey-<id>``, one column per (question, answer)."""
    columns = spec.columns()
    return {
        "holding": {
            "dataset": f"survey-{survey}",
            "provider": f"survey {survey}",
            "rows": len(answers),
            "bounds": {c: [0.0, 1.0] for c in columns},
            "reports": ["sum"],
            "recipients": [spec.recipient],
            "min_group_size": spec.min_respondents,
            "servers": len(spec.servers),
            "threshold": spec.threshold,
            "index": index,
            "groups": [len(q.answers) for q in spec.questions],
        },
        "shares": {c: [shares[a][k] for a in answers] for k, c in enumerate(columns)},
    }
