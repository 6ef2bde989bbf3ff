"""The batch split step: part a transform job's output into predictions and errors.

A transform job with JoinSource "Input" writes one ``<input>.out`` per input object, one line
per input record (inference/batch_contract.py). This job reads them all and writes, for each:

- ``<predictions>/<input>.out``: the scored rows, ``id,label,probability_negative,
  probability_positive`` (CSV) or ``{"id", "label", "probabilities"}`` (JSON lines);
- ``<errors>/<input>.errors.jsonl``, only when it has bad rows: ``{"file", "line", "id",
  "error", "detail"}`` per bad row (``line`` counts from 1 in the input object: the output
  keeps the input's order, one line per record);
- and for the run ``summary.json`` (``--summary``, default ``<errors>/summary.json``):
  files, rows, scored, errors, errors_by_reason; rows == scored + errors always.

Run as ``python3 bundle_runner.py batch_split.py --input s3://.../out/ --predictions
s3://.../predictions/ --errors s3://.../errors/`` in a processing job, or ``python -m
inference.batch_split`` with local folders. Exit codes as monitoring/drift.py's.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from inference import batch_contract as contract
from training import uri

EXIT_OK = 0
EXIT_AWS = 1
EXIT_USAGE = 2
EXIT_SILENT = 3  # no transform output at all under --input: a wrong prefix, most likely
EXIT_CODES = (
    "Exit codes: 0 split (bad rows are data, counted in the summary); 1 AWS refused a call; "
    "2 bad arguments or no such folder; 3 silent: no .out file under --input."
)
# A line of the transform output that is not in the contract's format: counted, never dropped.
UNREADABLE_OUTPUT = "unreadable_output"


class UsageError(Exception):
    """Bad arguments; the message says which."""


@dataclass
class Tally:
    files: int = 0
    rows: int = 0
    scored: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def summary(self) -> Summary:
        return Summary(
            files=self.files,
            rows=self.rows,
            scored=self.scored,
            errors=sum(self.reasons.values()),
            errors_by_reason=tuple(sorted(self.reasons.items())),
        )


@dataclass(frozen=True)
class Summary:
    files: int
    rows: int
    scored: int
    errors: int
    errors_by_reason: tuple[tuple[str, int], ...]

    def to_json(self) -> bytes:
        document = {
            "files": self.files,
            "rows": self.rows,
            "scored": self.scored,
            "errors": self.errors,
            "errors_by_reason": dict(self.errors_by_reason),
        }
        return (json.dumps(document, indent=2) + "\n").encode()


@dataclass(frozen=True)
class Row:
    """One line of transform output, split: a prediction line, or an error record."""

    prediction: str | None
    error: dict[str, Any] | None


def split_line(line: bytes | str, content_type: str, source: str, number: int) -> Row:
    text = line.decode("utf-8", "replace") if isinstance(line, bytes) else line
    text = text.rstrip("\r\n")
    try:
        if content_type == contract.CSV:
            return _csv_row(text, source, number)
        return _json_row(text, source, number)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError):
        detail = f"transform output line is not in the batch contract's format: {text[:120]!r}"
        return Row(None, _error(source, number, None, UNREADABLE_OUTPUT, detail))


def _csv_row(text: str, source: str, number: int) -> Row:
    # id, then the handler's columns; anything after them (GenerateInferenceId's id and
    # time) is left out of the predictions.
    cells = next(csv.reader([text])) if '"' in text else text.split(",")
    width = 1 + len(contract.CSV_OUTPUT_COLUMNS)
    if len(cells) < width:
        raise ValueError("too few columns")
    record_id, label, negative, positive, error, detail = cells[:width]
    if error:
        return Row(None, _error(source, number, record_id, error, detail))
    if not label:
        raise ValueError("no label and no error")
    return Row(f"{csv_cell(record_id)},{label},{negative},{positive}", None)


def csv_cell(value: str) -> str:
    if "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def _json_row(text: str, source: str, number: int) -> Row:
    record = json.loads(text)
    answer = record[contract.JOIN_FIELD]
    record_id = record.get(contract.ID_FIELD)
    if answer.get("error"):
        return Row(None, _error(source, number, record_id, answer["error"], answer.get("detail")))
    if answer["label"] is None:
        raise ValueError("no label and no error")
    kept = {"label": answer["label"], "probabilities": answer["probabilities"]}
    if contract.ID_FIELD in record:
        kept = {contract.ID_FIELD: record_id} | kept
    return Row(json.dumps(kept, separators=(",", ":")), None)


def _error(source: str, number: int, record_id: Any, reason: str, detail: Any) -> dict[str, Any]:
    return {"file": source, "line": number, "id": record_id, "error": reason, "detail": detail}


class Sink(Protocol):
    def write(self, text: str, /) -> Any: ...


def split_lines(
    lines: Iterable[bytes | str],
    content_type: str,
    source: str,
    predictions: Sink,
    errors: Sink,
    tally: Tally,
) -> None:
    """Stream one input object's transform output into the two sinks, counting every line."""
    tally.files += 1
    csv_output = content_type == contract.CSV
    for number, line in enumerate(lines, start=1):
        tally.rows += 1
        if csv_output and (kept := _scored_csv(line)) is not None:
            tally.scored += 1
            predictions.write(kept)
            continue
        row = split_line(line, content_type, source, number)
        if row.prediction is not None:
            tally.scored += 1
            predictions.write(row.prediction + "\n")
        else:
            assert row.error is not None
            tally.reasons[row.error["error"]] += 1
            errors.write(json.dumps(row.error) + "\n")


