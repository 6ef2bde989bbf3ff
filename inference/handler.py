"""Inference handler for SageMaker's scikit-learn container (shipped as code/inference.py).

The image has two serving stacks, and both call ``model_fn(model_dir)`` once per worker,
then ``transform_fn(model, body, content_type, accept)`` per request:

- single-model endpoints (what the kit deploys): sagemaker-containers' Flask worker under
  gunicorn (``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main``);
- multi-model endpoints: sagemaker-inference's ``Transformer`` behind Multi Model Server.

In a batch transform job (MLOPS_BAD_ROWS set in the container, see "batch mode" below)
``transform_fn`` answers each mini-batch line by line instead (``transform_batch``).

``transform_fn`` is ``parse_input`` -> ``predict`` -> ``render_output``; the local server
calls the same chain through ``transform``. The handler offers ``transform_fn`` rather than
``input_fn``/``predict_fn``/``output_fn`` because only a returned value reaches the caller
with its status in the single-model worker (see ``_refusal``).

Errors: every problem with a request raises ``RequestError``, with a 4xx status and a
message that says what to fix. The two stacks need it delivered differently:

- the Flask worker wraps every exception from a handler function in its own ClientError
  and answers 500 with an HTML page, but sends back a response object as it is, so there
  ``transform_fn`` returns a response carrying the status;
- the ``Transformer`` answers 500 for any exception unless it is a
  ``sagemaker_inference.errors.BaseInferenceToolkitError``, whose ``status_code`` it sends,
  so ``RequestError`` subclasses it (when the toolkit is present) and is raised.

This module must run inside the container unchanged: it imports only the standard library,
numpy, pandas and joblib, all of which the image ships (flask and the toolkits only when
the image's server has already loaded them).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import reprlib
import sys
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any

import joblib
import numpy as np
import pandas as pd

CSV = "text/csv"
JSON = "application/json"
NPY = "application/x-npy"
SUPPORTED_CONTENT_TYPES = (CSV, JSON, NPY)
SUPPORTED_ACCEPTS = (JSON, CSV)
DEFAULT_ACCEPT = JSON
REPLACEMENT_CHARACTER = "\ufffd"
# Largest batch one request may carry; SageMaker caps payloads at 6 MB anyway.
MAX_ROWS = int(os.environ.get("MLOPS_MAX_ROWS", "5000"))
THRESHOLD = 0.5
# Limits on what a request may make the handler parse, each checked before the work it
# bounds (a hostile body of a few MB otherwise cost minutes of CPU or gigabytes, issue 16).
# Most columns a request may send or name. The model takes 19 and refuses any other, but
# up to this many the refusal names every unknown, duplicate and missing column (the usual
# mistake is a table export with an id and the label); past it a refusal gives the count
# alone, before anything is parsed: naming a million columns costs what the limit saves.
MAX_COLUMNS = 64
# Most characters the names of a header, of JSON records' keys or of an array's fields may
# take together: 64 names of 64 characters (the model's 19 take 312). Also bounds the names
# a refusal repeats.
MAX_HEADER_CHARS = 4096
# Deepest JSON nesting parsed. A request nests 3 levels; a few more parse, so that the
# per-column checks name a list sent as a value. Counted from the brackets before json.loads
# (see _parse_json), whose recursion otherwise stops only at Python's own limit, with a
# RecursionError, and at a depth that differs (about 1,000 in 3.11, 1,500 in the image's
# 3.12).
MAX_JSON_DEPTH = 16
# Longest JSON integer parsed: CPython's default int_max_str_digits, which json.loads
# enforces before its quadratic conversion (a float64 holds 309 digits at most anyway).
MAX_INT_DIGITS = 4300

try:  # present in the SageMaker container, and in the dev install for tests
    from sagemaker_inference.errors import BaseInferenceToolkitError as _StatusError
except ImportError:  # pragma: no cover - exercised where the toolkit is absent

    class _StatusError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            super().__init__(status_code, message, phrase)
            self.status_code, self.message, self.phrase = status_code, message, phrase


class RequestError(_StatusError):
    """A client mistake: a 4xx status and a message naming what to fix."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message, message)

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


class ModelLoadError(Exception):
    """The model directory cannot be served; the endpoint must not come up with it."""


@dataclass(frozen=True)
class ServingModel:
    pipeline: Any
    feature_order: tuple[str, ...]
    categorical: frozenset[str]
    numeric: tuple[str, ...]
    negative_label: str
    positive_label: str
    sha256: str


@dataclass(frozen=True)
class Batch:
    """A request after parse_input: a frame of raw values and whether its columns were named,
    or, for CSV, the text itself.

    CSV is parsed in predict because only the model knows the column names (is the first
    row a header?) and types (so pandas can parse numbers in C instead of as strings).
    """

    frame: pd.DataFrame | None = None
    named: bool = False
    csv_text: str | None = None


@dataclass(frozen=True)
class Prediction:
    positive_probability: np.ndarray
    model: ServingModel

    @property
    def labels(self) -> np.ndarray:
        return np.where(
            self.positive_probability >= THRESHOLD,
            self.model.positive_label,
            self.model.negative_label,
        )


# --- model_fn -------------------------------------------------------------------------------


def model_fn(model_dir: str) -> ServingModel:
    """Load the model, but only after its bytes match the training manifest's SHA-256."""
    try:
        with open(os.path.join(model_dir, "manifest.json"), encoding="utf-8") as handle:
            manifest = json.load(handle)
        model_file = os.path.join(model_dir, manifest["model"]["file"])
        with open(model_file, "rb") as handle:
            data = handle.read()
    except (OSError, KeyError, ValueError) as exc:
        raise ModelLoadError(f"{model_dir} is not a model directory from training: {exc}") from exc
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest["model"]["sha256"]:
        # Unpickling runs code: never load bytes the manifest does not vouch for.
        raise ModelLoadError(
            f"{model_file} has SHA-256 {actual}, but the manifest says "
            f"{manifest['model']['sha256']}; refusing to load it"
        )
    _check_sklearn(manifest)
    bad_rows_mode()  # a transform job's MLOPS_BAD_ROWS: refuse a wrong one before serving
    features = manifest["features"]
    categorical = tuple(features["categorical"])
    numeric = tuple(features["numeric"])
    return ServingModel(
        pipeline=joblib.load(io.BytesIO(data)),
        feature_order=categorical + numeric,
        categorical=frozenset(categorical),
        numeric=numeric,
        negative_label=manifest["target"]["negative"],
        positive_label=manifest["target"]["positive"],
        sha256=actual,
    )


