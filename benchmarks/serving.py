"""Serving benchmark: handler overhead against the model's own floor, and server load.

Run with ``make bench`` (or ``.venv/bin/python -m benchmarks.serving``). It prints, in one
run, side by side:

1. the handler's time per request, with the thread budget each `mlops serve` worker gets
   (cores / workers), (parse_input -> predict -> render_output) for 1-row and
   1,000-row CSV and JSON payloads, next to the floor: ``predict_proba`` on the very
   feature frame the handler hands the model, parsed beforehand. The difference is
   exactly what the handler adds: parsing, validation and encoding;
2. the same payloads through the sagemaker-inference toolkit's default decoder and
   encoder (what the container would do without our handler);
3. the local server's p50/p99 latency, requests per second and error count at
   concurrency 1, 8 and 32, each a bounded run against 127.0.0.1. The server runs in its
   own process (``mlops serve``, default limits), so the load generator does not share its
   interpreter. Requests the server sheds (503) are counted apart from errors, and their
   client waits the Retry-After before its next request. ``benchmarks.overload`` compares
   shedding on and off at higher load.

Timings are medians of interleaved repetitions (handler and floor alternate), which keeps
CPU frequency changes and background noise from favouring either side.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console
from rich.table import Table
from threadpoolctl import threadpool_limits

from inference import handler
from inference.process import serve_in_subprocess
from training import dataset as ds
from training import local as local_run
from training.features import Hyperparameters

console = Console()


@dataclass(frozen=True)
class HandlerResult:
    payload: str
    handler_ms: float
    floor_ms: float
    toolkit_decode_encode_ms: float | None

    @property
    def overhead_percent(self) -> float:
        return 100 * (self.handler_ms / self.floor_ms - 1)


@dataclass(frozen=True)
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    shed: int
    p50_ms: float
    p99_ms: float
    rps: float


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _interleaved(
    first: Callable[[], Any], second: Callable[[Any], Any], setup: Callable[[], Any], repeats: int
) -> tuple[float, float]:
    """Median times of ``first()`` and ``second(setup())``, alternating; setup is not timed."""
    for _ in range(max(5, repeats // 10)):  # warm caches and thread pools
        first()
        second(setup())
    a, b = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        first()
        a.append(time.perf_counter() - start)
        prepared = setup()
        start = time.perf_counter()
        second(prepared)
        b.append(time.perf_counter() - start)
    return _median_ms(a), _median_ms(b)


def payloads(rows: pd.DataFrame) -> dict[str, tuple[str, str, pd.DataFrame]]:
    many = pd.concat([rows] * (1000 // len(rows) + 1), ignore_index=True).iloc[:1000]
    result = {}
    for size, frame in (("1 row", rows.iloc[:1]), ("1000 rows", many)):
        result[f"CSV, {size}"] = (frame.to_csv(index=False, header=False), handler.CSV, frame)
        records = json.dumps({"records": frame.to_dict(orient="records")})
        result[f"JSON, {size}"] = (records, handler.JSON, frame)
    return result


def toolkit_decode_encode(body: str, content_type: str) -> Callable[[], Any] | None:
    try:
        from sagemaker_inference import decoder, encoder
    except ImportError:
        return None

    def run() -> Any:
        array = decoder.decode(body, content_type)
        return encoder.encode(array, handler.JSON)

    try:
        run()
    except Exception:  # the toolkit cannot decode mixed text/number rows this way
        return None
    return run


def _fresh(parsed: pd.DataFrame, model: handler.ServingModel) -> pd.DataFrame:
    """A new frame equal to ``parsed``, as a parser would hand it over: new column objects
    and new string objects. Reusing one frame would flatter the floor, because pandas
    caches column lookups and Python caches each string's hash, both of which the
    model's one-hot encoder relies on."""
    frame = parsed.copy()
    for name in model.categorical:
        frame[name] = [value.encode().decode() for value in frame[name].tolist()]
    return frame


def bench_handler(
    model: handler.ServingModel, rows: pd.DataFrame, repeats: int
) -> list[HandlerResult]:
    results = []
    for name, (body, content_type, _frame) in payloads(rows).items():
        parsed = handler.to_features(handler.parse_input(body, content_type), model)
        handler_ms, floor_ms = _interleaved(
            lambda body=body, content_type=content_type: handler.transform(
                model, body, content_type, handler.CSV
            ),
            model.pipeline.predict_proba,
            lambda parsed=parsed: _fresh(parsed, model),
            repeats,
        )
        toolkit = toolkit_decode_encode(body, content_type)
        toolkit_ms = (
            _interleaved(toolkit, lambda _: None, lambda: None, repeats)[0] if toolkit else None
        )
        results.append(HandlerResult(name, handler_ms, floor_ms, toolkit_ms))
    return results


