"""The model's answer in a capture record (``captureData.endpointOutput``) as positive scores.

What inference/handler.py answers, one entry per request row, in row order:

- ``text/csv``: ``label,p_negative,p_positive`` per line (``no,0.912345,0.087655``);
- ``application/json``: ``{"predictions": [{"label": "no", "probabilities": {"no": 0.91,
  "yes": 0.09}}, ...], "model_sha256": "..."}``.

Other models' answers are read too, as Model Monitor reads them: a CSV line holding a single
probability or label, and JSON predictions that are a number, ``{"score": p, ...}`` (as
SageMaker's built-in algorithms answer) or a bare ``{"label": ...}``. A label without a
probability scores 1 or 0. The body may be text (CSV/JSON encoding) or base64.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from training import dataset as ds

CSV_TYPES = frozenset({"text/csv"})
JSON_TYPES = frozenset({"application/json", "application/jsonlines"})


class OutputError(ValueError):
    """An answer that cannot be read; ``reason`` is the counter it is reported under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class OutputReader:
    positive: str = ds.POSITIVE_LABEL
    negative: str = ds.NEGATIVE_LABEL

    def scores(self, output: Any) -> list[float]:
        """Positive-class scores, one per request row, from an ``endpointOutput`` object."""
        try:
            data = output["data"]
            encoding = str(output.get("encoding", "")).upper()
            content_type = str(output.get("observedContentType", ""))
        except (KeyError, TypeError, AttributeError):
            raise OutputError("missing_output") from None
        if not isinstance(data, str):
            raise OutputError("missing_output")
        if encoding == "BASE64":
            try:
                data = base64.b64decode(data, validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise OutputError("bad_output_base64") from None
        elif encoding not in ("CSV", "JSON"):
            raise OutputError("unknown_output_encoding")
        media_type = content_type.split(";")[0].strip().lower()
        if media_type in CSV_TYPES:
            scores = self._csv(data)
        elif media_type in JSON_TYPES:
            scores = self._json(data)
        else:
            raise OutputError("unsupported_output_type")
        if not scores:
            raise OutputError("empty_output")
        return scores

    def _csv(self, text: str) -> list[float]:
        scores = []
        for line in text.splitlines():
            if not line.strip():
                continue
            cells = line.split(",")
            if len(cells) == 3:  # label, p_negative, p_positive: the handler's answer
                scores.append(_probability(cells[2]))
            elif len(cells) == 1:
                scores.append(self._single(cells[0].strip()))
            else:
                raise OutputError("bad_output_row")
        return scores

    def _json(self, text: str) -> list[float]:
        try:
            document = json.loads(text)
        except (ValueError, RecursionError):
            raise OutputError("bad_output_json") from None
        if isinstance(document, dict):
            document = document.get("predictions")
        if not isinstance(document, list):
            raise OutputError("bad_output_shape")
        return [self._item(item) for item in document]

    def _item(self, item: Any) -> float:
        if isinstance(item, dict):
            probabilities = item.get("probabilities")
            if isinstance(probabilities, dict):
                if self.positive not in probabilities:
                    raise OutputError("unknown_positive_label")
                return _probability(probabilities[self.positive])
            if "score" in item:
                return _probability(item["score"])
            for key in ("label", "predicted_label"):
                if key in item:
                    return self._single(item[key])
            raise OutputError("bad_output_shape")
        return self._single(item)

    def _single(self, value: Any) -> float:
        """A lone value: a probability, or a label scoring 1 or 0."""
        if isinstance(value, str):
            if value == self.positive:
                return 1.0
            if value == self.negative:
                return 0.0
        return _probability(value)


def _probability(value: Any) -> float:
    if isinstance(value, bool):
        raise OutputError("bad_score")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise OutputError("bad_score") from None
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise OutputError("bad_score")
    return number
