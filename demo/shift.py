"""A realistic drift: what a tariff change and a marketing campaign do to the churn data.

Day usage rises a quarter (minutes and charges together, so the rate per minute holds),
evening usage shifts up, more customers take the international plan, and people call
customer service about the change. Values stay inside the data contract's ranges: this
is drift, not broken data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SHIFTED_FEATURES = (
    "total_day_minutes",
    "total_day_charge",
    "total_eve_minutes",
    "total_eve_charge",
    "international_plan",
    "number_customer_service_calls",
)


def shift(frame: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = frame.copy()
    out["total_day_minutes"] = (out["total_day_minutes"] * 1.25).round(1)
    out["total_day_charge"] = (out["total_day_charge"] * 1.25).round(2)
    out["total_eve_minutes"] = (out["total_eve_minutes"] + 60.0).round(1)
    out["total_eve_charge"] = (out["total_eve_charge"] + 60.0 * 0.085).round(2)
    joins = rng.random(len(out)) < 0.3
    out.loc[joins, "international_plan"] = "yes"
    out["number_customer_service_calls"] = out["number_customer_service_calls"] + rng.integers(
        1, 3, len(out)
    )
    return out