async def drive(url: str, body: str, concurrency: int, seconds: float) -> dict[str, list[float]]:
    """Latencies by outcome ("200", "503", "error") from ``concurrency`` closed-loop clients
    posting ``body`` as CSV. A shed client waits the Retry-After, as a good client does."""
    outcomes: dict[str, list[float]] = {"200": [], "503": [], "error": []}
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one_client() -> None:
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/invocations", content=body, headers={"Content-Type": "text/csv"}
                    )
                except httpx.HTTPError:
                    outcomes["error"].append(time.perf_counter() - start)
                    continue
                status = str(response.status_code)
                outcomes[status if status in outcomes else "error"].append(
                    time.perf_counter() - start
                )
                if response.status_code == 503:
                    await asyncio.sleep(float(response.headers.get("retry-after", "1")))

        await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return outcomes


async def _load(url: str, body: str, concurrency: int, seconds: float) -> LoadResult:
    started = time.perf_counter()
    outcomes = await drive(url, body, concurrency, seconds)
    elapsed = time.perf_counter() - started
    latencies = [t for samples in outcomes.values() for t in samples]
    ordered = sorted(latencies)
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=len(outcomes["error"]),
        shed=len(outcomes["503"]),
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000,
        rps=len(latencies) / elapsed,
    )


def bench_server(
    model_dir: Path, rows: pd.DataFrame, seconds: float, capture_dir: Path, workers: int
) -> list[LoadResult]:
    body = rows.iloc[:1].to_csv(index=False, header=False)
    with serve_in_subprocess(model_dir, workers=workers, capture_dir=capture_dir) as server:
        # Unrecorded warm-up: every worker finishes loading and serves its first requests.
        asyncio.run(_load(server.url, body, 4 * workers, 2.0))
        return [asyncio.run(_load(server.url, body, c, seconds)) for c in (1, 8, 32)]


def ensure_model(work: Path) -> tuple[Path, pd.DataFrame]:
    run = local_run.run(work / "run", hyperparameters=Hyperparameters())
    test = pd.read_csv(work / "run" / "data" / "processed" / "test" / "test.csv")
    return run.model_dir, test.loc[:, list(ds.FEATURES)]


def report(
    handler_results: list[HandlerResult], load_results: list[LoadResult], threads: int
) -> None:
    title = f"Handler time per request (median ms; {threads} thread(s) per prediction, as serve)"
    table = Table(title=title)
    for column in (
        "payload",
        "handler",
        "predict_proba floor",
        "overhead",
        "toolkit decode+encode",
    ):
        table.add_column(column, justify="right" if column != "payload" else "left")
    for r in handler_results:
        toolkit = (
            f"{r.toolkit_decode_encode_ms:.3f}"
            if r.toolkit_decode_encode_ms is not None
            else "cannot decode"
        )
        table.add_row(
            r.payload,
            f"{r.handler_ms:.3f}",
            f"{r.floor_ms:.3f}",
            f"{r.overhead_percent:+.0f}%",
            toolkit,
        )
    console.print(table)

    load = Table(title="Local server (mlops serve), 1-row CSV requests on 127.0.0.1")
    for column in ("concurrency", "requests", "errors", "shed (503)", "p50 ms", "p99 ms", "req/s"):
        load.add_column(column, justify="right")
    for level in load_results:
        load.add_row(
            str(level.concurrency),
            str(level.requests),
            str(level.errors),
            str(level.shed),
            f"{level.p50_ms:.2f}",
            f"{level.p99_ms:.2f}",
            f"{level.rps:.0f}",
        )
    console.print(load)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=200, help="Interleaved repetitions per payload."
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of each load level.")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    parser.add_argument("--skip-server", action="store_true", help="Only time the handler.")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="Server processes (default: one per CPU, as mlops serve).",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch:
        work = Path(scratch)
        model_dir, rows = ensure_model(work)
        model = handler.model_fn(str(model_dir))
        # Same thread budget per prediction as `mlops serve` gives each of its workers.
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        with threadpool_limits(limits=threads):
            handler_results = bench_handler(model, rows, args.repeats)
        load_results = (
            []
            if args.skip_server
            else bench_server(model_dir, rows, args.seconds, work / "capture", args.workers)
        )
    report(handler_results, load_results, threads)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "handler": [
                asdict(r) | {"overhead_percent": r.overhead_percent} for r in handler_results
            ],
            "server": [asdict(r) for r in load_results],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    csv_1000 = next(r for r in handler_results if r.payload == "CSV, 1000 rows")
    errors = sum(r.errors for r in load_results)
    console.print(
        f"targets: CSV 1000-row overhead {csv_1000.overhead_percent:+.0f}% (target <= +25%), "
        f"server errors {errors} (target 0)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
