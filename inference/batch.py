"""Batch transform, locally: the model's own handler over every file in a folder.

What SageMaker's transform job does, on this machine and in the same formats
(inference/batch_contract.py): each file is read line by line and cut into mini-batches of at
most MaxPayloadInMB; the InputFilter drops each record's id; the handler's batch mode
(``handler.transform_batch``, what ``transform_fn`` calls in the container) answers one line
per record; JoinSource "Input" and the OutputFilter put the id back in front of the answer;
the answers land in ``<output>/transform/<file>.out``. The split step (batch_split.py) then
parts them into ``predictions/`` and ``errors/`` and writes ``summary.json``, and the capture
manifests go under ``capture/`` in batch capture's layout, for the drift job.

Memory is bounded by one mini-batch (plus its answers), whatever the size of the input.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inference import batch_contract as contract
from inference import batch_split, handler

MB = 1 << 20
TRANSFORM_DIR = "transform"
PREDICTIONS_DIR = "predictions"
ERRORS_DIR = "errors"
CAPTURE_DIR = "capture"

# Told (bytes read so far, bytes in all input files) after each mini-batch.
ProgressHook = Callable[[int, int], None]


class BatchError(Exception):
    """The run cannot go on; the message names the cause (and the file and line, if a row)."""


@dataclass(frozen=True)
class BatchResult:
    summary: batch_split.Summary
    transform: Path
    predictions: Path
    errors: Path
    summary_file: Path
    capture: Path | None
    seconds: float


@dataclass(frozen=True)
class _Record:
    """One input line after the InputFilter: its id (None: none could be read) and payload."""

    record_id: Any
    payload: bytes


_NO_ID = object()


def run(
    model_dir: Path,
    input_dir: Path,
    output_dir: Path,
    content_type: str = contract.CSV,
    bad_rows: contract.BadRows = contract.BadRows.ERRORS,
    max_payload_mb: int = contract.DEFAULT_MAX_PAYLOAD_MB,
    progress: ProgressHook | None = None,
    capture: bool = True,
    now: datetime | None = None,
) -> BatchResult:
    began = time.perf_counter()
    if content_type not in contract.CONTENT_TYPES:
        raise BatchError(
            f"content type {content_type!r} is not one of {', '.join(contract.CONTENT_TYPES)}"
        )
    if not 1 <= max_payload_mb <= contract.MAX_PAYLOAD_MB_LIMIT:
        raise BatchError(
            f"max payload {max_payload_mb} MB is outside 1..{contract.MAX_PAYLOAD_MB_LIMIT}"
        )
    files = input_files(input_dir, output_dir)
    try:
        model = handler.model_fn(str(model_dir))
    except handler.ModelLoadError as exc:
        raise BatchError(str(exc)) from None
    started = now or datetime.now(UTC)
    transform = output_dir / TRANSFORM_DIR
    outputs = batch_split.Folder(transform)
    predictions, errors = output_dir / PREDICTIONS_DIR, output_dir / ERRORS_DIR
    tally = batch_split.Tally()
    total = sum(path.stat().st_size for path in files)
    done = 0
    if progress is not None:
        progress(0, total)
    for path in files:
        name = path.relative_to(input_dir).as_posix()
        out_name = name + contract.OUTPUT_SUFFIX
        with outputs.writer(out_name) as out:
            for batch, size in mini_batches(path, name, content_type, max_payload_mb * MB):
                out.write(_transform(model, batch, content_type, bad_rows, name))
                done += size
                if progress is not None:
                    progress(done, total)
        batch_split.split_one(
            outputs,
            out_name,
            name,
            batch_split.Folder(predictions),
            batch_split.Folder(errors),
            content_type,
            tally,
        )
    summary = tally.summary()
    summary_file = output_dir / contract.SUMMARY_FILE
    summary_file.write_bytes(summary.to_json())
    captured = None
    if capture:
        captured = output_dir / CAPTURE_DIR
        names = [path.relative_to(input_dir).as_posix() for path in files]
        write_manifests(captured, input_dir, transform, names, started)
    return BatchResult(
        summary, transform, predictions, errors, summary_file, captured, time.perf_counter() - began
    )


def input_files(input_dir: Path, output_dir: Path) -> list[Path]:
    """Every file below ``input_dir`` but hidden ones (SageMaker reads every object under
    the prefix; dotfiles here are an editor's or the OS's)."""
    if not input_dir.is_dir():
        raise BatchError(f"input folder {input_dir} does not exist")
    inside = output_dir.resolve().is_relative_to(input_dir.resolve())
    if inside:
        raise BatchError(f"output folder {output_dir} is inside the input folder {input_dir}")
    files = sorted(
        path
        for path in input_dir.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(input_dir).parts)
    )
    if not files:
        raise BatchError(f"input folder {input_dir} has no files")
    return files


# --- reading: InputFilter and mini-batches --------------------------------------------------


@dataclass(frozen=True)
class MiniBatch:
    records: list[_Record]
    first_line: int  # of the file, counting from 1


def mini_batches(
    path: Path, name: str, content_type: str, max_bytes: int
) -> Iterator[tuple[MiniBatch, int]]:
    """(mini-batch, bytes of the file it covers), streamed: MultiRecord batches of whole
    lines, each at most ``max_bytes`` of payload as SageMaker sends it."""
    read = _csv_record if content_type == contract.CSV else _json_record
    records: list[_Record] = []
    size = consumed = 0
    first = 1
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            record = read(raw.rstrip(b"\r\n"))
            need = len(record.payload) + 1
            if need > max_bytes:
                raise BatchError(
                    f"{name} line {number}: the record is {need} bytes, more than the "
                    f"{max_bytes // MB} MB a mini-batch may carry (MaxPayloadInMB)"
                )
            if size + need > max_bytes:
                yield MiniBatch(records, first), consumed
                records, size, consumed, first = [], 0, 0, number
            records.append(record)
            size += need
            consumed += len(raw)
    if records:
        yield MiniBatch(records, first), consumed


def _csv_record(line: bytes) -> _Record:
    # InputFilter $[1:]: everything after the first column goes to the model.
    if line.startswith(b'"'):
        text = line.decode("utf-8", "replace")
        try:
            cells = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            return _Record("", line)
        rest = io.StringIO()
        csv.writer(rest, lineterminator="").writerow(cells[1:])
        return _Record(cells[0], rest.getvalue().encode())
    record_id, _, rest_bytes = line.partition(b",")
    return _Record(record_id.decode("utf-8", "replace"), rest_bytes)


def _json_record(line: bytes) -> _Record:
    # InputFilter $.features; a line that is not an object with features goes to the
    # handler as it is, which names what is wrong with it.
    try:
        document = json.loads(line)
    except (ValueError, RecursionError):
        return _Record(_NO_ID, line)
    if not isinstance(document, dict):
        return _Record(_NO_ID, line)
    record_id = document.get(contract.ID_FIELD, _NO_ID)
    if contract.FEATURES_FIELD not in document:
        return _Record(record_id, b"null")
    features = json.dumps(document[contract.FEATURES_FIELD], separators=(",", ":"))
    return _Record(record_id, features.encode())


# --- the handler, and the join ------------------------------------------------------------------


def _transform(
    model: handler.ServingModel,
    batch: MiniBatch,
    content_type: str,
    bad_rows: contract.BadRows,
    name: str,
) -> str:
    body = b"\n".join(r.payload for r in batch.records) + b"\n"
    try:
        answer, _ = handler.transform_batch(model, body, content_type, content_type, bad_rows)
    except handler.RequestError as error:
        raise BatchError(_refusal(model, body, content_type, batch, name, error)) from None
    lines = answer.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(batch.records):  # SageMaker's join would fail the job the same way
        raise BatchError(
            f"{name}: the handler answered {len(lines)} lines for {len(batch.records)} records"
        )
    if content_type == contract.CSV:
        joined = [
            f"{batch_split.csv_cell(r.record_id)},{line}"
            for r, line in zip(batch.records, lines, strict=True)
        ]
    else:
        joined = [
            _json_join(r.record_id, line) for r, line in zip(batch.records, lines, strict=True)
        ]
    return "\n".join(joined) + "\n"


def _json_join(record_id: Any, answer: str) -> str:
    # OutputFilter $['id','SageMakerOutput'] of the input joined with the answer.
    if record_id is _NO_ID:
        return f'{{"{contract.JOIN_FIELD}":{answer}}}'
    return f'{{"{contract.ID_FIELD}":{json.dumps(record_id)},"{contract.JOIN_FIELD}":{answer}}}'


def _refusal(
    model: handler.ServingModel,
    body: bytes,
    content_type: str,
    batch: MiniBatch,
    name: str,
    error: handler.RequestError,
) -> str:
    """The handler's refusal, its line counted in the file rather than the mini-batch."""
    rows = handler.check_batch(handler.batch_lines(body), content_type, model)
    if not rows.problems:
        return f"{name}: {error.message}"
    index = min(rows.problems)
    reason, detail = rows.problems[index]
    return (
        f"{name} line {batch.first_line + index}: {detail} ({reason}); "
        "bad rows fail the run (--bad-rows fail)"
    )


# --- batch capture --------------------------------------------------------------------------


def write_manifests(
    capture: Path, input_dir: Path, transform: Path, names: list[str], started: datetime
) -> tuple[Path, Path]:
    """Manifests as a transform job's DataCaptureConfig writes them (batch_contract):
    ``capture/input/yyyy/mm/dd/hh/<id>.jsonl`` naming the inputs, ``capture/output/...`` the
    ``.out`` files."""
    hour = started.astimezone(UTC).strftime(contract.CAPTURE_HOUR_FORMAT)
    file_name = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}.jsonl"
    written = []
    for kind, root, listed in (
        (contract.CAPTURE_INPUT, input_dir, names),
        (contract.CAPTURE_OUTPUT, transform, [n + contract.OUTPUT_SUFFIX for n in names]),
    ):
        manifest = [{contract.MANIFEST_PREFIX_KEY: str(root.resolve()) + "/"}, *listed]
        path = capture / kind / hour / file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        # One entry per line, as in the guide's example.
        lines = ",\n".join(json.dumps(entry) for entry in manifest)
        path.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
        written.append(path)
    return written[0], written[1]