def _scored_csv(line: bytes | str) -> str | None:
    """The common case, without the general parse: a plain scored CSV row, id to the
    probabilities (None for anything else)."""
    if not isinstance(line, bytes) or b'"' in line:
        return None
    cells = line.rstrip(b"\r\n").split(b",")
    if len(cells) != 6 or not cells[1] or cells[4] or cells[5]:
        return None
    try:
        return b",".join(cells[:4]).decode("utf-8") + "\n"
    except UnicodeDecodeError:
        return None


class _LazyFile:
    """A file created on the first write, so an object without bad rows gets no errors file."""

    def __init__(self, opener: Callable[[], AbstractContextManager[IO[str]]]) -> None:
        self.opener = opener
        self.handle: IO[str] | None = None
        self.context: AbstractContextManager[IO[str]] | None = None

    def write(self, text: str) -> None:
        if self.handle is None:
            self.context = self.opener()
            self.handle = self.context.__enter__()
        self.handle.write(text)

    def close(self) -> None:
        if self.context is not None:
            self.context.__exit__(None, None, None)


# --- where the files are: a folder, or an S3 prefix ----------------------------------------


class Location(Protocol):
    def names(self) -> list[str]:
        """Relative names of the transform outputs (``*.out``) below the location."""

    def lines(self, name: str) -> Iterator[bytes]: ...

    def writer(self, name: str) -> AbstractContextManager[IO[str]]:
        """A text file that lands at ``name`` when closed."""


@dataclass(frozen=True)
class Folder:
    root: Path

    def names(self) -> list[str]:
        if not self.root.is_dir():
            raise UsageError(f"{self.root}: no such folder")
        found = (p for p in self.root.rglob(f"*{contract.OUTPUT_SUFFIX}") if p.is_file())
        return sorted(p.relative_to(self.root).as_posix() for p in found)

    def lines(self, name: str) -> Iterator[bytes]:
        with open(self.root / name, "rb") as handle:
            yield from handle

    @contextmanager
    def writer(self, name: str) -> Iterator[IO[str]]:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        try:
            with open(partial, "w", encoding="utf-8", newline="") as handle:
                yield handle
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        os.replace(partial, path)  # whole or absent: a reader never sees half a file


