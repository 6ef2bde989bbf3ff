"""The fast capture parser (orjson, capture_fast, pyarrow batches) gives exactly the rows,
reasons and counts of the reference parser (json, one cell at a time), on valid records of
every encoding and on malformed ones of every reason, including the inputs where orjson and
json disagree."""

from __future__ import annotations

import base64
import json
import random
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inference.capture import capture_record
from monitoring import capture, capture_arrow, drift, json_lines
from monitoring.baseline import Baseline, CategoricalBaseline, NumericBaseline
from monitoring.capture import Counts, RecordParser, Row
from monitoring.capture_arrow import Block, CsvBatchReader
from monitoring.capture_fast import Columns
from monitoring.store import LocalStore

END = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=6)
WHEN = END - timedelta(hours=1)
ORDER = ("plan", "minutes", "state", "calls", "charge")  # categories and numbers interleaved


def numeric(name: str) -> NumericBaseline:
    return NumericBaseline(name, (0.0, 10.0, 100.0, 1000.0), (0.3, 0.4, 0.3), ((0, 0), (1, 1e3)))


BASELINE = Baseline(
    source="test",
    rows=100,
    feature_order=ORDER,
    features={
        "plan": CategoricalBaseline("plan", {"yes": 0.5, "no": 0.5}),
        "minutes": numeric("minutes"),
        "state": CategoricalBaseline("state", {"CA": 0.5, "NY": 0.5}),
        "calls": numeric("calls"),
        "charge": numeric("charge"),
    },
)


def line(body: str | bytes, content_type: str = "text/csv", when: datetime = WHEN) -> bytes:
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    record = capture_record(
        request_body=raw,
        request_content_type=content_type,
        response_body=b"0.9",
        response_content_type="text/csv",
        when=when,
        event_id="e",
    )
    return json.dumps(record).encode()


