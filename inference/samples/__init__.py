"""Sample requests that ship with the kit: held-out rows of the shipped dataset, no label.

``requests.csv`` is a body the serving handler accepts as it is (``text/csv`` with a header
row naming the 19 features): the first ``SAMPLE_ROWS`` rows of the test split the kit's own
processing step holds out (``training.process.split`` with its fractions and seed, on the
shipped dataset exactly as ``training.ingest`` writes it and the data contract reads it),
without the ``churn`` label, which the handler refuses as an unknown column. So a model the
kit trained has never seen these rows::

    curl --data-binary @inference/samples/requests.csv -H 'Content-Type: text/csv' \\
        localhost:8080/invocations

The file is derived, never edited: ``python -m inference.samples`` rewrites it and
``python -m inference.samples --check`` fails if it differs from what the code derives.
Installed, it is package data: ``inference.samples.PATH``.
"""

from __future__ import annotations

from pathlib import Path

FILE_NAME = "requests.csv"
PATH = Path(__file__).with_name(FILE_NAME)
SAMPLE_ROWS = 20
# Held out from training and validation alike: the evaluation step's rows.
SPLIT = "test"


def sample_requests(rows: int = SAMPLE_ROWS) -> str:
    """The sample file's text, derived from the shipped dataset with the kit's split code."""
    from training import contract, ingest, process
    from training import dataset as ds

    if rows < 1:
        raise ValueError(f"rows must be at least 1; got {rows}")
    raw = ingest.to_csv_bytes(ds.load_shipped())
    frame = contract.require_valid(contract.read_csv(raw))
    parts = process.split(
        frame,
        validation_fraction=process.VALIDATION_FRACTION,
        test_fraction=process.TEST_FRACTION,
        seed=process.SEED,
    )
    held_out = parts[SPLIT].loc[:, list(ds.FEATURES)].head(rows)
    text: str = held_out.to_csv(index=False, lineterminator="\n")
    return text