@dataclass(frozen=True)
class Prefix:
    client: Any
    base: str

    def names(self) -> list[str]:
        bucket, key = uri.split(self.base.rstrip("/") + "/")
        names = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=key
        ):
            for item in page.get("Contents", []):
                if item["Key"].endswith(contract.OUTPUT_SUFFIX):
                    names.append(item["Key"][len(key) :])
        return sorted(names)

    def lines(self, name: str) -> Iterator[bytes]:
        bucket, key = uri.split(uri.join(self.base, name))
        body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            yield from body.iter_lines(chunk_size=1 << 20, keepends=True)
        finally:
            body.close()

    @contextmanager
    def writer(self, name: str) -> Iterator[IO[str]]:
        # Spooled to local disk, then one upload: an object is never held in memory whole.
        bucket, key = uri.split(uri.join(self.base, name))
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch, "part")
            with open(path, "w", encoding="utf-8", newline="") as handle:
                yield handle
            # No SSE header: the bucket's default (the stack's KMS key) applies.
            self.client.upload_file(str(path), bucket, key)


def location(where: str, client: Any | None) -> Location:
    return Prefix(client, where) if uri.is_s3(where) else Folder(Path(where))


def split_all(
    source: Location,
    predictions: Location,
    errors: Location,
    content_type: str,
    tally: Tally | None = None,
) -> Summary:
    tally = tally or Tally()
    for name in source.names():
        input_name = name.removesuffix(contract.OUTPUT_SUFFIX)
        split_one(source, name, input_name, predictions, errors, content_type, tally)
    return tally.summary()


def split_one(
    source: Location,
    name: str,
    input_name: str,
    predictions: Location,
    errors: Location,
    content_type: str,
    tally: Tally,
) -> None:
    bad = _LazyFile(lambda: errors.writer(input_name + contract.ERRORS_SUFFIX))
    try:
        with predictions.writer(input_name + contract.OUTPUT_SUFFIX) as good:
            split_lines(source.lines(name), content_type, input_name, good, bad, tally)
    finally:
        bad.close()


# --- the job ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    input: str
    predictions: str
    errors: str
    summary: str
    content_type: str
    region: str | None
    endpoint_url: str | None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="batch_split.py",
        description="Part a batch transform's output into predictions and errors.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--input", required=True, help="the transform job's S3OutputPath (or folder)")
    p.add_argument("--predictions", required=True, help="where the scored rows go")
    p.add_argument("--errors", required=True, help="where the bad rows go")
    p.add_argument("--summary", help="the summary's URI (default: <errors>/summary.json)")
    p.add_argument("--content-type", default=contract.CSV, choices=contract.CONTENT_TYPES)
    p.add_argument("--region")
    p.add_argument("--endpoint-url")
    return p


def parse_options(argv: list[str] | None) -> Options:
    args = parser().parse_args(argv)
    targets = {"--predictions": args.predictions, "--errors": args.errors}
    for flag, target in targets.items():
        if target.rstrip("/") == args.input.rstrip("/"):
            raise UsageError(f"{flag} must differ from --input ({args.input})")
    return Options(
        input=args.input,
        predictions=args.predictions,
        errors=args.errors,
        summary=args.summary or uri.join(args.errors, contract.SUMMARY_FILE),
        content_type=args.content_type,
        region=args.region,
        endpoint_url=args.endpoint_url,
    )


def execute(options: Options) -> Summary:
    client = None
    if any(uri.is_s3(w) for w in (options.input, options.predictions, options.errors,
                                  options.summary)):  # fmt: skip
        import boto3

        client = boto3.client("s3", region_name=options.region, endpoint_url=options.endpoint_url)
    summary = split_all(
        location(options.input, client),
        location(options.predictions, client),
        location(options.errors, client),
        options.content_type,
    )
    uri.write_bytes(options.summary, summary.to_json(), s3=client)
    return summary


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        options = parse_options(argv)
        summary = execute(options)
    except (UsageError, uri.UriError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused a request: {exc}", file=sys.stderr)
        return EXIT_AWS
    print(
        f"{summary.files} file(s), {summary.rows} row(s): {summary.scored} scored, "
        f"{summary.errors} error(s) {dict(summary.errors_by_reason)}",
        flush=True,
    )
    if summary.files == 0:
        print(
            f"error: no {contract.OUTPUT_SUFFIX} file under --input {options.input}",
            file=sys.stderr,
        )
        return EXIT_SILENT
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
