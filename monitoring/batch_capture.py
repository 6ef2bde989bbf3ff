"""Read a batch transform's data capture as the monitoring jobs read an endpoint's.

A transform job's DataCaptureConfig does not write capture records: under its
DestinationS3Uri it writes manifests, ``input/yyyy/mm/dd/hh/*.jsonl`` naming the objects the
job read and ``output/...`` the ones it wrote, each a JSON array ``[{"prefix": "s3://.../"},
"a.csv", ...]`` (SageMaker Developer Guide, "Capture data from batch transform job";
inference/batch_contract.py). Model Monitor reads the named input objects in the monitoring
job's dataset format, leaving out the id attribute.

``wrap`` gives the jobs a Store that does the same: ``find_roots`` finds ``<base>/input``
(its years are one level down, like a variant folder's), ``window_files`` lists the hour
folders' manifests, and ``lines`` turns each manifest into one capture record per input line,
its id dropped as the transform's InputFilter drops it, stamped with the manifest's hour (the
job's start).

For drift and attribution the features are all there is to read. For quality
(``predictions=True``) each input file is paired, line by line, with the ``<name>.out`` the
transform wrote for it ("Use Batch Transform": one output line per input line, in order;
batch_contract's CSV_OUTPUT_COLUMNS / JSON output keys behind the id the OutputFilter keeps),
and the record carries the answer as ``endpointOutput`` and the record's own id as
``eventMetadata.inferenceId``, so ground truth keyed by that id joins. A line that cannot be
paired (no output file, fewer or more output lines, another id) gets an ``endpointOutput``
without data, which the quality job counts as ``missing_output``; a bad row's empty answer
counts as ``empty_output``. Either way it is never joined; ``problems`` tallies the cause.
"""

from __future__ import annotations

import base64
import csv
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inference import batch_contract as contract
from monitoring.store import YEAR, CaptureNotFoundError, LocalStore, S3Store, Store, s3_client
from training import uri

JSON = "application/json"

# Why a line was not paired with an answer (keys of BatchCaptureStore.problems); a bad row
# is counted as ROW_ERROR + ":" + the handler's reason.
OUTPUT_MISSING = "output_missing"  # no .out file listed, or listed but absent
OUTPUT_AMBIGUOUS = "output_ambiguous"  # two output manifests of the hour name it
OUTPUT_SHORT = "output_short"  # the input line has no output line (a truncated .out)
OUTPUT_LONG = "output_long"  # an output line past the input's last line
ID_MISMATCH = "id_mismatch"  # the output line is of another record
BAD_OUTPUT_LINE = "bad_output_line"  # not the handler's answer shape
ROW_ERROR = "row_error"


