"""Look-alike audiences: a seed owner's labels train an allowlisted model on a partner's
features inside the zone; the partner alone receives the audience (its own tokens, never
an overlap member), the seed owner the audience size and quality. See docs/lookalike.md.
"""

from __future__ import annotations

from collabzone.techniques.lookalike._model import (
    MODELS,
    auc,
    build_model,
    coin,
    draw_audience,
    lift,
    quality,
    randomized_response,
    rr_keep_probability,
    single_threaded,
)
from collabzone.techniques.lookalike._technique import (
    COIN_PURPOSE,
    DEFAULT_DELIVERY_RATE,
    Lookalike,
)

__all__ = [
    "COIN_PURPOSE",
    "DEFAULT_DELIVERY_RATE",
    "MODELS",
    "Lookalike",
    "auc",
    "build_model",
    "coin",
    "draw_audience",
    "lift",
    "quality",
    "randomized_response",
    "rr_keep_probability",
    "single_threaded",
]
