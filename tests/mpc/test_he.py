"""HE via a mediator: providers encrypt, the mediator adds without the key, the recipient opens."""

from __future__ import annotations

import numpy as np
import pytest

from collabzone.errors import InvalidInputError, NotAuthorisedError, PolicyRefusal
from collabzone.techniques.mpc._he import SLOTS, RecipientKeys, aggregate, encrypt


def test_mediator_sum_decrypts_to_the_plain_sum_across_slot_chunks(keys: RecipientKeys) -> None:
    public = keys.public_context()
    rng = np.random.default_rng(5)
    vectors = [rng.integers(0, 1000, SLOTS + 10).astype(float) for _ in range(3)]
    total = aggregate(public, [encrypt(public, list(v)) for v in vectors], min_providers=3)
    assert np.allclose(keys.decrypt(total), np.sum(vectors, axis=0), atol=1e-3)


def test_the_mediator_and_providers_cannot_decrypt(keys: RecipientKeys) -> None:
    import tenseal as ts

    public = keys.public_context()
    context = ts.context_from(public)
    assert not context.is_private()
    ciphertext = encrypt(public, [42.0])
    with pytest.raises(ValueError, match="secret_key"):
        ts.ckks_vector_from(context, ciphertext).decrypt()
    private = keys.context.serialize(save_secret_key=True)
    with pytest.raises(NotAuthorisedError):
        aggregate(private, [ciphertext, ciphertext], min_providers=2)
    with pytest.raises(InvalidInputError, match="secret key"):
        encrypt(private, [1.0])


def test_too_few_providers_is_refused(keys: RecipientKeys) -> None:
    public = keys.public_context()
    with pytest.raises(PolicyRefusal) as caught:
        aggregate(public, [encrypt(public, [1.0, 2.0])], min_providers=2)
    assert caught.value.reasons[0].code == "TOO_FEW_PROVIDERS"
    with pytest.raises(InvalidInputError, match="TenSEAL context"):
        aggregate(b"junk", [b"x", b"y"], min_providers=2)
