"""Inference handler for SageMaker's scikit-learn container (shipped as code/inference.py).

The image has two serving stacks, and both call ``model_fn(model_dir)`` once per worker,
then ``transform_fn(model, body, content_type, accept)`` per request:

- single-model endpoints (what the kit deploys): sagemaker-containers' Flask worker under
  gunicorn (``SAGEMAKER_SERVING_MODULE=sagemaker_sklearn_container.serving:main``);
- multi-model endpoints: sagemaker-inference's ``Transformer`` behind Multi Model Server.

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
import sys
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
    return _parse_csv(text) if media_type == CSV else _parse_json(text)


def _media_type(header: str | None) -> str:
    return (header or "").split(";")[0].strip().lower()


def _parse_csv(text: str) -> Batch:
    return Batch(csv_text=text.lstrip("\ufeff"))


def _read_csv(text: str, model: ServingModel) -> tuple[pd.DataFrame, bool]:
    first_line = text.split("\n", 1)[0]
    try:
        first = [cell.strip() for cell in next(csv.reader([first_line]), [])]
    except csv.Error as exc:
        # e.g. a bare carriage return inside the first row
        raise RequestError(400, f"the first CSV row is unreadable: {exc}") from None
    # A first row that names any feature is a header; it is checked like JSON records.
    named = bool(set(first) & set(model.feature_order))
    if named and len(set(first)) != len(first):
        # pandas would rename the second copy ("x.1"); say what is actually wrong.
        duplicated = sorted({c for c in first if first.count(c) > 1})
        raise RequestError(400, f"duplicate column(s) {', '.join(duplicated)} in the header row")
    # na_filter=False: no NA guessing ("NA" is a valid text value); an empty numeric field
    # keeps its column as text, and the per-column check reports the row.
    options: dict[str, Any] = {"header": 0 if named else None, "na_filter": False}
    if not named:
        width = first_line.count(",") + 1
        # Rows in feature order get their names now, sparing a relabelling copy later.
        options["names"] = (
            list(model.feature_order) if width == len(model.feature_order) else list(range(width))
        )
    frame = _csv_frame(text, options)
    if any(frame[c].dtype.kind != "O" for c in model.categorical if c in frame.columns):
        # A category that looks like a number ("1", "01") made pandas type its column numeric,
        # which the model's encoder cannot take. Rare, so only then read again with the
        # categories as text (asking for that up front costs every request about 1 ms).
        frame = _csv_frame(text, options | {"dtype": dict.fromkeys(model.categorical, str)})
    return frame, named


def _csv_frame(text: str, options: dict[str, Any]) -> pd.DataFrame:
    try:
        # pandas parses numbers in C here; a column with anything else stays text and is
        # reported with its row by the per-column checks.
        return pd.read_csv(io.StringIO(text), skipinitialspace=True, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise RequestError(400, f"body is not valid CSV: {str(exc).strip()}") from None


def _parse_json(text: str) -> Batch:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RequestError(
            400, f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    shape = (
        'JSON body must be {"instances": [[value, ...], ...]} with values in feature order, '
        'or {"records": [{"column": value, ...}, ...]}'
    )
    if not isinstance(document, dict) or len(document.keys() & {"instances", "records"}) != 1:
        raise RequestError(400, shape)
    if "records" in document:
        records = document["records"]
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            bad = _first_bad(records, dict)
            raise RequestError(400, f"{shape}; records[{bad}] is not an object")
        return Batch(pd.DataFrame.from_records(records) if records else pd.DataFrame(), named=True)
    instances = document["instances"]
    if not isinstance(instances, list) or not all(isinstance(r, list) for r in instances):
        bad = _first_bad(instances, list)
        raise RequestError(400, f"{shape}; instances[{bad}] is not a list of values")
    widths = {len(row) for row in instances}
    if len(widths) > 1:
        lengths = [len(row) for row in instances]
        row = next(i for i, n in enumerate(lengths) if n != lengths[0])
        raise RequestError(
            400, f"row {row + 1} has {lengths[row]} values but row 1 has {lengths[0]}"
        )
    return Batch(pd.DataFrame(instances) if instances else pd.DataFrame(), named=False)


def _first_bad(items: Any, kind: type) -> int | str:
    if not isinstance(items, list):
        return "(not a list)"
    return next(i for i, item in enumerate(items) if not isinstance(item, kind))


def _parse_npy(raw: bytes) -> Batch:
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
        raise RequestError(413, f"the batch has {rows} rows; the limit is {MAX_ROWS} per request")
    expected = model.feature_order
    if named:
        columns = [str(c) for c in frame.columns]
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        unknown = [c for c in columns if c not in expected]
        missing = [c for c in expected if c not in columns]
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
            raise RequestError(
                400,
                f"each row must have {len(expected)} values in this order: {', '.join(expected)}; "
                f"got {frame.shape[1]}",
            )
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
            what = "is missing" if not shown.strip() else f"{shown!r} is not a number"
            raise RequestError(400, f"row {row + 1}, column {name}: {what}; send a finite number")
    else:  # JSON nulls, booleans, nested values
        for row, value in enumerate(column.tolist()):
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise RequestError(
                    400, f"row {row + 1}, column {name}: expected a number, got {value!r}"
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
    if pd.api.types.infer_dtype(column, skipna=False) == "string":
        valid = values != ""
    else:
        valid = np.fromiter((isinstance(v, str) and v != "" for v in values), bool, len(values))
    if not valid.all():
        row = int(np.argmin(valid))
        raise RequestError(
            400,
            f"row {row + 1}, column {name}: expected a non-empty text value, got {values[row]!r}",
        )


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
