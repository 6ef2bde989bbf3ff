"""Overload benchmark: the local server with load shedding on and off, in the same run.

Run with ``.venv/bin/python -m benchmarks.overload`` (about 7 minutes with the defaults). Each
run starts `mlops serve` twice, once with shedding off (``--max-queue 0``, the baseline) and
once with the default queue limit, in alternating order, and drives each with 1-row and
1,000-row CSV requests at concurrency 8 and 64 from a closed-loop client on 127.0.0.1. A
client that is shed waits the Retry-After the server sent before its next request, as a
well-behaved client would. The table gives, per setting, the median over runs of:

- 200/s: requests answered (status 200) per second;
- p50 and p99 of the answered requests' latency;
- 503s: the share of requests shed, and the p99 of those 503s' latency;
- errors: anything else (other statuses, connection errors), which should stay 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.serving import drive, ensure_model, payloads
from inference.process import serve_in_subprocess
from inference.server import Limits

console = Console()
PAYLOADS = ("CSV, 1 row", "CSV, 1000 rows")
CONCURRENCY = (8, 64)
SETTINGS = {"off": ["--max-queue", "0"], "on": []}  # "on" is the default limit


@dataclass(frozen=True)
class Cell:
    shedding: str
    payload: str
    concurrency: int
    answered_per_s: float
    p50_ms: float
    p99_ms: float
    shed_percent: float
    shed_p99_ms: float
    errors: int


def _p99(samples: list[float]) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000


def _cell(
    shedding: str, payload: str, concurrency: int, seconds: float, outcomes: dict[str, list[float]]
) -> Cell:
    answered, shed, errors = outcomes["200"], outcomes["503"], outcomes["error"]
    total = len(answered) + len(shed) + len(errors)
    return Cell(
        shedding=shedding,
        payload=payload,
        concurrency=concurrency,
        answered_per_s=len(answered) / seconds,
        p50_ms=statistics.median(answered) * 1000 if answered else 0.0,
        p99_ms=_p99(answered),
        shed_percent=100 * len(shed) / total if total else 0.0,
        shed_p99_ms=_p99(shed),
        errors=len(errors),
    )


def one_setting(
    model_dir: Path, bodies: dict[str, str], shedding: str, seconds: float, workers: int, work: Path
) -> list[Cell]:
    cells = []
    with serve_in_subprocess(
        model_dir, workers=workers, capture_dir=work / "capture", options=SETTINGS[shedding]
    ) as server:
        # Unrecorded warm-up: every worker finishes loading and serves its first requests.
        asyncio.run(drive(server.url, bodies[PAYLOADS[0]], 4 * workers, 2.0))
        for payload in PAYLOADS:
            for concurrency in CONCURRENCY:
                outcomes = asyncio.run(drive(server.url, bodies[payload], concurrency, seconds))
                cells.append(_cell(shedding, payload, concurrency, seconds, outcomes))
    return cells


def medians(runs: list[list[Cell]]) -> list[Cell]:
    """Per setting, payload and concurrency: the median of each figure over the runs."""
    keyed: dict[tuple[str, str, int], list[Cell]] = {}
    for cell in (cell for run in runs for cell in run):
        keyed.setdefault((cell.shedding, cell.payload, cell.concurrency), []).append(cell)
    result = []
    for (shedding, payload, concurrency), cells in sorted(keyed.items()):
        figures = {
            name: statistics.median(getattr(cell, name) for cell in cells)
            for name in ("answered_per_s", "p50_ms", "p99_ms", "shed_percent", "shed_p99_ms")
        }
        errors = int(statistics.median(cell.errors for cell in cells))
        result.append(Cell(shedding, payload, concurrency, **figures, errors=errors))
    return result


def report(cells: list[Cell], runs: int, workers: int) -> None:
    queue = Limits().max_queue
    table = Table(
        title=f"mlops serve under load: median of {runs} runs, {workers} workers, shedding off "
        f"(--max-queue 0) against on (--max-queue {queue}, the default), same run"
    )
    columns = ("CSV rows", "conc.", "shed", "200/s", "p50 ms", "p99 ms", "503s")
    for column in (*columns, "503 p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "shed" else "right")
    for c in sorted(cells, key=lambda c: (c.payload, c.concurrency, c.shedding)):
        table.add_row(
            c.payload.removeprefix("CSV, ").removesuffix(" rows").removesuffix(" row"),
            str(c.concurrency),
            c.shedding,
            f"{c.answered_per_s:.0f}",
            f"{c.p50_ms:.0f}",
            f"{c.p99_ms:.0f}",
            f"{c.shed_percent:.0f}%",
            f"{c.shed_p99_ms:.0f}" if c.shed_percent else "-",
            str(c.errors),
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="Runs; the table shows medians.")
    parser.add_argument("--seconds", type=float, default=5.0, help="Duration of each cell.")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="Server processes."
    )
    parser.add_argument("--json", type=Path, help="Also write every run and the medians here.")
    args = parser.parse_args(argv)

    runs: list[list[Cell]] = []
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as scratch:
        work = Path(scratch)
        model_dir, rows = ensure_model(work)
        bodies = {name: body for name, (body, _, _) in payloads(rows).items() if name in PAYLOADS}
        for run in range(args.runs):
            # Alternate which setting goes first, so drift over a run favours neither.
            order = ("off", "on") if run % 2 == 0 else ("on", "off")
            cells = []
            for shedding in order:
                cells += one_setting(model_dir, bodies, shedding, args.seconds, args.workers, work)
            runs.append(cells)
            console.print(f"run {run + 1}/{args.runs} done")
    summary = medians(runs)
    report(summary, args.runs, args.workers)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "runs": [[asdict(c) for c in run] for run in runs],
            "medians": [asdict(c) for c in summary],
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
