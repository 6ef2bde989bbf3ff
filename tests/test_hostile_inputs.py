"""Hostile bodies (issue 16) get their 4xx, in bounded CPU and memory, in every stack.

- The handler: each body in its own child process under RLIMIT_CPU and RLIMIT_AS
  (tests/bounded_handler.py). A parse that runs away is killed, or fails to allocate, and
  the test fails, deterministically and without the test timing anything.
- The local server (the app ``mlops serve`` runs, on uvicorn), over HTTP, with the plain bad
  inputs too.

The image's single-model worker and multi-model Transformer get the same bodies in
test_serving_image.py; ``python -m benchmarks.hostile`` tabulates what each one costs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from bounded_handler import Outcome, Request, run_bounded
from serving_cases import BAD_INPUTS, HOSTILE_INPUTS, Bad

from inference.server import create_app, load_model, running

MIB = 2**20


@pytest.fixture(scope="module")
def bounded_outcomes(model_dir: Path, test_rows: pd.DataFrame) -> dict[str, Outcome]:
    requests = [
        Request(bad.id, bad.payload(test_rows), bad.content_type, bad.accept)
        for bad in HOSTILE_INPUTS
    ]
    outcomes = run_bounded(model_dir, requests, cpu_seconds=5, extra_memory=1536 * MIB)
    cpu = max(outcomes, key=lambda o: o.cpu_seconds)
    rss = max(outcomes, key=lambda o: o.extra_rss_bytes)
    # Recorded, not asserted (pytest -s shows it): the limits above are the assertion.
    print(
        f"\n{len(outcomes)} hostile bodies: worst CPU {cpu.cpu_seconds:.3f} s ({cpu.id}); "
        f"worst peak RSS {rss.peak_rss_bytes / MIB:.0f} MiB, "
        f"{rss.extra_rss_bytes / MIB:.0f} MiB over the loaded model ({rss.id})"
    )
    return {outcome.id: outcome for outcome in outcomes}


@pytest.mark.parametrize("bad", HOSTILE_INPUTS, ids=lambda b: b.id)
def test_hostile_bodies_are_refused_within_os_limits(
    bounded_outcomes: dict[str, Outcome], bad: Bad
) -> None:
    outcome = bounded_outcomes[bad.id]
    # A child the OS stopped has status None and says which signal or error stopped it.
    assert (outcome.status, bad.says in outcome.message) == (bad.status, True), outcome
    # The refusal stays small too: no megabytes of names or values echoed back.
    assert outcome.message_chars < 1000, outcome.message[:300]


@pytest.fixture(scope="module")
def local_server(model_dir: Path) -> Iterator[httpx.Client]:
    with (
        running(create_app(load_model(model_dir))) as url,
        httpx.Client(base_url=url, timeout=60) as client,
    ):
        yield client


@pytest.mark.parametrize("bad", [*BAD_INPUTS, *HOSTILE_INPUTS], ids=lambda b: b.id)
def test_bad_and_hostile_requests_get_their_4xx_from_the_local_server(
    local_server: httpx.Client, test_rows: pd.DataFrame, bad: Bad
) -> None:
    response = local_server.post(
        "/invocations", content=bad.payload(test_rows), headers=bad.headers()
    )
    status, says = bad.expected(worker=False)
    assert (response.status_code, says in response.text) == (status, True), response.text[:500]
    assert local_server.get("/ping").status_code == 200
