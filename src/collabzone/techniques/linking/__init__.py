"""Linking: PII normalisation, keyed pseudonyms (HMAC / OPRF), PSI and the overlap technique.

The provider side (:func:`prepare`) runs at the data owner's premises: it normalises the
identifier columns named by a :class:`LinkSpec`, turns them into tokens and drops the raw
PII. The zone side stores only tokens and answers :class:`Overlap` requests. Peer-to-peer
PSI (:func:`intersect`) needs no key and no trusted party. See docs/linking.md.
"""

from __future__ import annotations

from collabzone.crypto.oprf import (
    BlindRequest,
    EvaluateResponse,
    OprfClient,
    OprfServer,
    OprfShareServer,
    decode_token,
    oprf_tokens,
    split_key,
)
from collabzone.techniques.linking._hmac import LinkKey, hmac_purpose, hmac_tokens, link_key
from collabzone.techniques.linking._normalise import (
    NORMALISERS,
    make_normaliser,
    normalise_dob,
    normalise_email,
    normalise_name,
    normalise_national_id,
    normalise_phone,
    normalise_postcode,
)
from collabzone.techniques.linking._overlap import Overlap, suppress
from collabzone.techniques.linking._prepare import PrepareReport, prepare, read_raw
from collabzone.techniques.linking._psi import (
    PsiMessage,
    PsiReceiver,
    PsiResult,
    PsiSender,
    intersect,
)
from collabzone.techniques.linking._psi_sum import (
    SumQuery,
    SumReceiver,
    SumReply,
    SumResult,
    SumSender,
    intersect_sum,
)
from collabzone.techniques.linking._spec import FieldSpec, LinkSpec, MatchKey, load_spec, parse_spec
from collabzone.techniques.linking._tokenise import (
    FieldCounts,
    Tokenised,
    tokenise_hmac,
    tokenise_oprf,
)
from collabzone.techniques.linking._vector import ColumnResult, normalise_column

__all__ = [
    "NORMALISERS",
    "BlindRequest",
    "ColumnResult",
    "EvaluateResponse",
    "FieldCounts",
    "FieldSpec",
    "LinkKey",
    "LinkSpec",
    "MatchKey",
    "OprfClient",
    "OprfServer",
    "OprfShareServer",
    "Overlap",
    "PrepareReport",
    "PsiMessage",
    "PsiReceiver",
    "PsiResult",
    "PsiSender",
    "SumQuery",
    "SumReceiver",
    "SumReply",
    "SumResult",
    "SumSender",
    "Tokenised",
    "decode_token",
    "hmac_purpose",
    "hmac_tokens",
    "intersect",
    "intersect_sum",
    "link_key",
    "load_spec",
    "make_normaliser",
    "normalise_column",
    "normalise_dob",
    "normalise_email",
    "normalise_name",
    "normalise_national_id",
    "normalise_phone",
    "normalise_postcode",
    "oprf_tokens",
    "parse_spec",
    "prepare",
    "read_raw",
    "split_key",
    "suppress",
    "tokenise_hmac",
    "tokenise_oprf",
]