def raw_line(data: Any, encoding: Any = "CSV", content_type: Any = "text/csv") -> bytes:
    """A capture line with exactly these endpointInput fields (json.dumps escapes them)."""
    endpoint_input = {"observedContentType": content_type, "data": data, "encoding": encoding}
    record = {
        "captureData": {"endpointInput": endpoint_input},
        "eventMetadata": {"inferenceTime": WHEN.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }
    return json.dumps(record).encode()


def base64_line(body: str) -> bytes:
    return raw_line(base64.b64encode(body.encode()).decode(), "BASE64")


def instances(*rows: list[Any]) -> str:
    return json.dumps({"instances": list(rows)})


GOOD = "yes,12.5,CA,3,1.25"


JSON, JSONL = "application/json", "application/jsonlines"
NAMED = ["no", 4, "NY", 5, 6]


def valid_lines() -> list[bytes]:
    return [
        line(GOOD),
        line(GOOD + "\n"),
        line("no,7,NY,1,0.5\nyes,8,CA,2,0.75\n"),
        line("no,1e2,NY,-1,+.5\n\nyes,8.,CA,2,1_0"),  # blank line, float() spellings
        line("state,charge,calls,minutes,plan\nNY,2,1,7.5,no"),  # a header, its own order
        line(" yes , 12.5 ,CA,3,1.25\r\n"),  # spaces and CRLF are stripped
        line('"yes","12.5","C,A",3,1.25'),  # quoted
        line("\ufeffyes,1,CA,2,3"),  # BOM
        line("no,1,CA,2,3\nyes,1,plan,2,3"),  # a name as a value after the first line
        base64_line("no,3,CA,4,5\nno,6,NY,7,8"),
        line(instances(["yes", 1, "CA", 2.5, 3]), "application/json"),
        line(instances(["yes", "1", "CA", 2, 3]), "application/json"),  # numbers as text
        line(json.dumps({"records": [dict(zip(ORDER, NAMED, strict=True))]}), JSONL),
        line(instances(["yes", 2**64, "CA", -(2**63) - 1, 1]), JSON),  # orjson: floats
        line(instances(["yes", 1e308, "CA", 5e-324, 0]), "application/json; charset=utf-8"),
        raw_line(GOOD, "csv"),  # the encoding's case does not matter
        b'{"captureData": {"endpointInput": {"observedContentType": "text/csv", '
        b'"data": "no,1,CA,2,3", "encoding": "JSON", "data": "yes,9,NY,8,7"}}, '
        b'"eventMetadata": {"inferenceTime": "2026-11-24T11:00:00Z"}}',  # duplicate key
        "\ufeff".encode() + raw_line(GOOD),  # a BOM before the line: json decodes it
        raw_line(GOOD).decode().encode("utf-16"),  # json detects UTF-16
        line(GOOD, when=START),  # the window is half-open: its start is in
    ]


def malformed_lines() -> list[tuple[str, bytes]]:
    """(reason, line) for every reason monitoring/capture.py counts under."""
    deep = "[" * 5000 + "]" * 5000
    huge = '{"instances": [["yes", 1' + "0" * 400 + ', "CA", 2, 3]]}'
    infinite = '{"records": [{"plan": "yes", "minutes": -Infinity, "state": "CA", "calls": 1, '
    infinite += '"charge": 2}]}'
    return [
        ("bad_json", b"{not json"),
        ("bad_json", b'{"captureData": {"endpointInput": '),
        ("bad_json", b'{"a": "\xff"}'),  # not UTF-8
        ("bad_json", deep.encode()),  # deeper than json's recursion limit
        ("bad_json", b"1" + b"0" * 5000),  # more digits than int() converts
        ("missing_fields", b"{}"),
        ("missing_fields", b"[1, 2]"),
        ("missing_fields", b'{"captureData": {}, "eventMetadata": {"inferenceTime": "x"}}'),
        ("missing_fields", raw_line(None)),
        ("missing_fields", raw_line(["a"])),
        ("bad_timestamp", raw_line(GOOD).replace(b"2026-11-24T11:00:00Z", b"yesterday")),
        ("outside_window", line(GOOD, when=END)),
        ("outside_window", line(GOOD, when=START - timedelta(seconds=1))),
        ("bad_base64", raw_line("***not base64***", "BASE64")),
        ("bad_base64", raw_line("ü", "BASE64")),
        ("unknown_encoding", raw_line(GOOD, "GZIP")),
        ("unknown_encoding", raw_line(GOOD, 18446744073709551616)),
        ("unsupported_content_type", line(GOOD, "application/x-npy")),
        ("bad_text", raw_line(base64.b64encode(b"yes,\xff,CA,1,2").decode(), "BASE64")),
        ("empty_body", line("")),
        ("empty_body", line("\n \n")),
        ("empty_body", line("plan,minutes,state,calls,charge\n")),
        ("bad_header", line("plan,minutes,state,calls\nyes,1,CA,2")),
        ("bad_header", line("plan,plan,state,calls,charge\nyes,1,CA,2,3")),
        ("bad_csv", line('yes,"1",CA\r2,3')),  # a bare carriage return in quoted CSV
        ("wrong_column_count", line("yes,1,CA,2")),
        ("wrong_column_count", line(GOOD + "\nyes,1,CA,2,3,4")),
        ("wrong_column_count", line(instances(["yes", 1, "CA", 2]), "application/json")),
        ("wrong_column_count", line(json.dumps({"records": [{"plan": "yes"}]}), JSON)),
        ("bad_json_body", line("{not json", "application/json")),
        ("bad_json_body", line("[" * 5000 + "]" * 5000, "application/json")),
        ("bad_json_shape", line("[]", "application/json")),
        ("bad_json_shape", line('{"instances": []}', "application/json")),
        ("bad_json_shape", line('{"instances": null}', "application/json")),
        ("bad_json_shape", line('{"instances": [[]], "records": []}', "application/json")),
        ("bad_json_shape", line('{"instances": [1]}', "application/json")),
        ("bad_category", line("yes,1,,2,3")),
        ("bad_category", line(GOOD + "\nyes,1,\t,2,3")),
        ("bad_category", line(instances([True, 1, "CA", 2, 3]), "application/json")),
        ("bad_category", line(instances(["yes", 1, "", 2, 3]), "application/json")),
        ("non_numeric", line("yes,lots,CA,2,3")),
        ("non_numeric", line("yes,1,CA,2,NaN")),
        ("non_numeric", line("yes,1,CA,2,infinity")),
        ("non_numeric", line("yes,1,CA,2,1e400")),
        ("non_numeric", line("yes,1,CA,NA,3")),
        ("non_numeric", line(instances(["yes", True, "CA", 2, 3]), "application/json")),
        ("non_numeric", line(instances(["yes", None, "CA", 2, 3]), "application/json")),
        ("non_numeric", line('{"instances": [["yes", NaN, "CA", 2, 3]]}', "application/json")),
        ("non_numeric", line('{"instances": [["yes", 1e999, "CA", 2, 3]]}', "application/json")),
        ("non_numeric", line(huge, JSON)),  # an int float() cannot convert
        ("non_numeric", line(infinite, JSON)),
    ]


def corpus() -> list[bytes]:
    lonely = instances(["yes", 1, "\ud800", 2, 3])  # json.dumps escapes the lone surrogate
    return [
        *valid_lines(),
        *(text for _, text in malformed_lines()),
        line(lonely, "application/json"),  # orjson refuses it; json reads a category
        raw_line("yes,1,\ud800,2,3"),  # in a CSV body: not printable, the reference decides
        b"",
        b"  \n",
    ]


class Collect:
    """A RowSink keeping every row as a Row."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.blocks = 0

    def add_rows(self, columns: Columns) -> None:
        values, names, rows = columns
        c, n = len(BASELINE.categorical), len(BASELINE.numeric)
        for i in range(rows):
            self.rows.append(Row(tuple(names[i * c : i * c + c]), tuple(values[i * n : i * n + n])))

    def add_block(self, block: Block) -> None:
        self.blocks += 1
        for i in range(block.rows):
            names = tuple(column[i] for column in block.categorical)
            self.rows.append(Row(names, tuple(block.numeric[i].tolist())))


def reference(lines: list[bytes]) -> tuple[list[Row], Counts]:
    parser = RecordParser(BASELINE, START, END, fast=False)
    rows = [row for text in lines for row in parser.parse(text)]
    return rows, parser.counts


def streamed(lines: list[bytes]) -> tuple[Collect, Counts]:
    parser = RecordParser(BASELINE, START, END)
    sink = Collect()
    for text in lines:
        parser.parse_into(text, sink)
    parser.finish_into(sink)
    return sink, parser.counts


# --- by hand --------------------------------------------------------------------------------


def test_the_fast_path_reads_each_encoding_as_computed_by_hand() -> None:
    parser = RecordParser(BASELINE, START, END)
    assert parser.parse(line(GOOD)) == [Row(("yes", "CA"), (12.5, 3.0, 1.25))]
    header = line("state,charge,calls,minutes,plan\nNY,2,1,7.5,no")
    assert parser.parse(header) == [Row(("no", "NY"), (7.5, 1.0, 2.0))]
    assert parser.parse(base64_line("no,3,CA,4,5\nno,6,NY,7,8")) == [
        Row(("no", "CA"), (3.0, 4.0, 5.0)),
        Row(("no", "NY"), (6.0, 7.0, 8.0)),
    ]
    records = json.dumps({"records": [{"charge": 6, "calls": 5, "state": "NY", "plan": "no",
                                       "minutes": 4}]})  # fmt: skip
    assert parser.parse(line(records, "application/json")) == [Row(("no", "NY"), (4.0, 5.0, 6.0))]
    assert parser.parse(line(instances(["yes", "1", "CA", 2, 3]), "application/json")) == [
        Row(("yes", "CA"), (1.0, 2.0, 3.0))
    ]
    assert parser.parse(line("yes,1,CA,2,lots")) == []
    assert (parser.counts.used, parser.counts.rows, dict(parser.counts.malformed)) == (
        5,
        6,
        {"non_numeric": 1},
    )


def test_a_batch_of_plain_csv_bodies_goes_through_one_block() -> None:
    if not capture_arrow.HAVE_PYARROW:
        pytest.skip("pyarrow is not installed: the per-record path reads these")
    lines = [line(GOOD), base64_line("no,7,NY,1,0.5\nyes,8,CA,2,0.75\n"), line("no,1e2,NY,-1,+.5")]
    sink, counts = streamed(lines)
    assert sink.blocks == 1
    assert sink.rows == [
        Row(("yes", "CA"), (12.5, 3.0, 1.25)),
        Row(("no", "NY"), (7.0, 1.0, 0.5)),
        Row(("yes", "CA"), (8.0, 2.0, 0.75)),
        Row(("no", "NY"), (100.0, -1.0, 0.5)),
    ]
    assert (counts.lines, counts.in_window, counts.used, counts.rows) == (3, 3, 3, 4)


def test_every_reason_is_counted_once_per_malformed_line() -> None:
    cases = malformed_lines()
    reasons = Counter(reason for reason, _ in cases if reason != "outside_window")
    assert set(reasons) >= {
        "bad_json", "missing_fields", "bad_timestamp", "bad_base64", "unknown_encoding",
        "unsupported_content_type", "bad_text", "empty_body", "bad_header", "bad_csv",
        "wrong_column_count", "bad_json_body", "bad_json_shape", "bad_category", "non_numeric",
    }  # fmt: skip
    for fast in (False, True):
        for reason, text in cases:
            parser = RecordParser(BASELINE, START, END, fast=fast)
            assert parser.parse(text) == [], (reason, text[:80])
            counted = dict(parser.counts.malformed)
            if reason == "outside_window":
                assert (counted, parser.counts.outside_window) == ({}, 1), text[:80]
            else:
                assert counted == {reason: 1}, (fast, reason, text[:80])


# --- fast against reference -----------------------------------------------------------------


def test_each_line_gives_the_reference_rows_and_counts() -> None:
    fast = RecordParser(BASELINE, START, END)
    slow = RecordParser(BASELINE, START, END, fast=False)
    for text in corpus():
        assert fast.parse(text) == slow.parse(text), text[:80]
        assert fast.counts == slow.counts, text[:80]


@pytest.mark.parametrize("batch", [1, 3, 2048])
def test_a_shuffled_stream_gives_the_reference_rows_and_counts(
    batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capture, "BATCH_RECORDS", batch)
    lines = corpus() * 3 + valid_lines() * 20
    random.Random(batch).shuffle(lines)
    rows, counts = reference(lines)
    sink, fast_counts = streamed(lines)
    assert Counter(sink.rows) == Counter(rows)
    assert fast_counts == counts
    # Each valid line 23 times, and the two lone-surrogate categories (valid) 3 times.
    assert counts.used == len(valid_lines()) * 23 + 2 * 3


def test_without_orjson_or_pyarrow_the_results_are_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = corpus() + valid_lines() * 5
    rows, counts = reference(lines)
    monkeypatch.setattr(json_lines, "loads", json.loads)
    monkeypatch.setattr(capture_arrow, "HAVE_PYARROW", False)
    sink, fast_counts = streamed(lines)
    assert (sink.blocks, Counter(sink.rows), fast_counts) == (0, Counter(rows), counts)


def test_the_modules_import_and_fall_back_without_orjson_and_pyarrow() -> None:
    code = (
        "import sys\n"
        "sys.modules.update(orjson=None, pyarrow=None)\n"
        "import json\n"
        "from monitoring import capture_arrow, json_lines\n"
        "assert not json_lines.HAVE_ORJSON and json_lines.loads is json.loads\n"
        "assert not capture_arrow.HAVE_PYARROW\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


# --- where orjson and pyarrow could differ from json and float() ------------------------------


def test_orjson_loads_as_json_does_or_fails_as_json_does() -> None:
    inputs = [
        b"NaN", b"[Infinity, -Infinity]", b"1e400", b'"\\ud800"', b'"\xed\xa0\x80"',
        b'{"a": 1, "a": 2}', "\ufeff".encode() + b"[1]", '{"a": 1}'.encode("utf-16"),
        b"[" * 3000 + b"]" * 3000, b"1" + b"0" * 5000, b'{"a": "\xff"}', b"-0", b"1\x00",
        b'{"a": 1}\n', b" [1, 2.5e-3] ",
    ]  # fmt: skip
    rng = random.Random(5)
    for _ in range(2000):
        mantissa = str(rng.randint(0, 10 ** rng.randint(1, 20)))
        point = rng.randint(0, len(mantissa))
        number = f"{'-' if rng.random() < 0.5 else ''}{mantissa[:point] or '0'}"
        if point < len(mantissa):
            number += "." + mantissa[point:]
        if rng.random() < 0.5:
            number += f"e{rng.randint(-330, 310)}"
        inputs.append(number.encode())
    for text in inputs:
        try:
            expected: Any = json.loads(text)
        except (ValueError, RecursionError) as exc:
            with pytest.raises(type(exc)):
                json_lines.loads(text)
            continue
        value = json_lines.loads(text)
        if isinstance(expected, int) and not -(2**63) <= expected < 2**64:
            assert (type(value), value) == (float, float(expected)), text  # documented
        else:
            assert json.dumps(value) == json.dumps(expected), text


def test_a_number_pyarrow_accepts_float_reads_the_same() -> None:
    if not capture_arrow.HAVE_PYARROW:
        pytest.skip("pyarrow is not installed")
    reader = CsvBatchReader(("c", "x"), ("c",), ("x",))
    rng = random.Random(9)
    alphabet = "0123456789.eE+-_ infa"
    cells = ["1.", ".5", "+1", "1e5", "1.e5", "1_0", "0x10", "1e", "١٢", "-0", "00012"]
    cells += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(1500)]
    for _ in range(300):  # long mantissas and far exponents, where rounding is hardest
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(15, 40)))
        cells.append(f"{digits[:3]}.{digits[3:]}e{rng.randint(-330, 310)}")
    accepted = 0
    for cell in cells:
        block = reader.parse([f"a,{cell}"])
        if block is None:
            continue
        accepted += 1
        assert block.numeric[0, 0] == float(cell), cell
    assert accepted > 50  # the comparison is not vacuous


# --- the drift job ---------------------------------------------------------------------------


def test_the_drift_job_reports_the_same_on_either_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "capture" / "ep" / "AllTraffic" / WHEN.strftime("%Y/%m/%d/%H")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    lines = [
        line(f"{rng.choice(['yes', 'no'])},{rng.integers(0, 900)},{rng.choice(['CA', 'NY', 'TX'])},"
             f"{rng.random() * 50:.3f},{rng.integers(0, 9)}")
        for _ in range(300)
    ] + corpus()  # fmt: skip
    (folder / "part.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    options = drift.Options(
        capture=str(tmp_path / "capture"), baseline="unused", output=str(tmp_path / "out"),
        window_hours=6, end=END, psi_threshold=0.2, ks_alpha=0.01, namespace=None,
        endpoint_name=None, publish=False, region=None, endpoint_url=None,
    )  # fmt: skip
    monkeypatch.setattr(capture_arrow, "BATCH_RECORDS", 64)
    monkeypatch.setattr(capture, "BATCH_RECORDS", 64)
    results = {}
    for fast in (True, False):
        monkeypatch.setattr(capture, "FAST", fast)
        files = LocalStore().files(options.capture)
        counts, state = drift.read(files, LocalStore(), BASELINE, options, 0.0, log=lambda _: None)
        results[fast] = (counts, state.results(options.rule))
    assert results[True] == results[False]
    # The UTF-16 line read back from a file ends in a one-byte newline: no longer UTF-16.
    assert results[True][0].used == 300 + len(valid_lines()) - 1 + 2
