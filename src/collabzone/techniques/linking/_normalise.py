"""Scalar normalisers: one documented rule set per kind of identifier.

Each normaliser maps one raw value to its canonical spelling, or to ``None`` when the value
is invalid (an impossible date, a phone number that cannot exist, an ID whose checksum
fails). Invalid values are counted by the caller and never hashed: hashing garbage would
produce tokens that silently match nothing (or, worse, match each other).

Every normaliser is idempotent: ``n(n(x)) == n(x)`` for every valid ``x``.
These functions are the reference semantics; :mod:`._vector` applies them to whole
columns (vectorised for e-mail, one call per distinct value for the others).

Rules:

* ``email``: trim, lowercase; must be ``local@domain`` with one ``@``, no whitespace, a
  domain of dot-separated ``[a-z0-9-]`` labels with a dot. Option ``rules``: ``"plain"``
  (default), ``"plus_tags"`` (drop ``+tag`` from the local part for every provider) or
  ``"gmail"`` (for gmail.com / googlemail.com only: drop dots and ``+tag`` in the local part
  and use gmail.com).
* ``phone``: parsed by ``phonenumbers`` in the dataset's ``region`` (default ``GB``);
  must be a valid number; canonical form E.164 (``+447911123456``).
* ``name``: Unicode NFKC, accents folded (NFKD, combining marks dropped), case folded,
  apostrophes removed, hyphens, dots and commas become spaces, whitespace collapsed;
  must contain a letter and no digit.
* ``dob``: ISO 8601 ``YYYY-MM-DD`` from ``YYYY-MM-DD``, ``YYYYMMDD``, ``YYYY/MM/DD`` and
  ``D/M/YYYY``-style dates with ``/``, ``.`` or ``-`` in the dataset's ``order`` (``DMY``
  default, or ``MDY``); impossible dates (``1990-02-30``) and dates outside
  ``[min_year, today]`` are invalid.
* ``postcode``: whitespace removed, uppercase; ``country`` ``GB`` (outward + inward code,
  canonical ``SW1A 1AA``), ``US`` (ZIP or ZIP+4, canonical 5 digits) or ``any`` (2 to 10
  letters and digits).
* ``national_id``: digits only (spaces, dots and dashes removed); ``scheme`` ``us_ssn``
  (9 digits; area not 000, 666 or 9xx, group not 00, serial not 0000; SSNs have no
  checksum), ``ca_sin`` (9 digits, Luhn), ``nl_bsn`` (9 digits, the 11-test), ``luhn`` (any
  length, Luhn) or ``digits`` (digits only, ``length`` if given).
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

import phonenumbers

from collabzone.errors import InvalidInputError

Normaliser = Callable[[str], str | None]

_EMAIL_RE = re.compile(
    r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9-]{2,63}"
)
EMAIL_PATTERN = f"^{_EMAIL_RE.pattern}$"
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
EMAIL_RULES = ("plain", "plus_tags", "gmail")


def normalise_email(value: str, rules: str = "plain") -> str | None:
    """Canonical e-mail address (see the module docstring), or None if invalid."""
    text = value.strip().lower()
    if not _EMAIL_RE.fullmatch(text):
        return None
    local, _, domain = text.partition("@")
    if rules == "plus_tags" or (rules == "gmail" and domain in GMAIL_DOMAINS):
        local = local.split("+", 1)[0]
    if rules == "gmail" and domain in GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local:
        return None
    return f"{local}@{domain}"


def normalise_phone(value: str, region: str = "GB") -> str | None:
    """E.164 form of a valid phone number (``region`` for numbers without ``+``)."""
    text = value.strip()
    if not text or len(text) > 40:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_NAME_SPACES = re.compile(r"[\s\-.,_]+")


def normalise_name(value: str) -> str | None:
    """Person name folded to lowercase ASCII-like letters and single spaces."""
    text = unicodedata.normalize("NFKC", value)
    text = "".join(
        ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch)
    )
    text = text.casefold().replace("'", "").replace("\u2019", "")
    text = _NAME_SPACES.sub(" ", text).strip()
    if not text or any(ch.isdigit() for ch in text) or not any(ch.isalpha() for ch in text):
        return None
    if not all(ch.isalpha() or ch == " " for ch in text):
        return None
    return text


_ISO_RE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DAY_FIRST_RE = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$")


def normalise_dob(
    value: str, order: str = "DMY", min_year: int = 1900, today: dt.date | None = None
) -> str | None:
    """ISO 8601 date of birth, or None for unparseable, impossible or future dates."""
    text = value.strip()
    if match := _ISO_RE.match(text) or _COMPACT_RE.match(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := _DAY_FIRST_RE.match(text):
        first, second, year = (int(g) for g in match.groups())
        day, month = (first, second) if order == "DMY" else (second, first)
    else:
        return None
    try:
        date = dt.date(year, month, day)
    except ValueError:
        return None
    latest = today or dt.date.today()
    if date.year < min_year or date > latest:
        return None
    return date.isoformat()


_GB_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_US_ZIP = re.compile(r"^(\d{5})(?:-?\d{4})?$")
_ANY_POSTCODE = re.compile(r"^[A-Z0-9]{2,10}$")


def normalise_postcode(value: str, country: str = "any") -> str | None:
    """Canonical postcode for ``country`` (GB, US or any), or None if malformed."""
    text = "".join(value.split()).upper()
    if country == "GB":
        match = _GB_POSTCODE.match(text)
        return f"{match.group(1)} {match.group(2)}" if match else None
    if country == "US":
        match = _US_ZIP.match(text)
        return match.group(1) if match else None
    text = text.replace("-", "")
    return text if _ANY_POSTCODE.match(text) else None


def luhn_valid(digits: str) -> bool:
    """True if ``digits`` passes the Luhn (mod 10) checksum."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def bsn_valid(digits: str) -> bool:
    """True if a 9-digit Dutch BSN passes the 11-test (weights 9..2, then -1)."""
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


