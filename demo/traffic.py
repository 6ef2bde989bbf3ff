"""Requests to the local endpoint, as a client would send them, with their latencies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pandas as pd

from inference.capture import INFERENCE_ID_HEADER
from training import dataset as ds

# Told (requests sent so far, requests to send): (0, n) before the first, (n, n) after the last.
SentHook = Callable[[int, int], None]


@dataclass
class TrafficResult:
    sent: int = 0
    failed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, status: int, latency_ms: float) -> None:
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status != 200:
            self.failed += 1
        self.latencies_ms.append(latency_ms)

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def batches(frame: pd.DataFrame, size: int) -> list[str]:
    """CSV bodies of ``size`` rows, features only, in the model's column order."""
    features = frame[list(ds.FEATURES)]
    return [
        features.iloc[start : start + size].to_csv(header=False, index=False)
        for start in range(0, len(features), size)
    ]


def send(
    url: str,
    bodies: list[str],
    result: TrafficResult | None = None,
    progress: SentHook | None = None,
    inference_ids: list[str] | None = None,
) -> TrafficResult:
    """POST each body in turn, with its inference id when given; ``progress`` (for
    displays) is told how many were sent."""
    result = result or TrafficResult()
    total = len(bodies)
    if inference_ids is not None and len(inference_ids) != total:
        raise ValueError(f"{len(inference_ids)} inference ids for {total} bodies")
    if progress is not None:
        progress(0, total)
    with httpx.Client(base_url=url, timeout=30) as client:
        for done, body in enumerate(bodies, start=1):
            headers = {"content-type": "text/csv"}
            if inference_ids is not None:
                headers[INFERENCE_ID_HEADER] = inference_ids[done - 1]
            started = time.perf_counter()
            try:
                status = client.post("/invocations", content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = 599  # no response at all: a dropped request
            result.record(status, (time.perf_counter() - started) * 1000)
            if progress is not None:
                progress(done, total)
    return result


class Background:
    """Keeps sending until stopped: the traffic a model swap must not disturb."""

    def __init__(self, url: str, bodies: list[str]) -> None:
        self.result = TrafficResult()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(url, bodies), daemon=True)

    def _run(self, url: str, bodies: list[str]) -> None:
        while not self._stop.is_set():
            send(url, bodies[:5], self.result)

    def __enter__(self) -> Background:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