def _check_sklearn(manifest: dict[str, Any]) -> None:
    import sklearn

    trained = manifest.get("libraries", {}).get("scikit-learn", "")
    if trained.split(".")[:2] != sklearn.__version__.split(".")[:2]:
        raise ModelLoadError(
            f"model was trained with scikit-learn {trained} but this server has "
            f"{sklearn.__version__}; use the matching container version"
        )


# --- parse_input -------------------------------------------------------------------------------


def parse_input(input_data: bytes | bytearray | str, content_type: str | None) -> Batch:
    if isinstance(input_data, bytearray):  # what Multi Model Server hands the Transformer
        input_data = bytes(input_data)
    media_type = _media_type(content_type)
    if media_type not in SUPPORTED_CONTENT_TYPES:
        raise RequestError(
            415,
            f"Content-Type {content_type or '(missing)'} is not supported; "
            f"use one of {', '.join(SUPPORTED_CONTENT_TYPES)}",
        )
    if not input_data:
        raise RequestError(400, "request body is empty; send at least one row")
    if media_type == NPY:
        raw = input_data.encode() if isinstance(input_data, str) else input_data
        return _parse_npy(raw)
    try:
        text = input_data.decode("utf-8") if isinstance(input_data, bytes) else input_data
    except UnicodeDecodeError as exc:
        raise RequestError(400, f"body is not UTF-8 text (byte {exc.start}); send UTF-8") from None
    if isinstance(input_data, str) and REPLACEMENT_CHARACTER in text:
        # The Flask worker decodes text bodies itself and replaces bytes that are not UTF-8
        # with U+FFFD; the bytes are gone, but the body was not UTF-8.
        at = text.index(REPLACEMENT_CHARACTER)
        raise RequestError(
            400,
            f"body is not UTF-8 text (character {at} is U+FFFD, a byte that was not UTF-8); "
            "send UTF-8",
        )
    if not text.strip():
        raise RequestError(400, "request body is empty; send at least one row")
    if media_type == CSV:
        return _parse_csv(text)
    raw = input_data if isinstance(input_data, bytes) else text.encode("utf-8", "surrogatepass")
    return _parse_json(text, raw)


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def _parse_csv(text: str) -> Batch:
    return Batch(csv_text=text.lstrip("\ufeff"))


def _read_csv(text: str, model: ServingModel) -> tuple[pd.DataFrame, bool]:
    expected = model.feature_order
    first, end = _csv_row(text, _after_blank_lines(text, 0), "the first CSV row", model)
    first = [cell.strip() for cell in first]
    # A first row that names any feature is a header; it is checked like JSON records.
    named = not set(first).isdisjoint(expected)
    if named:
        _check_names(first, "the header row")
        if len(set(first)) != len(first):
            # pandas would rename the second copy ("x.1"); say what is actually wrong.
            duplicated = sorted(name for name, count in Counter(first).items() if count > 1)
            raise RequestError(
                400, f"duplicate column(s) {', '.join(duplicated)} in the header row"
            )
        # pandas makes the extra leading values of a first data row wider than the header
        # its row index (a million of them took minutes), shifting the rest left; it
        # checks only the later rows' width itself.
        data, _ = _csv_row(text, _after_blank_lines(text, end), "the first CSV data row", model)
        if len(data) > len(first):
            raise RequestError(
                400,
                f"the first CSV data row has {len(data)} values but the header names "
                f"{len(first)} columns; send one value per header column",
            )
    elif len(first) != len(expected):
        raise _wrong_width(model, len(first))
    # na_filter=False: no NA guessing ("NA" is a valid text value); an empty numeric field
    # keeps its column as text, and the per-column check reports the row. nrows: one row
    # past the limit is enough to refuse the batch (3 million one-value rows under a
    # header made a 57-million-cell frame of the padding).
    options: dict[str, Any] = {"header": 0 if named else None, "na_filter": False,
                               "nrows": MAX_ROWS + 1}  # fmt: skip
    if not named:
        # Rows in feature order get their names now, sparing a relabelling copy later.
        options["names"] = list(expected)
    frame = _csv_frame(text, options)
    if len(frame) > MAX_ROWS:
        raise _too_many_rows(f"more than {MAX_ROWS}")
    if any(frame[c].dtype.kind != "O" for c in model.categorical if c in frame.columns):
        # A category that looks like a number ("1", "01") made pandas type its column numeric,
        # which the model's encoder cannot take. Rare, so only then read again with the
        # categories as text (asking for that up front costs every request about 1 ms).
        frame = _csv_frame(text, options | {"dtype": dict.fromkeys(model.categorical, str)})
    return frame, named


# A CSV line, ended as pandas ends one: by \n, \r\n or a bare \r.
_CSV_LINE = re.compile(r"[^\r\n]*(?:\r\n?|\n)?")
# Lines of nothing but spaces and tabs, which pandas skips before a row.
_BLANK_LINES = re.compile(r"(?:[ \t]*(?:\r\n?|\n))*")


def _after_blank_lines(text: str, start: int) -> int:
    blank = _BLANK_LINES.match(text, start)
    return blank.end() if blank else start  # it always matches, if only nothing


