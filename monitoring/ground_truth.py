"""SageMaker Model Monitor's ground-truth records: write them, and read them back.

One JSON line per labelled inference (AWS docs, "Ingest Ground Truth labels and merge them
with predictions")::

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "aaaa-bbbb-cccc"}, "eventVersion": "0"}

under ``<prefix>/yyyy/mm/dd/hh/*.jsonl``, the hour being when the labels were collected
(not when the inference ran). ``eventId`` names the capture record: its
``eventMetadata.inferenceId`` when the caller sent an InferenceId, else its ``eventId``
(Model Monitor merges on inferenceId when a capture record has one, on eventId otherwise).

``data`` holds the labels of every row of the request, in row order:

- ``CSV``: one label per line (``"1"``; ``"1\\n0\\n1"`` for three rows), as the docs' example;
- ``JSON``: a label, a list of them, ``{"label": ...}``, or ``{"instances": [{"label": ...},
  ...]}`` as Clarify's bias monitor example for JSON endpoints uploads
  (aws/amazon-sagemaker-examples, sm-clarify_model_bias_monitor_for_endpoint_json);
- ``BASE64``: CSV text, base64-encoded, as capture stores bodies it cannot keep as text.

A label is 1/0, true/false, or the dataset's own positive/negative names (yes/no). This
module writes ``"1"``/``"0"`` in CSV, the documented form.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitoring.json_lines import parse_json_line
from training import dataset as ds
from training import uri

EVENT_VERSION = "0"
ENCODINGS = ("CSV", "JSON", "BASE64")
# An eventId is either a capture eventId (a uuid) or a caller's InferenceId, which
# botocore's sagemaker-runtime model allows as 1 to 64 printable ASCII characters, the first
# not a space (shape InferenceId); inference/capture.py enforces the same on the server.
EVENT_ID_MAX = 64
_EVENT_ID = re.compile(r"[!-~][ -~]*")
HOUR_FOLDER = "%Y/%m/%d/%H"


class LabelError(ValueError):
    """A ground-truth line to skip; ``reason`` is the counter it is reported under."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True)
class Vocabulary:
    """What a label may say: 1/0 and true/false always, plus the dataset's class names."""

    positive: str = ds.POSITIVE_LABEL
    negative: str = ds.NEGATIVE_LABEL

    def value(self, raw: Any) -> int:
        """1 or 0 for a label, else LabelError("bad_label")."""
        if raw == "1" or raw == "0":  # the documented form, and nearly every label
            return 1 if raw == "1" else 0
        if isinstance(raw, bool):
            return int(raw)
        if isinstance(raw, int | float) and raw in (0, 1):
            return int(raw)
        if isinstance(raw, str):
            text = raw.strip().lower()
            if text in ("1", "1.0", "true", self.positive.lower()):
                return 1
            if text in ("0", "0.0", "false", self.negative.lower()):
                return 0
        raise LabelError(
            "bad_label",
            f"label {raw!r} is not binary: use 1/0, true/false or {self.positive}/{self.negative}",
        )

    def values(self, raws: Sequence[Any]) -> tuple[int, ...]:
        if not raws:
            raise LabelError("empty_label", "no label")
        return tuple(self.value(raw) for raw in raws)


@dataclass(frozen=True)
class GroundTruth:
    event_id: str
    labels: tuple[int, ...]  # one per row of the request, in row order


def check_event_id(value: Any) -> str:
    """``value`` if it can name a capture record, else LabelError("bad_event_id")."""
    if not isinstance(value, str) or not 1 <= len(value) <= EVENT_ID_MAX:
        raise LabelError(
            "bad_event_id", f"event id {value!r} must be a string of 1 to {EVENT_ID_MAX} characters"
        )
    if _EVENT_ID.fullmatch(value) is None:
        raise LabelError(
            "bad_event_id",
            f"event id {value!r} must be printable ASCII, the first character not a space",
        )
    return value


def to_record(event_id: str, labels: Sequence[int]) -> dict[str, Any]:
    """The ground-truth record for one request's labels (1/0, in row order)."""
    check_event_id(event_id)
    if not labels or any(label not in (0, 1) for label in labels):
        raise ValueError(f"labels must be 1 or 0, at least one; got {list(labels)!r}")
    return {
        "groundTruthData": {"data": "\n".join(str(int(v)) for v in labels), "encoding": "CSV"},
        "eventMetadata": {"eventId": event_id},
        "eventVersion": EVENT_VERSION,
    }


def to_line(event_id: str, labels: Sequence[int]) -> str:
    """``to_record`` as one JSON line (no newline)."""
    return json.dumps(to_record(event_id, labels), separators=(",", ":"))


def parse(line: bytes | str, vocabulary: Vocabulary = Vocabulary()) -> GroundTruth:
    """One ground-truth line; LabelError names why it cannot be used."""
    try:
        record = parse_json_line(line)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        raise LabelError("bad_json", "not a JSON line") from None
    try:
        event_id = record["eventMetadata"]["eventId"]
        data = record["groundTruthData"]["data"]
        encoding = record["groundTruthData"]["encoding"]
        version = record.get("eventVersion")
    except (KeyError, TypeError, AttributeError):
        raise LabelError(
            "missing_fields", "needs groundTruthData.data/.encoding and eventMetadata.eventId"
        ) from None
    if version != EVENT_VERSION:
        raise LabelError("unknown_version", f"eventVersion must be {EVENT_VERSION!r}")
    check_event_id(event_id)
    return GroundTruth(event_id, vocabulary.values(_raw_labels(data, encoding)))


def _raw_labels(data: Any, encoding: Any) -> list[Any]:
    if not isinstance(data, str) or not isinstance(encoding, str):
        raise LabelError("missing_fields", "groundTruthData.data and .encoding must be strings")
    kind = encoding.upper()
    if kind == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise LabelError("bad_base64", "groundTruthData.data is not base64 of UTF-8") from None
        kind = "CSV"
    if kind == "CSV":
        if data == "1" or data == "0":
            return [data]
        cells = [line.strip() for line in data.splitlines() if line.strip()]
        if any("," in cell for cell in cells):
            raise LabelError("bad_label", "a CSV label line holds more than the label")
        return cells
    if kind == "JSON":
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            raise LabelError("bad_json_label", "groundTruthData.data is not JSON") from None
        return _json_labels(document)
    raise LabelError("unknown_encoding", f"encoding {encoding!r} is not one of {ENCODINGS}")


def _json_labels(document: Any) -> list[Any]:
    if isinstance(document, dict) and "instances" in document:
        document = document["instances"]
    items = document if isinstance(document, list) else [document]
    labels = []
    for item in items:
        if isinstance(item, dict):
            if "label" not in item:
                raise LabelError("bad_label", "a JSON label object has no 'label'")
            item = item["label"]
        labels.append(item)
    return labels


def hour_folder(prefix: str, collected: datetime) -> str:
    """``<prefix>/yyyy/mm/dd/hh``: where labels collected at ``collected`` belong (UTC)."""
    return uri.join(prefix, collected.astimezone(UTC).strftime(HOUR_FOLDER))
