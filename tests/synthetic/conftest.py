"""Small fixed-seed Adult samples (anonymeter's copy of UCI Adult in the shared data)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

ADULT = Path("/work/shared/data/anonymeter_adults/adults_control.csv")
COLUMNS = ["age", "education", "marital", "occupation", "sex", "hr_per_week", "income"]


@pytest.fixture(scope="session")
def adult() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, control, holdout), 600 rows each, disjoint."""
    if not ADULT.exists():
        pytest.skip("shared Adult data not available")
    frame = pd.read_csv(ADULT)[COLUMNS].sample(1800, random_state=7).reset_index(drop=True)
    return frame.iloc[:600], frame.iloc[600:1200], frame.iloc[1200:]


@pytest.fixture(scope="session")
def mst_at_epsilon_1(adult):  # type: ignore[no-untyped-def]
    """MST at epsilon 1 (delta 1e-6) on the training sample, decoded; run once."""
    import numpy as np

    from collabzone.techniques.synthetic.encode import public_domains_of, table_codec
    from collabzone.techniques.synthetic.mst import mst
    from collabzone.techniques.synthetic.technique import rho_for

    train, _, _ = adult
    full = pd.read_csv(ADULT)[COLUMNS]  # the public data set's domain, not the sample's
    codec = table_codec(public_domains_of(full), bins=10)
    result = mst(codec.encode(train), codec.shape, rho_for(1.0, 1e-6), iters=60, seed=1)
    return codec, result, codec.decode(result.codes, np.random.default_rng(1))
