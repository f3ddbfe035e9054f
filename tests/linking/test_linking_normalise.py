"""Normalisation rules: documented examples, property tests, vector == scalar, SSNs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from linking_support import SHARED_DATA

from collabzone.errors import InvalidInputError
from collabzone.techniques.linking import (
    LinkKey,
    hmac_tokens,
    make_normaliser,
    normalise_column,
    normalise_dob,
    normalise_email,
    normalise_name,
    normalise_national_id,
    normalise_phone,
    normalise_postcode,
)
from collabzone.techniques.linking._normalise import luhn_valid, ssn_valid

# -- documented rules ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rules", "expected"),
    [
        ("  Jane.Doe@Example.COM ", "plain", "jane.doe@example.com"),
        ("jane.doe+news@example.com", "plain", "jane.doe+news@example.com"),
        ("jane.doe+news@example.com", "plus_tags", "jane.doe@example.com"),
        ("J.A.N.E+x@GoogleMail.com", "gmail", "jane@gmail.com"),
        ("j.ane+x@example.com", "gmail", "j.ane+x@example.com"),
        ("+tag@gmail.com", "gmail", None),
        ("no-at-sign.example.com", "plain", None),
        ("a@@b.com", "plain", None),
        ("a b@c.com", "plain", None),
        ("a@localhost", "plain", None),
        ("a@b.com\n", "plain", "a@b.com"),
    ],
)
def test_email_rules(raw: str, rules: str, expected: str | None) -> None:
    assert normalise_email(raw, rules) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("07911 123456", "GB", "+447911123456"),
        ("+44 7911 123456", "US", "+447911123456"),
        ("(0)7911-123-456", "GB", "+447911123456"),
        ("(202) 456-1111", "US", "+12024561111"),
        ("12", "GB", None),
        ("not a phone", "GB", None),
        ("+44 0000 000000", "GB", None),
    ],
)
def test_phone_rules(raw: str, region: str, expected: str | None) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  José   MARÍA  ", "jose maria"),
        ("O'Brien-Smith", "obrien smith"),
        ("Ｊｏｈｎ", "john"),  # full-width letters: NFKC
        ("Zoë\u00a0Ünal", "zoe unal"),
        ("R2D2", None),
        ("---", None),
    ],
)
def test_name_rules(raw: str, expected: str | None) -> None:
    assert normalise_name(raw) == expected


TODAY = dt.date(2026, 11, 25)


@pytest.mark.parametrize(
    ("raw", "order", "expected"),
    [
        ("1980-03-12", "DMY", "1980-03-12"),
        ("19800312", "DMY", "1980-03-12"),
        ("12/03/1980", "DMY", "1980-03-12"),
        ("12/03/1980", "MDY", "1980-12-03"),
        ("12.3.1980", "DMY", "1980-03-12"),
        ("1990-02-30", "DMY", None),
        ("31/04/1990", "DMY", None),
        ("29/02/2001", "DMY", None),
        ("29/02/2000", "DMY", "2000-02-29"),
        ("1850-01-01", "DMY", None),
        ("2030-01-01", "DMY", None),
        ("yesterday", "DMY", None),
    ],
)
def test_dob_rules(raw: str, order: str, expected: str | None) -> None:
    assert normalise_dob(raw, order, today=TODAY) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("sw1a1aa", "GB", "SW1A 1AA"),
        (" SW1A 1AA ", "GB", "SW1A 1AA"),
        ("M1 1AE", "GB", "M1 1AE"),
        ("XYZ", "GB", None),
        ("02139-4307", "US", "02139"),
        ("2139", "US", None),
        ("75 008", "any", "75008"),
    ],
)
def test_postcode_rules(raw: str, country: str, expected: str | None) -> None:
    assert normalise_postcode(raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "scheme", "expected"),
    [
        ("123-45-6789", "us_ssn", "123456789"),
        ("000-12-3456", "us_ssn", None),
        ("666-12-3456", "us_ssn", None),
        ("923-12-3456", "us_ssn", None),
        ("123-00-3456", "us_ssn", None),
        ("123-45-0000", "us_ssn", None),
        ("046 454 286", "ca_sin", "046454286"),  # the canonical valid SIN example
        ("046 454 287", "ca_sin", None),
        ("111222333", "nl_bsn", "111222333"),
        ("111222334", "nl_bsn", None),
        ("4539 1488 0343 6467", "luhn", "4539148803436467"),
        ("12a45", "digits", None),
        ("١٢٣", "digits", None),  # non-ASCII digits are refused, not folded
    ],
)
def test_national_id_rules(raw: str, scheme: str, expected: str | None) -> None:
    assert normalise_national_id(raw, scheme) == expected


def test_bad_normaliser_and_options_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="unknown normaliser"):
        make_normaliser("shoe_size")
    with pytest.raises(InvalidInputError, match="no option"):
        make_normaliser("email", {"region": "GB"})
    with pytest.raises(InvalidInputError, match="bad value"):
        make_normaliser("phone", {"region": "Atlantis"})


# -- properties ---------------------------------------------------------------------

emails = st.builds(
    lambda local, domain, tld: f"{local}@{domain}.{tld}",
    st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789.+_-", min_size=1, max_size=20),
    st.text("abcdefghijklmnopqrstuvwxyzXYZ0123456789", min_size=1, max_size=12),
    st.sampled_from(["com", "co.uk", "ORG", "gmail.com"]),
)
any_text = st.text(max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.one_of(emails, any_text), st.sampled_from(["plain", "plus_tags", "gmail"]))
def test_email_is_idempotent(raw: str, rules: str) -> None:
    once = normalise_email(raw, rules)
    if once is not None:
        assert normalise_email(once, rules) == once


@settings(max_examples=300, deadline=None)
@given(any_text)
def test_name_is_idempotent(raw: str) -> None:
    once = normalise_name(raw)
    if once is not None:
        assert normalise_name(once) == once


@settings(max_examples=200, deadline=None)
@given(st.dates(dt.date(1900, 1, 1), TODAY), st.sampled_from(["DMY", "MDY"]))
def test_dob_spellings_agree_and_are_idempotent(date: dt.date, order: str) -> None:
    day_first = f"{date.day}/{date.month}/{date.year}"
    month_first = f"{date.month}-{date.day}-{date.year}"
    spellings = [
        date.isoformat(),
        date.strftime("%Y%m%d"),
        day_first if order == "DMY" else month_first,
    ]
    results = {normalise_dob(s, order, today=TODAY) for s in spellings}
    assert results == {date.isoformat()}
    assert normalise_dob(date.isoformat(), order, today=TODAY) == date.isoformat()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["7911 123456", "20 7946 0958", "113 496 0000"]), st.sampled_from([0, 1, 2]))
def test_phone_spellings_give_one_token(national: str, style: int) -> None:
    spellings = [
        "0" + national,
        "+44 " + national,
        "+44 (0)" + national,
        "0044" + national.replace(" ", ""),
        ("0" + national).replace(" ", "-"),
    ]
    key = LinkKey(1, bytes(range(32)))
    normalised = normalise_column(pa.array(spellings), "phone", {"region": "GB"}).values
    assert normalised.null_count == 0
    assert len(set(hmac_tokens(key, normalised).to_pylist())) == 1


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["Jane.Doe", "jane.doe", "JANE.DOE"]), st.text(" \t", max_size=3))
def test_equivalent_email_spellings_give_one_token(local: str, pad: str) -> None:
    spellings = [f"{pad}{local}@example.com{pad}", f"{local.lower()}@EXAMPLE.com"]
    key = LinkKey(3, bytes(range(32)))
    tokens = hmac_tokens(key, normalise_column(pa.array(spellings), "email").values)
    assert tokens.null_count == 0 and len(set(tokens.to_pylist())) == 1


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.one_of(emails, any_text, st.none()), max_size=30),
    st.sampled_from(["plain", "plus_tags", "gmail"]),
)
def test_vectorised_email_equals_scalar(raw: list[str | None], rules: str) -> None:
    result = normalise_column(pa.array(raw, type=pa.string()), "email", {"rules": rules})
    expected = [None if v is None or not v.strip() else normalise_email(v, rules) for v in raw]
    assert result.values.to_pylist() == expected
    blanks = sum(1 for v in raw if v is None or not v.strip())
    assert result.missing == blanks
    assert result.invalid == sum(1 for e in expected if e is None) - blanks


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(any_text, st.none()), max_size=30))
def test_vectorised_name_equals_scalar(raw: list[str | None]) -> None:
    result = normalise_column(pa.array(raw, type=pa.string()), "name")
    expected = [None if v is None or not v.strip() else normalise_name(v) for v in raw]
    assert result.values.to_pylist() == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**9 - 1))
def test_luhn_detects_every_single_digit_error(number: int) -> None:
    digits = str(number).zfill(9)
    check = next(d for d in "0123456789" if luhn_valid(digits + d))
    valid = digits + check
    for i in range(len(valid)):
        for d in "0123456789":
            if d != valid[i]:
                assert not luhn_valid(valid[:i] + d + valid[i + 1 :])


# -- the real SSN column --------------------------------------------------------------


def test_no_collisions_over_adult_ssns() -> None:
    path = SHARED_DATA / "datasynthesizer_adult" / "adult_ssn.csv"
    if not path.exists():
        pytest.skip(f"shared data missing: {path}")
    raw = pacsv.read_csv(path).column("ssn")
    result = normalise_column(raw, "national_id", {"scheme": "us_ssn"})
    raw_list = raw.to_pylist()
    structurally_bad = sum(1 for s in raw_list if not ssn_valid(s.replace("-", "")))
    assert result.missing == 0
    assert result.invalid == structurally_bad  # counted, never hashed
    tokens = hmac_tokens(LinkKey(1, bytes(range(32))), result.values)
    present = [t for t in tokens.to_pylist() if t is not None]
    assert len(present) == len(raw_list) - structurally_bad
    assert len(set(present)) == len(present)
    # without the SSA rules every one of the 32,561 gets a token, and no two collide
    digits = normalise_column(raw, "national_id", {"scheme": "digits", "length": 9})
    all_tokens = hmac_tokens(LinkKey(1, bytes(range(32))), digits.values).to_pylist()
    assert digits.invalid == 0 and len(set(all_tokens)) == len(raw_list) == 32_561
    # the same digits written differently give the same token
    respelled = pa.array([s.replace("-", " ") for s in raw_list[:500]])
    again = hmac_tokens(
        LinkKey(1, bytes(range(32))),
        normalise_column(respelled, "national_id", {"scheme": "us_ssn"}).values,
    )
    assert again.to_pylist() == tokens.to_pylist()[:500]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            ("phone", {"region": "GB"}),
            ("phone", {"region": "US"}),
            ("postcode", {"country": "GB"}),
            ("postcode", {"country": "US"}),
            ("postcode", {}),
            ("national_id", {"scheme": "us_ssn"}),
            ("national_id", {"scheme": "luhn"}),
            ("dob", {"order": "MDY"}),
            ("text", {}),
        ]
    ),
    st.one_of(any_text, st.from_regex(r"\+?[0-9 ()\-]{6,16}", fullmatch=True)),
)
def test_every_normaliser_is_idempotent(kind_options: tuple[str, dict[str, str]], raw: str) -> None:
    kind, options = kind_options
    normalise = make_normaliser(kind, options)
    once = normalise(raw)
    if once is not None:
        assert normalise(once) == once


@pytest.mark.parametrize(
    "raw", ["a@b.com\x1c", "\x85a@b.com", "\u2028a@b.com", "a@b.com\u200b", "\u212a@b.com"]
)
def test_vectorised_email_agrees_on_unusual_whitespace(raw: str) -> None:
    assert normalise_column(pa.array([raw]), "email").values.to_pylist() == [normalise_email(raw)]