def ssn_valid(digits: str) -> bool:
    """True if a 9-digit US SSN is structurally possible (no checksum exists for SSNs)."""
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


_ID_SEPARATORS = re.compile(r"[\s.\-/]")
NATIONAL_ID_SCHEMES = ("us_ssn", "ca_sin", "nl_bsn", "luhn", "digits")


def normalise_national_id(
    value: str, scheme: str = "digits", length: int | None = None
) -> str | None:
    """Digits of a national ID that passes its scheme's checks, or None."""
    digits = _ID_SEPARATORS.sub("", value.strip())
    if not digits.isascii() or not digits.isdigit():
        return None
    if scheme in ("us_ssn", "ca_sin", "nl_bsn"):
        if len(digits) != 9:
            return None
        check = {"us_ssn": ssn_valid, "ca_sin": luhn_valid, "nl_bsn": bsn_valid}[scheme]
        return digits if check(digits) else None
    if scheme == "luhn":
        return digits if len(digits) >= 2 and luhn_valid(digits) else None
    if length is not None and len(digits) != length:
        return None
    return digits


_OPTIONS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "email": {"rules": lambda v: v in EMAIL_RULES},
    "phone": {
        "region": lambda v: isinstance(v, str) and v.upper() in phonenumbers.SUPPORTED_REGIONS
    },
    "name": {},
    "dob": {
        "order": lambda v: v in ("DMY", "MDY"),
        "min_year": lambda v: isinstance(v, int) and 1800 <= v <= 2100,
    },
    "postcode": {"country": lambda v: v in ("GB", "US", "any")},
    "national_id": {
        "scheme": lambda v: v in NATIONAL_ID_SCHEMES,
        "length": lambda v: isinstance(v, int) and 1 <= v <= 32,
    },
    "text": {},
}

NORMALISERS = tuple(_OPTIONS)


def _normalise_text(value: str) -> str | None:
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    return text or None


def make_normaliser(kind: str, options: Mapping[str, Any] | None = None) -> Normaliser:
    """The scalar normaliser ``kind`` bound to ``options``; bad kinds/options raise.

    >>> make_normaliser("email", {"rules": "gmail"})("  J.Doe+news@GMail.com ")
    'jdoe@gmail.com'
    """
    if kind not in _OPTIONS:
        raise InvalidInputError(f"unknown normaliser {kind!r}; use one of {', '.join(NORMALISERS)}")
    opts = dict(options or {})
    for name, value in opts.items():
        valid = _OPTIONS[kind].get(name)
        if valid is None:
            allowed = ", ".join(_OPTIONS[kind]) or "none"
            raise InvalidInputError(
                f"normaliser {kind!r} has no option {name!r} (options: {allowed})"
            )
        if not valid(value):
            raise InvalidInputError(f"option {name!r} of normaliser {kind!r} has a bad value")
    if kind == "phone" and "region" in opts:
        opts["region"] = str(opts["region"]).upper()
    functions: dict[str, Callable[..., str | None]] = {
        "email": normalise_email,
        "phone": normalise_phone,
        "name": normalise_name,
        "dob": normalise_dob,
        "postcode": normalise_postcode,
        "national_id": normalise_national_id,
        "text": _normalise_text,
    }
    function = functions[kind]

    def normalise(value: str) -> str | None:
        return function(value, **opts)

    return normalise