def wrap(
    store: Store,
    base: str,
    predictions: bool = False,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> Store:
    """``store``, reading ``base`` as batch capture if that is what it holds.

    ``predictions``: pair inputs with outputs (the quality job). ``region``/``endpoint_url``:
    the S3 client for a local ``base`` whose manifests name s3:// objects (a shard's download).
    """
    if isinstance(store, BatchCaptureStore):
        return store
    children = store.children(base)
    if contract.CAPTURE_INPUT not in children:
        return store
    if not set(children) <= {contract.CAPTURE_INPUT, contract.CAPTURE_OUTPUT}:
        return store
    years = store.children(store.join(base, contract.CAPTURE_INPUT))
    if not years or not all(YEAR.match(year) for year in years):
        return store
    return BatchCaptureStore(store, base, predictions, region, endpoint_url)


@dataclass(frozen=True)
class BatchCaptureStore:
    inner: Store
    base: str
    predictions: bool = False
    region: str | None = None
    endpoint_url: str | None = None
    problems: Counter[str] = field(default_factory=Counter, compare=False)
    _outputs: dict[str, dict[str, str | None]] = field(default_factory=dict, compare=False)
    _other: dict[str, Store] = field(default_factory=dict, compare=False)

    def children(self, prefix: str) -> list[str]:
        if prefix.rstrip("/") == self.base.rstrip("/"):
            # Only input/ holds the records: one "variant folder" in the reports.
            return [contract.CAPTURE_INPUT]
        return self.inner.children(prefix)

    def join(self, prefix: str, child: str) -> str:
        return self.inner.join(prefix, child)

    def files(self, prefix: str) -> list[str]:
        if _below(prefix, self.inner.join(self.base, contract.CAPTURE_OUTPUT)):
            return []
        return self.inner.files(prefix)

    def lines(self, name: str) -> Iterator[bytes]:
        inputs = self.inner.join(self.base, contract.CAPTURE_INPUT)
        if not _below(name, inputs):
            yield from self.inner.lines(name)
            return
        when = _hour(name, inputs)
        prefix, listed = _manifest(b"".join(self.inner.lines(name)), name)
        outputs = self._output_map(name, inputs) if self.predictions else {}
        for relative in listed:
            source = _locate(prefix, relative)
            read = self._open(source)
            if read is None:
                raise CaptureNotFoundError(f"{source}, listed in {name}, does not exist")
            if not self.predictions:
                for number, line in enumerate(read, start=1):
                    yield capture_record(line.rstrip(b"\r\n"), when, f"{relative}:{number}")
                continue
            yield from self._paired(read, relative, outputs, when)

    # --- quality: inputs paired with outputs ------------------------------------------------

    def _paired(
        self,
        read: Iterator[bytes],
        relative: str,
        outputs: dict[str, str | None],
        when: str,
    ) -> Iterator[bytes]:
        out_name = relative + contract.OUTPUT_SUFFIX
        answers: Iterator[bytes] | None = None
        reason = OUTPUT_MISSING
        if out_name in outputs:
            source = outputs[out_name]
            if source is None:
                reason = OUTPUT_AMBIGUOUS
            else:
                answers = self._open(source)
        if answers is None:
            for number, line in enumerate(read, start=1):
                self.problems[reason] += 1
                yield _unpaired(line.rstrip(b"\r\n"), when, f"{relative}:{number}")
            return
        pairs = itertools.zip_longest(read, answers)
        for number, (line, answer) in enumerate(pairs, start=1):
            event_id = f"{relative}:{number}"
            if line is None:
                self.problems[OUTPUT_LONG] += 1
                yield _unpaired(b"", when, event_id)
                continue
            line = line.rstrip(b"\r\n")
            if answer is None:
                self.problems[OUTPUT_SHORT] += 1
                yield _unpaired(line, when, event_id)
                continue
            record_id, payload = _input(line)
            answered = _answer(answer.rstrip(b"\r\n"))
            if isinstance(answered, str):
                self.problems[answered] += 1
                yield _unpaired(line, when, event_id)
            elif answered.record_id != record_id:
                self.problems[ID_MISMATCH] += 1
                yield _unpaired(line, when, event_id)
            else:
                if answered.error is not None:
                    self.problems[f"{ROW_ERROR}:{answered.error}"] += 1
                yield _record(payload, answered.output, when, event_id, _key(record_id))

    def _output_map(self, name: str, inputs: str) -> dict[str, str | None]:
        """Output file name -> its location, from the output manifests of ``name``'s hour:
        the one of the same name if there is one (the local runner's), else all of them.
        A name two manifests give different locations maps to None."""
        parts = name[len(inputs.rstrip("/")) + 1 :].split("/")
        hour, file_name = parts[:4], parts[-1]
        folder = self.inner.join(self.base, contract.CAPTURE_OUTPUT)
        for part in hour:
            folder = self.inner.join(folder, part)
        cached = self._outputs.get(f"{folder}#{file_name}")
        if cached is not None:
            return cached
        manifests = self.inner.files(folder)
        same = [m for m in manifests if m.rsplit("/", 1)[-1] == file_name]
        found: dict[str, str | None] = {}
        for manifest in same or manifests:
            prefix, listed = _manifest(b"".join(self.inner.lines(manifest)), manifest)
            for relative in listed:
                source = _locate(prefix, relative)
                found[relative] = source if found.get(relative, source) == source else None
        self._outputs[f"{folder}#{file_name}"] = found
        return found

    def _open(self, source: str) -> Iterator[bytes] | None:
        """``source``'s lines, or None if it does not exist (an S3 NoSuchKey too)."""
        lines = self._store_for(source).lines(source)
        try:
            first = next(lines)
        except StopIteration:
            return iter(())
        except FileNotFoundError:
            return None
        except Exception as exc:  # botocore is imported only where S3 is read
            if _no_such_key(exc):
                return None
            raise
        return itertools.chain([first], lines)

    def _store_for(self, source: str) -> Store:
        """The inner store, or one for the other scheme: a manifest downloaded to a local
        folder still names s3:// objects."""
        if uri.is_s3(source) == uri.is_s3(self.base):
            return self.inner
        scheme = "s3" if uri.is_s3(source) else "local"
        if scheme not in self._other:
            self._other[scheme] = (
                S3Store(s3_client(self.region, self.endpoint_url))
                if scheme == "s3"
                else LocalStore()
            )
        return self._other[scheme]


def _no_such_key(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return False
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("NoSuchKey", "404", "NotFound")


def _below(name: str, folder: str) -> bool:
    return name.rstrip("/").startswith(folder.rstrip("/") + "/")


def _locate(prefix: str, relative: str) -> str:
    return uri.join(prefix, relative) if uri.is_s3(prefix) else str(Path(prefix, relative))


def _hour(name: str, inputs: str) -> str:
    """The manifest's hour folder as an inference time: ``yyyy-mm-ddThh:00:00Z``."""
    parts = name[len(inputs.rstrip("/")) + 1 :].split("/")
    if len(parts) < 5 or not all(p.isdigit() for p in parts[:4]):
        raise CaptureNotFoundError(f"{name} is not below an input/yyyy/mm/dd/hh/ folder")
    year, month, day, hour = parts[:4]
    return f"{year}-{month}-{day}T{hour}:00:00Z"


def _manifest(data: bytes, name: str) -> tuple[str, list[str]]:
    try:
        document = json.loads(data)
        prefix = document[0][contract.MANIFEST_PREFIX_KEY]
        listed = document[1:]
    except (ValueError, KeyError, IndexError, TypeError):
        raise CaptureNotFoundError(f"{name} is not a batch capture manifest") from None
    if not isinstance(prefix, str) or not all(isinstance(item, str) for item in listed):
        raise CaptureNotFoundError(f"{name} is not a batch capture manifest")
    return prefix, listed


# --- one record -----------------------------------------------------------------------------


def capture_record(line: bytes, when: str, event_id: str) -> bytes:
    """One input line as an endpoint capture record of the features alone (InputFilter).

    Lines the filter cannot read go in as they are, for the drift job's parser to count
    under its malformed reasons: nothing is skipped unseen.
    """
    return _record(_input(line)[1], None, when, event_id, None)


def _record(
    payload: dict[str, Any],
    output: dict[str, Any] | None,
    when: str,
    event_id: str,
    inference_id: str | None,
) -> bytes:
    data: dict[str, Any] = {"endpointInput": {"mode": "INPUT", **payload}}
    if output is not None:
        data["endpointOutput"] = {"mode": "OUTPUT", **output}
    metadata = {"eventId": event_id, "inferenceTime": when}
    if inference_id:
        metadata["inferenceId"] = inference_id
    record = {"captureData": data, "eventMetadata": metadata, "eventVersion": "0"}
    return json.dumps(record).encode() + b"\n"


def _unpaired(line: bytes, when: str, event_id: str) -> bytes:
    # An answer without data: the quality job counts it as missing_output, never joins it.
    output = {"observedContentType": contract.CSV, "encoding": "CSV"}
    return _record(_input(line)[1], output, when, event_id, None)


def _key(record_id: Any) -> str | None:
    """The record's id as a join key (ground truth's inference ids are strings)."""
    if record_id is None or record_id is _NO_ID:
        return None
    return record_id if isinstance(record_id, str) else json.dumps(record_id)


_NO_ID: Any = object()


def _input(line: bytes) -> tuple[Any, dict[str, Any]]:
    """(record id, endpointInput fields) of one input line, as the InputFilter splits it."""
    if line.lstrip().startswith(b"{"):
        return _json_input(line)
    return _csv_input(line)


def _csv_input(line: bytes) -> tuple[Any, dict[str, Any]]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        data = base64.b64encode(line).decode()
        return _NO_ID, {"observedContentType": contract.CSV, "data": data, "encoding": "BASE64"}
    if text.startswith('"'):
        try:
            cells = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            cells = ["", text]
        record_id: Any = cells[0] if cells else ""
        features = ",".join(cells[1:])
    else:
        record_id, _, features = text.partition(",")
    return record_id, {"observedContentType": contract.CSV, "data": features, "encoding": "CSV"}


def _json_input(line: bytes) -> tuple[Any, dict[str, Any]]:
    text = line.decode("utf-8", "replace")
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict) and contract.FEATURES_FIELD in document:
        data = json.dumps({"records": [document[contract.FEATURES_FIELD]]})
        payload = {"observedContentType": JSON, "data": data, "encoding": "JSON"}
        return document.get(contract.ID_FIELD, _NO_ID), payload
    return _NO_ID, {"observedContentType": contract.JSON_LINES, "data": text, "encoding": "JSON"}


@dataclass(frozen=True)
class _Answer:
    record_id: Any
    output: dict[str, Any]  # endpointOutput's fields
    error: str | None  # the handler's reason for a bad row


def _answer(line: bytes) -> _Answer | str:
    """One output line (the id the OutputFilter kept, then the handler's answer), or the
    problem with it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return BAD_OUTPUT_LINE
    if text.lstrip().startswith("{"):
        return _json_answer(text)
    return _csv_answer(text)


def _csv_answer(text: str) -> _Answer | str:
    if '"' in text:
        try:
            cells = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            return BAD_OUTPUT_LINE
    else:
        cells = text.split(",")
    # id, then CSV_OUTPUT_COLUMNS: label, probability_negative, probability_positive, error,
    # detail
    if len(cells) != 1 + len(contract.CSV_OUTPUT_COLUMNS):
        return BAD_OUTPUT_LINE
    record_id, label, negative, positive, error, _detail = cells
    if error or not positive:
        empty = {"observedContentType": contract.CSV, "data": "", "encoding": "CSV"}
        return _Answer(record_id, empty, error or "empty")
    # The handler's endpoint answer (monitoring/predictions.py reads column 3).
    data = f"{label},{negative},{positive}"
    return _Answer(record_id, {"observedContentType": contract.CSV, "data": data,
                               "encoding": "CSV"}, None)  # fmt: skip


def _json_answer(text: str) -> _Answer | str:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return BAD_OUTPUT_LINE
    if not isinstance(document, dict):
        return BAD_OUTPUT_LINE
    answer = document.get(contract.JOIN_FIELD)
    if not isinstance(answer, dict):
        return BAD_OUTPUT_LINE
    record_id = document.get(contract.ID_FIELD, _NO_ID)
    error = answer.get("error")
    if error or not isinstance(answer.get("probabilities"), dict):
        empty = {"observedContentType": JSON, "data": '{"predictions": []}', "encoding": "JSON"}
        return _Answer(record_id, empty, str(error or "empty"))
    prediction = {"label": answer.get("label"), "probabilities": answer["probabilities"]}
    data = json.dumps({"predictions": [prediction]})
    return _Answer(record_id, {"observedContentType": JSON, "data": data, "encoding": "JSON"}, None)