def _csv_row(text: str, start: int, which: str, model: ServingModel) -> tuple[list[str], int]:
    """The CSV row at ``text[start]`` (the csv module splits rows and quotes fields as
    pandas does) and the offset after it.

    The csv module gets the row's lines one at a time, and the row is refused as soon as
    they hold more commas than MAX_COLUMNS values have, before the csv module builds any
    of them: a row of a million values costs a count, not a million strings.
    """
    end = start

    def lines() -> Iterator[str]:
        nonlocal end
        commas = 0
        while end < len(text):
            match = _CSV_LINE.match(text, end)
            line = match.group() if match else text[end:]  # it always matches a character
            end += len(line)
            commas += line.count(",")
            if commas >= MAX_COLUMNS:
                raise RequestError(
                    400,
                    f"{which} has more than {MAX_COLUMNS} values, the most a request may "
                    f"have; {_csv_advice(model)}",
                )
            yield line

    try:
        return next(csv.reader(lines(), skipinitialspace=True), []), end
    except csv.Error as exc:  # a field over the csv module's 128 KiB, a NUL byte
        raise RequestError(400, f"{which} is unreadable: {exc}") from None


def _csv_advice(model: ServingModel) -> str:
    return (
        f"send {len(model.feature_order)} values per row in this order: "
        f"{', '.join(model.feature_order)} (a header row naming them is optional)"
    )


def _wrong_width(model: ServingModel, width: int) -> RequestError:
    expected = model.feature_order
    return RequestError(
        400,
        f"each row must have {len(expected)} values in this order: {', '.join(expected)}; "
        f"got {width}",
    )


def _check_names(names: Collection[str], source: str) -> None:
    """Refuse more column names, or longer ones, than a request may have."""
    if len(names) > MAX_COLUMNS:
        raise RequestError(
            400,
            f"there are {len(names)} different column names in {source}, more than the "
            f"{MAX_COLUMNS} a request may have; send only the model's feature columns",
        )
    chars = sum(map(len, names))
    if chars > MAX_HEADER_CHARS:
        raise RequestError(
            400,
            f"the column names in {source} take {chars} characters, more than the "
            f"{MAX_HEADER_CHARS} characters a request's names may take; name only the model's "
            "features",
        )


def _too_many_rows(count: str) -> RequestError:
    return RequestError(
        413,
        f"the batch has {count} rows; the limit is {MAX_ROWS} per request; "
        f"split it into requests of at most {MAX_ROWS} rows",
    )


