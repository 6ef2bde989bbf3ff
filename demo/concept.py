"""A concept drift: the inputs keep their distribution, what they mean for churn changes.

A service overhaul and a cheaper international tariff stop the churn the model learned to
expect from unhappy callers and international-plan customers, while a competitor's offer
wins long-standing light users, whom the model sees as safe. Only the labels change: the
data-drift job must stay quiet, the quality job (predictions joined with these labels) must
not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training import dataset as ds

# Churn rate in the segments whose relation to churn changes; 0.11 is the base rate of
# customers without the international plan.
RESOLVED_RATE = 0.11
POACHED_RATE = 0.35
UNHAPPY_CALLS = 4
LONG_STANDING_MONTHS = 120


def relabel(frame: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """The same rows with churn redrawn where the concept changed; features untouched."""
    rng = np.random.default_rng(seed)
    out = frame.copy()
    resolved = (out["international_plan"] == "yes") | (
        out["number_customer_service_calls"] >= UNHAPPY_CALLS
    )
    poached = (
        (out["total_day_minutes"] < frame["total_day_minutes"].median())
        & (out["account_length"] > LONG_STANDING_MONTHS)
        & ~resolved
    )
    draws = rng.random(len(out))
    churn = out[ds.TARGET].copy()
    churn[resolved] = np.where(draws[resolved.to_numpy()] < RESOLVED_RATE, "yes", "no")
    churn[poached] = np.where(draws[poached.to_numpy()] < POACHED_RATE, "yes", "no")
    out[ds.TARGET] = churn
    return out
