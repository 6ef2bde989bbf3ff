"""A team's labels file, checked line by line, as ground-truth records to upload.

Two formats:

- CSV with a header naming the columns ``id`` and ``label`` (others are ignored): ``id`` is
  the inference id the caller sent (or the capture record's eventId), ``label`` the outcome
  (1/0, true/false, yes/no). A request of several rows takes its labels in row order,
  comma-separated in one quoted cell: ``req-7,"1,0,0"``;
- JSON lines already in SageMaker's ground-truth format (monitoring/ground_truth.py).

Every line is checked before anything is written, and a file with any bad line is refused
whole, with the line numbers and reasons: a partial upload would leave labels that a fixed
file, uploaded again, duplicates. An id may appear once per file.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from monitoring.ground_truth import (
    GroundTruth,
    LabelError,
    Vocabulary,
    check_event_id,
    hour_folder,
    to_line,
)
from monitoring.ground_truth import parse as parse_line
from training import uri

ID_COLUMN = "id"
LABEL_COLUMN = "label"
# A refusal names this many bad lines, then counts the rest.
SHOWN_PROBLEMS = 5


class LabelFileError(Exception):
    """The file cannot be uploaded; the message is one line naming every reason."""


@dataclass(frozen=True)
class LabelFile:
    source: str
    records: tuple[GroundTruth, ...]

    @property
    def rows(self) -> int:
        return sum(len(r.labels) for r in self.records)

    def jsonl(self) -> bytes:
        """The ground-truth file: one record per line, in the file's order."""
        return "".join(to_line(r.event_id, r.labels) + "\n" for r in self.records).encode()


def target(prefix: str, collected: datetime, content: bytes) -> str:
    """Where ``content`` goes: the hour folder it was collected in, named by its hash, so
    uploading the same labels again in the same hour replaces the file, not adds to it."""
    digest = hashlib.sha256(content).hexdigest()[:16]
    return uri.join(hour_folder(prefix, collected), f"labels-{digest}.jsonl")


def read(path: Path, vocabulary: Vocabulary | None = None) -> LabelFile:
    vocabulary = vocabulary or Vocabulary()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LabelFileError(f"{path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelFileError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise LabelFileError(f"{path}: the file is empty; expected a header id,label and rows")
    jsonl = path.suffix.lower() in (".jsonl", ".json") or (
        path.suffix.lower() != ".csv" and text.lstrip().startswith("{")
    )
    parsed = _jsonl(text, vocabulary) if jsonl else _csv(path, text, vocabulary)
    records, problems = _unique(parsed)
    if problems:
        raise LabelFileError(_refusal(path, problems))
    if not records:
        raise LabelFileError(f"{path}: no labels in the file")
    return LabelFile(str(path), tuple(records))


Parsed = list[tuple[int, GroundTruth | str]]  # (line number, record or why it is bad)


def _jsonl(text: str, vocabulary: Vocabulary) -> Parsed:
    found: Parsed = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            found.append((number, parse_line(line, vocabulary)))
        except LabelError as exc:
            found.append((number, str(exc)))
    return found


def _csv(path: Path, text: str, vocabulary: Vocabulary) -> Parsed:
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except csv.Error as exc:
        raise LabelFileError(f"{path}: line 1 is not CSV: {exc}") from None
    names = [cell.strip().lower() for cell in header]
    missing = [c for c in (ID_COLUMN, LABEL_COLUMN) if c not in names]
    if missing:
        raise LabelFileError(
            f"{path}: the header has no {' or '.join(missing)} column (found "
            f"{', '.join(repr(c) for c in header) or 'nothing'}); expected a header id,label"
        )
    id_at, label_at = names.index(ID_COLUMN), names.index(LABEL_COLUMN)
    found: Parsed = []
    try:
        for cells in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                found.append((number, f"{len(cells)} values for {len(header)} columns"))
                continue
            try:
                event_id = check_event_id(cells[id_at].strip())
                labels = vocabulary.values([v for v in cells[label_at].split(",") if v.strip()])
            except LabelError as exc:
                found.append((number, str(exc)))
                continue
            found.append((number, GroundTruth(event_id, labels)))
    except csv.Error as exc:
        found.append((reader.line_num, f"not CSV: {exc}"))
    return found


def _unique(parsed: Parsed) -> tuple[list[GroundTruth], list[tuple[int, str]]]:
    records: list[GroundTruth] = []
    problems: list[tuple[int, str]] = []
    first_line: dict[str, int] = {}
    for number, item in parsed:
        if isinstance(item, str):
            problems.append((number, item))
        elif item.event_id in first_line:
            problems.append(
                (number, f"id {item.event_id!r} again (first on line {first_line[item.event_id]})")
            )
        else:
            first_line[item.event_id] = number
            records.append(item)
    return records, problems


def _refusal(path: Path, problems: Iterable[tuple[int, str]]) -> str:
    listed = sorted(problems)
    shown = "; ".join(f"line {n}: {why}" for n, why in listed[:SHOWN_PROBLEMS])
    more = len(listed) - SHOWN_PROBLEMS
    tail = f"; and {more} more" if more > 0 else ""
    return f"{path}: {len(listed)} bad line(s), nothing uploaded: {shown}{tail}"