def _csv_frame(text: str, options: dict[str, Any]) -> pd.DataFrame:
    try:
        # pandas parses numbers in C here; a column with anything else stays text and is
        # reported with its row by the per-column checks.
        return pd.read_csv(io.StringIO(text), skipinitialspace=True, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RequestError(400, f"body is not valid CSV: {str(exc).strip()}") from None


_JSON_SHAPE = (
    'JSON body must be {"instances": [[value, ...], ...]} with values in feature order, '
    'or {"records": [{"column": value, ...}, ...]}'
)


def _parse_json(text: str, raw: bytes) -> Batch:
    # Before json.loads recurses into and builds them, the arrays and objects are bounded
    # by the body's brackets, counted in one C pass (0.2 ms for 500 KB). Brackets inside
    # strings count too, which only overstates them; where that alone breaks a limit, the
    # exact count without them (twice the cost) decides. Closing brackets inside strings
    # could hide nesting from the first count, though: _confirm_nesting settles that.
    brackets, exact = raw.translate(None, _NOT_BRACKETS), False
    if _nesting_problem(brackets):
        brackets, exact = _brackets_outside_strings(raw), True
        if problem := _nesting_problem(brackets):
            raise problem
    try:
        document = json.loads(text, parse_int=_json_int_parser())
    except RecursionError:  # nesting hidden as above, and deeper than Python parses
        raise _too_deep() from None
    except ValueError as exc:
        _confirm_nesting(raw, brackets, exact, None)  # hidden nesting is the first problem
        if isinstance(exc, json.JSONDecodeError):
            raise RequestError(
                400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
        # The only other one json.loads raises: an integer over the digit limit.
        raise RequestError(
            400,
            f"body has a JSON integer longer than {_int_digits_limit()} digits, the limit; "
            "send numbers a 64-bit float holds (up to about 1.8e308)",
        ) from None
    _confirm_nesting(raw, brackets, exact, _request_rows(document))
    if not isinstance(document, dict) or len(document.keys() & {"instances", "records"}) != 1:
        raise RequestError(400, _JSON_SHAPE)
    if "records" in document:
        records = document["records"]
        if isinstance(records, list) and len(records) > MAX_ROWS:
            raise _too_many_rows(str(len(records)))
        if not isinstance(records, list) or not set(map(type, records)) <= {dict}:
            bad = _first_bad(records, dict)
            raise RequestError(400, f"{_JSON_SHAPE}; records[{bad}] is not an object")
        # Every distinct key becomes a column of every row: bound them before the frame.
        names = set().union(*records)
        _check_names(names, "the JSON records")
        # Named up front (in first-seen order, as pandas finds them), the columns cost
        # pandas half the time: it need not collect them from every record again.
        columns = list(records[0]) if records else []
        if len(columns) != len(names):
            columns = list(dict.fromkeys(key for record in records for key in record))
        frame = _json_frame(records, lambda rows: pd.DataFrame.from_records(rows, columns=columns))
        return Batch(frame, named=True)
    instances = document["instances"]
    if isinstance(instances, list) and len(instances) > MAX_ROWS:
        raise _too_many_rows(str(len(instances)))
    if not isinstance(instances, list) or not set(map(type, instances)) <= {list}:
        bad = _first_bad(instances, list)
        raise RequestError(400, f"{_JSON_SHAPE}; instances[{bad}] is not a list of values")
    widths = {len(row) for row in instances}
    if len(widths) > 1:
        lengths = [len(row) for row in instances]
        row = next(i for i, n in enumerate(lengths) if n != lengths[0])
        raise RequestError(
            400, f"row {row + 1} has {lengths[row]} values but row 1 has {lengths[0]}"
        )
    if instances and len(instances[0]) > MAX_COLUMNS:
        raise RequestError(
            400,
            f"row 1 has {len(instances[0])} values, more than the {MAX_COLUMNS} columns a "
            "request may have; send one value per model feature, in feature order",
        )
    return Batch(_json_frame(instances, pd.DataFrame), named=False)


def _json_frame(rows: list[Any], make: Callable[[list[Any]], pd.DataFrame]) -> pd.DataFrame:
    if not rows:
        return pd.DataFrame()
    try:
        return make(rows)
    except OverflowError:  # pandas takes an integer past float64's range for a float
        for number, row in enumerate(rows, start=1):
            named = isinstance(row, dict)
            for key, value in row.items() if named else enumerate(row, start=1):
                if isinstance(value, int) and abs(value) > sys.float_info.max:
                    where = f"column {key}" if named else f"value {key}"
                    raise RequestError(
                        400,
                        f"row {number}, {where}: {_shown(value)} is too large; send a number a "
                        "64-bit float holds (up to about 1.8e308)",
                    ) from None
        raise


# Everything but brackets; everything but brackets and quotes.
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
_NOT_JSON_MARKS = bytes(sorted(set(range(256)) - set(b'"[]{}')))
# By byte value: +1 for an opening bracket, -1 for a closing one.
_BRACKET_STEPS = np.zeros(256, dtype=np.int8)
_BRACKET_STEPS[list(b"[{")] = 1
_BRACKET_STEPS[list(b"]}")] = -1


def _nesting_problem(brackets: bytes) -> RequestError | None:
    """What is wrong with JSON whose brackets, in order, are ``brackets``: nesting deeper
    than MAX_JSON_DEPTH, or more arrays and objects than a batch of MAX_ROWS rows has."""
    # A request's arrays and objects: one per row, the list of rows, and the body.
    most = MAX_ROWS + 2
    # Depth with numpy, over at most the brackets such a batch has: a valid start never
    # closes more than it opened, so past them json.loads has met too many arrays anyway.
    head = np.frombuffer(brackets[: 2 * most], np.uint8)
    if len(head) > MAX_JSON_DEPTH and np.cumsum(_BRACKET_STEPS[head]).max() > MAX_JSON_DEPTH:
        return _too_deep()
    containers = brackets.count(b"[") + brackets.count(b"{")
    if containers > most:
        return RequestError(
            413,
            f"body has {containers} JSON arrays and objects; a batch of at most {MAX_ROWS} "
            f"rows (the limit) has {most}: one per row, the list of rows and the body; send "
            f"at most {MAX_ROWS} rows per request, each a flat list or object",
        )
    return None


def _too_deep() -> RequestError:
    return RequestError(
        400,
        f"body nests JSON more than {MAX_JSON_DEPTH} levels deep, the limit; a request nests "
        f"3: {_JSON_SHAPE.removeprefix('JSON body must be ')}",
    )


def _brackets_outside_strings(raw: bytes) -> bytes:
    """The brackets of the JSON text ``raw`` that are not inside strings, in order: bytes
    methods only (0.4 ms for 500 KB, where a Python loop takes 50 ms). On malformed JSON
    they include at least those of the valid start, which is all json.loads gets to."""
    if b"\\" in raw:
        # Drop escape pairs first, so that every quote left opens or closes a string.
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    # Adjacent quotes hold no bracket between them: dropping them in pairs keeps the
    # quotes left alternating between opening and closing a string.
    marks = raw.translate(None, _NOT_JSON_MARKS).replace(b'""', b"")
    return b"".join(marks.split(b'"')[::2]) if b'"' in marks else marks


def _request_rows(document: Any) -> list[Any] | None:
    """The rows of a request, if ``document`` is one: objects under "records", or arrays
    under "instances"."""
    if not isinstance(document, dict) or len(document.keys() & {"instances", "records"}) != 1:
        return None
    rows = document.get("records", document.get("instances"))
    kind = dict if "records" in document else list
    # set(map(type, ...)) runs in C: a generator of isinstance calls costs 0.2 ms here.
    return rows if isinstance(rows, list) and set(map(type, rows)) <= {kind} else None


def _confirm_nesting(raw: bytes, brackets: bytes, exact: bool, rows: list[Any] | None) -> None:
    """Refuse nesting the first count missed. Closing brackets inside strings, taken for
    the body's, can hide it; not when the body has no other brackets than a request's rows',
    their list's and its own (then none is inside a string). Otherwise, count exactly."""
    opened = brackets.count(b"[") + brackets.count(b"{")
    if exact or (rows is not None and opened == len(brackets) - opened == len(rows) + 2):
        return
    if problem := _nesting_problem(_brackets_outside_strings(raw)):
        raise problem


def _json_int_parser() -> Callable[[str], int] | None:
    """None (json's own conversion, in C) while CPython refuses integers over
    MAX_INT_DIGITS itself, as it does by default; a checking parser only where that guard
    is off (PYTHONINTMAXSTRDIGITS=0) or raised, as it costs a Python call per integer."""
    return None if 0 < sys.get_int_max_str_digits() <= MAX_INT_DIGITS else _bounded_int


def _int_digits_limit() -> int:
    return MAX_INT_DIGITS if _json_int_parser() else sys.get_int_max_str_digits()


def _bounded_int(digits: str) -> int:
    if len(digits) - digits.startswith("-") > MAX_INT_DIGITS:
        raise ValueError(f"a JSON integer of over {MAX_INT_DIGITS} digits")
    return int(digits)


def _first_bad(items: Any, kind: type) -> int | str:
    if not isinstance(items, list):
        return "(not a list)"
    return next(i for i, item in enumerate(items) if not isinstance(item, kind))


def _parse_npy(raw: bytes) -> Batch:
    _check_npy_header(raw)
    try:
        # allow_pickle=False: an object array would be unpickled, which runs code.
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise RequestError(
                400,
                "object arrays need pickle, which this endpoint refuses; send a string (U) "
                "array in feature order or a structured array with named fields",
            ) from None
        raise RequestError(400, f"body is not a .npy array: {exc}") from None
    except (OSError, EOFError) as exc:
        raise RequestError(400, f"body is not a .npy array: {exc}") from None
    if array.dtype.names:
        frame = pd.DataFrame({name: array[name] for name in array.dtype.names})
        return Batch(frame.reset_index(drop=True), named=True)
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise RequestError(400, f"npy array must be 2-D (rows x features); got {array.ndim}-D")
    return Batch(pd.DataFrame(array), named=False)


def _check_npy_header(raw: bytes) -> None:
    """Refuse from the .npy header alone an array over the row or column limits, or one
    declaring more data than the body holds: np.load allocates what the header declares
    before it reads (a 728 TiB request was a MemoryError, a 500)."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError, TypeError) as exc:
        raise RequestError(400, f"body is not a .npy array: {exc}") from None
    if dtype.names:
        if len(shape) != 1:  # pandas cannot make columns of anything else: a 500 before
            raise RequestError(
                400, f"a structured npy array must be 1-D, one record per row; got {len(shape)}-D"
            )
        rows, columns = shape[0], len(dtype.names)
    elif len(shape) > 2:
        raise RequestError(400, f"npy array must be 2-D (rows x features); got {len(shape)}-D")
    else:
        rows, columns = shape if len(shape) == 2 else (1, math.prod(shape))
    if rows > MAX_ROWS:
        raise _too_many_rows(str(rows))
    if columns > MAX_COLUMNS:
        raise RequestError(
            400,
            f"the array has {columns} columns, more than the {MAX_COLUMNS} a request may "
            "have; send one column per model feature",
        )
    if dtype.names:
        _check_names(dtype.names, "the array's fields")
    declared, available = math.prod(shape) * dtype.itemsize, len(raw) - stream.tell()
    if not dtype.hasobject and declared > available:
        raise RequestError(
            400,
            f"body is not a .npy array: its header declares {declared} bytes of data but "
            f"{available} follow",
        )


# --- predict --------------------------------------------------------------------------------


def predict(data: Batch, model: ServingModel) -> Prediction:
    features = to_features(data, model)
    probabilities = model.pipeline.predict_proba(features)[:, 1]
    return Prediction(probabilities, model)


def to_features(data: Batch, model: ServingModel) -> pd.DataFrame:
    """Check a parsed batch against the model's features; return the frame it expects."""
    if data.csv_text is not None:
        frame, named = _read_csv(data.csv_text, model)
    else:
        assert data.frame is not None
        frame, named = data.frame, data.named
    rows = len(frame)
    if rows == 0:
        raise RequestError(400, "the batch has no rows; send at least one")
    if rows > MAX_ROWS:
        raise _too_many_rows(str(rows))
    expected = model.feature_order
    if named:
        # Sets and a Counter, not list.count: no request makes this quadratic.
        columns = [str(c) for c in frame.columns]
        known, present = set(expected), set(columns)
        duplicated = sorted(c for c, count in Counter(columns).items() if count > 1)
        unknown = [c for c in columns if c not in known]
        missing = [c for c in expected if c not in present]
        problems = []
        if duplicated:
            problems.append(f"duplicate column(s) {', '.join(duplicated)}")
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if problems:
            raise RequestError(
                400, f"{'; '.join(problems)}; expected columns: {', '.join(expected)}"
            )
        if list(frame.columns) != list(expected):
            # scikit-learn insists on the fitted column order.
            frame = frame.loc[:, list(expected)]
    else:
        if frame.shape[1] != len(expected):
            raise _wrong_width(model, frame.shape[1])
        if list(frame.columns) != list(expected):
            frame = frame.set_axis(list(expected), axis=1)

    numeric = list(model.numeric)
    # Per-column numpy checks: selecting column subsets as frames costs more than the checks.
    kinds = {name: dtype.kind for name, dtype in frame.dtypes.items()}
    if all(kinds[name] in "iuf" for name in numeric):
        # The common case: pandas parsed every numeric column as numbers. Integers are
        # always finite; only float columns can hold NaN or infinity.
        for name in numeric:
            if kinds[name] == "f":
                values = frame[name].to_numpy()
                finite = np.isfinite(values)
                if not finite.all():
                    row = int(np.argmin(finite))
                    raise _not_finite(row, name, float(values[row]))
    else:
        frame = frame.assign(**{name: _numeric(name, frame[name]) for name in numeric})
    for name in expected:  # in feature order, so the first problem reported is stable
        if name not in model.categorical:
            continue
        if data.csv_text is not None:
            # The CSV parser yields text for every non-numeric column: only emptiness to check.
            empty = frame[name].to_numpy() == ""
            if empty.any():
                row = int(np.argmax(empty))
                message = f"row {row + 1}, column {name}: expected a non-empty text value, got ''"
                raise RequestError(400, message)
        else:
            _check_categorical(name, frame[name])
    return frame


def _numeric(name: str, column: pd.Series) -> np.ndarray:
    values: np.ndarray
    kind = pd.api.types.infer_dtype(column, skipna=False)
    if kind in ("integer", "floating", "mixed-integer-float"):
        values = column.to_numpy(dtype=np.float64)
    elif kind in ("string", "empty"):
        text = column.str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        unparsed = np.isnan(values) & ~text.str.lower().isin({"nan", "+nan", "-nan"}).to_numpy()
        if unparsed.any():
            row = int(np.argmax(unparsed))
            shown = column.iloc[row]
            what = "is missing" if not shown.strip() else f"{_shown(shown)} is not a number"
            raise RequestError(400, f"row {row + 1}, column {name}: {what}; send a finite number")
    else:  # JSON nulls, booleans, nested values
        for row, value in enumerate(column.tolist()):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise RequestError(
                    400, f"row {row + 1}, column {name}: expected a number, got {_shown(value)}"
                )
        values = column.to_numpy(dtype=np.float64)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.argmin(finite))
        raise _not_finite(row, name, float(values[row]))
    return values


def _not_finite(row: int, column: str, value: float) -> RequestError:
    # JSON null and NaN both arrive as NaN once parsed; name both.
    what = "is missing or NaN" if math.isnan(value) else f"{value} is not allowed"
    return RequestError(400, f"row {row + 1}, column {column}: {what}; send a finite number")


def _check_categorical(name: str, column: pd.Series) -> None:
    values = column.to_numpy(dtype=object)
    # Asked of the array, not the Series: a quarter of the time.
    if pd.api.types.infer_dtype(values, skipna=False) == "string":
        valid = values != ""
    else:
        valid = np.fromiter((isinstance(v, str) and v != "" for v in values), bool, len(values))
    if not valid.all():
        row = int(np.argmin(valid))
        raise RequestError(
            400,
            f"row {row + 1}, column {name}: expected a non-empty text value, "
            f"got {_shown(values[row])}",
        )


# Values a refusal shows, cut short: one may be megabytes of text, or a list nested deep.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 60


def _shown(value: Any) -> str:
    return _SHORT_REPR.repr(value)


# --- render_output ------------------------------------------------------------------------------


def render_output(prediction: Prediction, accept: str | None) -> tuple[str, str]:
    media_type = choose_accept(accept)
    positive = prediction.positive_probability
    labels = prediction.labels
    model = prediction.model
    if media_type == CSV:
        lines = [
            f"{label},{1 - p:.6f},{p:.6f}"
            for label, p in zip(labels.tolist(), positive.tolist(), strict=True)
        ]
        return "\n".join(lines) + "\n", CSV
    # Formatted directly: json.dumps of a thousand small dicts costs more than the model.
    negative, positive_key = json.dumps(model.negative_label), json.dumps(model.positive_label)
    label_json = {model.negative_label: negative, model.positive_label: positive_key}
    rows = ",".join(
        f'{{"label":{label_json[label]},"probabilities":'
        f"{{{negative}:{1 - p:.6f},{positive_key}:{p:.6f}}}}}"
        for label, p in zip(labels.tolist(), positive.tolist(), strict=True)
    )
    return f'{{"predictions":[{rows}],"model_sha256":"{model.sha256}"}}', JSON


def choose_accept(accept: str | None) -> str:
    """First supported type in the Accept header; JSON when the client does not care."""
    offered = [_media_type(part) for part in (accept or "").split(",") if part.strip()]
    if not offered:
        return DEFAULT_ACCEPT
    for media_type in offered:
        if media_type in SUPPORTED_ACCEPTS:
            return media_type
        if media_type in ("*/*", "application/*"):
            return DEFAULT_ACCEPT
        if media_type == "text/*":
            return CSV
    raise RequestError(
        406, f"Accept {accept} is not supported; use one of {', '.join(SUPPORTED_ACCEPTS)}"
    )


def transform(
    model: ServingModel, body: bytes | bytearray | str, content_type: str | None, accept: str | None
) -> tuple[str, str]:
    """One request, start to finish; raises ``RequestError`` for a bad one."""
    choose_accept(accept)  # reject an unusable Accept before doing any work
    return render_output(predict(parse_input(body, content_type), model), accept)


def transform_fn(
    model: ServingModel, body: bytes | bytearray | str, content_type: str | None, accept: str | None
) -> Any:
    """The serving toolkits' per-request entry: ``(body, content type)``, or a refusal."""
    try:
        mode = bad_rows_mode()
        if mode is not None:
            return transform_batch(model, body, content_type, accept, mode)
        return transform(model, body, content_type, accept)
    except RequestError as error:
        return _refusal(error)


def _refusal(error: RequestError) -> Any:
    """A refused request, as the serving stack that called ``transform_fn`` delivers it.

    Inside sagemaker-containers' Flask worker (a Flask request is active), an exception
    would become a 500, while a returned response is sent as it is: return one with the
    status. Everywhere else (the multi-model ``Transformer``, the local server) raise: they
    send ``RequestError``'s own status.
    """
    flask = sys.modules.get("flask")
    if flask is None or not flask.has_request_context():
        raise error
    return flask.Response(error.message + "\n", status=error.status_code, mimetype="text/plain")


# --- batch mode (batch transform) -----------------------------------------------------------
# A transform job sets MLOPS_BAD_ROWS in this container (CreateTransformJob Environment); the
# handler then takes the mini-batches SageMaker sends with SplitType Line and BatchStrategy
# MultiRecord (one record per line, the id already dropped by InputFilter) and answers one
# line per record, so JoinSource "Input" can pair every answer with its input row. The
# formats, reasons and policies are inference/batch_contract.py's (this file ships alone as
# code/inference.py, so it repeats them; tests/test_batch_contract.py holds them equal).

BAD_ROWS_ENV = "MLOPS_BAD_ROWS"
BAD_ROWS_MODES = ("fail", "errors")
JSON_LINES = "application/jsonlines"
BATCH_CONTENT_TYPES = (CSV, JSON_LINES)
EMPTY_LINE, NOT_UTF8, BAD_CSV = "empty_line", "not_utf8", "bad_csv"
WRONG_COLUMN_COUNT, BAD_JSON, BAD_SHAPE = "wrong_column_count", "bad_json", "bad_shape"
UNKNOWN_COLUMN, MISSING_COLUMN = "unknown_column", "missing_column"
MISSING_VALUE, NOT_A_NUMBER, NOT_FINITE, NOT_TEXT = (
    "missing_value", "not_a_number", "not_finite", "not_text")  # fmt: skip
BATCH_REASONS = (EMPTY_LINE, NOT_UTF8, BAD_CSV, WRONG_COLUMN_COUNT, BAD_JSON, BAD_SHAPE,
                 UNKNOWN_COLUMN, MISSING_COLUMN, MISSING_VALUE, NOT_A_NUMBER, NOT_FINITE,
                 NOT_TEXT)  # fmt: skip
DETAIL_CHARS = 200


def bad_rows_mode() -> str | None:
    """``fail`` or ``errors`` when a transform job set MLOPS_BAD_ROWS; None on an endpoint."""
    value = os.environ.get(BAD_ROWS_ENV, "").strip().lower()
    if not value:
        return None
    if value not in BAD_ROWS_MODES:
        raise ModelLoadError(
            f"{BAD_ROWS_ENV}={value!r} is not one of {', '.join(BAD_ROWS_MODES)}; "
            "fix the transform job's Environment"
        )
    return value


@dataclass(frozen=True)
class BatchRows:
    """A mini-batch after checking: the good lines' features, and each bad line's reason."""

    count: int
    good: np.ndarray  # indexes of the lines in ``features``, ascending
    features: pd.DataFrame  # in feature order
    problems: dict[int, tuple[str, str]]  # line index -> (reason, detail)


def transform_batch(
    model: ServingModel,
    body: bytes | bytearray | str,
    content_type: str | None,
    accept: str | None,
    bad_rows: str,
) -> tuple[str, str]:
    """One mini-batch: one answer line per input line (``errors``), or a refusal naming the
    first bad line (``fail``)."""
    media_type = _media_type(content_type)
    if media_type not in BATCH_CONTENT_TYPES:
        raise RequestError(
            415,
            f"Content-Type {content_type or '(missing)'} is not supported by a batch "
            f"transform; use {' or '.join(BATCH_CONTENT_TYPES)}",
        )
    answer = _media_type(accept)
    # JSON too: the image's worker puts its default Accept (application/json) on a request
    # without one. The answer is always in the input's format, which the join needs.
    if answer not in ("", "*/*", JSON, media_type):
        raise RequestError(
            406, f"Accept {accept} is not supported for {media_type} input; use {media_type}"
        )
    rows = check_batch(batch_lines(body), media_type, model)
    if bad_rows == "fail" and rows.problems:
        line = min(rows.problems)
        reason, detail = rows.problems[line]
        raise RequestError(
            400,
            f"line {line + 1} of the mini-batch: {detail} ({reason}); "
            f"{BAD_ROWS_ENV}=fail refuses the mini-batch",
        )
    positive = model.pipeline.predict_proba(rows.features)[:, 1] if len(rows.good) else np.empty(0)
    render = _render_csv_lines if media_type == CSV else _render_json_lines
    return render(rows, Prediction(positive, model)), media_type


def batch_lines(body: bytes | bytearray | str) -> list[str | None]:
    """The mini-batch's records, one per line (None: not UTF-8); a final newline ends the
    last record rather than starting an empty one."""
    if isinstance(body, bytes | bytearray):
        try:
            text: str | None = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is None:
            raw = bytes(body).split(b"\n")
            if raw and raw[-1] == b"":
                raw.pop()
            return [_decoded(line.removesuffix(b"\r")) for line in raw]
    else:
        text = body
    lines: list[str | None] = list(text.lstrip("\ufeff").split("\n"))
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        assert line is not None
        if line.endswith("\r"):
            lines[i] = line = line[:-1]
        if REPLACEMENT_CHARACTER in line and isinstance(body, str):
            lines[i] = None  # the Flask worker's stand-in for bytes that were not UTF-8
    return lines


def _decoded(line: bytes) -> str | None:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return None


def check_batch(lines: list[str | None], media_type: str, model: ServingModel) -> BatchRows:
    if media_type == CSV and (frame := _clean_csv_batch(lines, model)) is not None:
        return BatchRows(len(lines), np.arange(len(lines)), frame, {})
    problems: dict[int, tuple[str, str]] = {}
    good: list[int] = []
    cells: list[Any] = []
    reader = _csv_cells if media_type == CSV else _json_cells
    for index, line in enumerate(lines):
        if line is None:
            problems[index] = (NOT_UTF8, "the line is not UTF-8 text")
        elif not line.strip():
            problems[index] = (EMPTY_LINE, "the line has no values")
        else:
            found = reader(line, model)
            if isinstance(found, tuple):
                problems[index] = found
            else:
                good.append(index)
                cells.append(found)
    columns: dict[str, np.ndarray] = {}
    valid = np.ones(len(good), dtype=bool)
    by_column = list(zip(*cells, strict=True)) if cells else [() for _ in model.feature_order]
    for name, values in zip(model.feature_order, by_column, strict=True):
        if name in model.categorical:
            columns[name] = _batch_text(name, values, valid, problems, good)
        else:
            columns[name] = _batch_numbers(name, values, valid, problems, good)
    kept = np.asarray(good, dtype=np.int64)[valid]
    frame = pd.DataFrame({name: column[valid] for name, column in columns.items()})
    return BatchRows(len(lines), kept, frame, problems)


def _clean_csv_batch(lines: list[str | None], model: ServingModel) -> pd.DataFrame | None:
    """The features of a mini-batch without a bad line, parsed by pandas in C as the
    endpoint parses CSV; None when any line may be bad, for the line-by-line checks to name.
    (pandas skips blank lines and pads short rows with NaN: both fail a check below.)"""
    if not lines or any(line is None or '"' in line for line in lines):
        return None
    text = "\n".join(lines)  # type: ignore[arg-type]  # no None, checked above
    try:
        frame = pd.read_csv(
            io.StringIO(text), header=None, names=list(model.feature_order), na_filter=False,
            skipinitialspace=True, dtype=dict.fromkeys(model.categorical, str),
        )  # fmt: skip
    except (pd.errors.ParserError, ValueError):
        return None
    if len(frame) != len(lines):
        return None
    for name in model.feature_order:
        values = frame[name].to_numpy()
        if name in model.categorical:
            if pd.api.types.infer_dtype(values, skipna=False) != "string" or (values == "").any():
                return None
        elif values.dtype.kind not in "iuf" or not np.isfinite(values).all():
            return None
    return frame


def _csv_cells(line: str, model: ServingModel) -> list[str] | tuple[str, str]:
    if '"' in line:
        try:
            cells = next(csv.reader([line], skipinitialspace=True))
        except csv.Error as exc:
            return BAD_CSV, f"the line is not valid CSV: {exc}"
    else:
        cells = line.split(",")
        if " " in line:  # as the endpoint's CSV reader (skipinitialspace)
            cells = [cell.lstrip(" ") for cell in cells]
    width = len(model.feature_order)
    if len(cells) != width:
        return WRONG_COLUMN_COUNT, f"the line has {len(cells)} values; the model takes {width}"
    return cells


def _json_cells(line: str, model: ServingModel) -> list[Any] | tuple[str, str]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return BAD_JSON, f"the line is not JSON: {exc.msg} at column {exc.colno}"
    except (ValueError, RecursionError):
        return BAD_JSON, "the line is not JSON (an integer too long, or nested too deep)"
    if not isinstance(record, dict):
        return BAD_SHAPE, f"expected a JSON object of feature values, got {_shown(record)}"
    if len(record) != len(model.feature_order) or not all(
        name in record for name in model.feature_order
    ):
        known = set(model.feature_order)
        unknown = [str(key) for key in record if key not in known]
        if unknown:
            return UNKNOWN_COLUMN, f"unknown column(s) {_shown(', '.join(unknown))}"
        missing = [name for name in model.feature_order if name not in record]
        return MISSING_COLUMN, f"missing column(s) {', '.join(missing)}"
    return [record[name] for name in model.feature_order]


def _batch_text(
    name: str,
    values: tuple[Any, ...],
    valid: np.ndarray,
    problems: dict[int, tuple[str, str]],
    lines: list[int],
) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    ok = np.fromiter((isinstance(v, str) and v != "" for v in values), bool, len(values))
    for row in np.flatnonzero(~ok & valid):
        value = values[row]
        if value is None or value == "":
            problem = (MISSING_VALUE, f"column {name} is empty")
        else:
            problem = (NOT_TEXT, f"column {name}: expected text, got {_shown(value)}")
        problems[lines[row]] = problem
    valid &= ok
    return column


def _batch_numbers(
    name: str,
    values: tuple[Any, ...],
    valid: np.ndarray,
    problems: dict[int, tuple[str, str]],
    lines: list[int],
) -> np.ndarray:
    try:
        if values and isinstance(values[0], str):
            # Text from CSV, converted in C; anything unparsable falls to the loop below.
            numbers = np.array(values, dtype=np.str_).astype(np.float64)
        else:
            numbers = _json_numbers(values)
        ok = np.isfinite(numbers)
    except (ValueError, TypeError, OverflowError):
        numbers = np.full(len(values), np.nan)
        ok = np.zeros(len(values), dtype=bool)
        for at, value in enumerate(values):
            number = _batch_number(value)
            if number is not None:
                numbers[at], ok[at] = number, math.isfinite(number)
    for row in np.flatnonzero(~ok & valid):
        problems[lines[row]] = _number_problem(name, values[row])
    valid &= ok
    return numbers


def _json_numbers(values: tuple[Any, ...]) -> np.ndarray:
    if not all(type(v) is int or type(v) is float for v in values):
        raise TypeError("not all numbers")  # strings, nulls, booleans: the slow path
    return np.array(values, dtype=np.float64)


def _batch_number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (ValueError, TypeError, OverflowError):
        return None


def _number_problem(name: str, value: Any) -> tuple[str, str]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return MISSING_VALUE, f"column {name} is empty"
    number = _batch_number(value)
    if number is None:
        return NOT_A_NUMBER, f"column {name}: {_shown(value)} is not a number"
    return NOT_FINITE, f"column {name}: {number} is not a finite number"


def _safe_detail(text: str) -> str:
    """A detail fit for the CSV error column: no delimiter, quote or line break."""
    cleaned = text.replace(",", ";").replace('"', "'").replace("\r", " ").replace("\n", " ")
    return cleaned[:DETAIL_CHARS]


def _render_csv_lines(rows: BatchRows, prediction: Prediction) -> str:
    positive = prediction.positive_probability.tolist()
    labels = prediction.labels.tolist()
    scored = [f"{label},{1 - p:.6f},{p:.6f},," for label, p in zip(labels, positive, strict=True)]
    if not rows.problems:
        return "\n".join(scored) + "\n" if scored else ""
    out = [""] * rows.count
    for index, line in zip(rows.good.tolist(), scored, strict=True):
        out[index] = line
    for index, (reason, detail) in rows.problems.items():
        out[index] = f",,,{reason},{_safe_detail(detail)}"
    return "\n".join(out) + "\n"


def _render_json_lines(rows: BatchRows, prediction: Prediction) -> str:
    model = prediction.model
    negative, positive_key = json.dumps(model.negative_label), json.dumps(model.positive_label)
    label_json = {model.negative_label: negative, model.positive_label: positive_key}
    scored = [
        f'{{"label":{label_json[label]},"probabilities":'
        f'{{{negative}:{1 - p:.6f},{positive_key}:{p:.6f}}},"error":null}}'
        for label, p in zip(
            prediction.labels.tolist(), prediction.positive_probability.tolist(), strict=True
        )
    ]
    out = [""] * rows.count
    for index, line in zip(rows.good.tolist(), scored, strict=True):
        out[index] = line
    for index, (reason, detail) in rows.problems.items():
        problem = {"label": None, "probabilities": None, "error": reason, "detail": detail}
        out[index] = json.dumps(problem)
    return "\n".join(out) + "\n" if out else ""


# --- the multi-model Transformer's own decoding ------------------------------------------


def _refuse_undecodable_bodies_in_transformer() -> None:
    """Make sagemaker-inference's ``Transformer`` answer a body that is not UTF-8 with 400.

    It decodes text/csv and application/json bodies itself, before any handler function
    runs, and answers the UnicodeDecodeError with a 500. When that Transformer is what loads
    this module (multi-model endpoints), wrap its ``transform`` so such a body is refused
    with the same 400 as everywhere else; every other request goes through untouched. When
    anything else loads this module, nothing is changed.
    """
    toolkit = sys.modules.get("sagemaker_inference.transformer")
    if toolkit is None or getattr(toolkit.Transformer.transform, "_refuses_undecodable", False):
        return
    original = toolkit.Transformer.transform

    def transform(self: Any, data: Any, context: Any) -> Any:
        try:
            body = data[0].get("body")
            headers = context.request_processor[0].get_request_properties()
            content_type = toolkit.utils.retrieve_content_type_header(headers)
        except Exception:  # an odd request: leave it to the toolkit's own handling
            return original(self, data, context)
        if content_type in toolkit.content_types.UTF8_TYPES and isinstance(body, bytes | bytearray):
            try:
                bytes(body).decode("utf-8")
            except UnicodeDecodeError as exc:
                refusal = RequestError(
                    400, f"body is not UTF-8 text (byte {exc.start}); send UTF-8"
                )
                return toolkit.Transformer.handle_error(context, refusal, "")
        return original(self, data, context)

    transform._refuses_undecodable = True  # type: ignore[attr-defined]
    toolkit.Transformer.transform = transform


_refuse_undecodable_bodies_in_transformer()
