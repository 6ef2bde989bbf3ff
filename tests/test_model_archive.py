"""The handler inside SageMaker's real serving toolkit, and the model.tar.gz it ships in.

sagemaker-inference 1.5.5 is the toolkit in the scikit-learn 1.9-0 image; its Transformer
is what the container's model server calls per request. Only the model server (Java MMS)
is replaced, by a small context object with the same methods.
"""

from __future__ import annotations

import json
import sys
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sagemaker_inference.transformer import Transformer

from inference.packaging import HANDLER_ARCNAME, build_model_archive, extract_model_archive


class _RequestProcessor:
    def __init__(self, headers: dict[str, str]) -> None:
        self._headers = headers

    def get_request_properties(self) -> dict[str, str]:
        return self._headers


class MmsContext:
    """The parts of MMS's Context that the Transformer uses."""

    def __init__(self, model_dir: Path, headers: dict[str, str]) -> None:
        self.system_properties = {"model_dir": str(model_dir)}
        self.request_processor = [_RequestProcessor(headers)]
        self.status: tuple[int, str] | None = None
        self.content_type: str | None = None

    def set_response_status(self, code: int, phrase: str) -> None:
        self.status = (code, phrase)

    def set_response_content_type(self, index: int, content_type: str) -> None:
        self.content_type = content_type


@pytest.fixture
def opt_ml_model(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """/opt/ml/model as the container unpacks model.tar.gz, with code/ importable."""
    archive = build_model_archive(model_dir, tmp_path / "model.tar.gz")
    unpacked = extract_model_archive(archive.path, tmp_path / "opt" / "ml" / "model")
    monkeypatch.setenv("SAGEMAKER_PROGRAM", "inference.py")
    monkeypatch.syspath_prepend(str(unpacked / "code"))
    # The kit's own `inference` package would shadow code/inference.py; the container has none.
    for name in [m for m in sys.modules if m == "inference" or m.startswith("inference.")]:
        monkeypatch.delitem(sys.modules, name)
    return unpacked


def _invoke(
    transformer: Transformer, model_dir: Path, body: bytes, headers: dict[str, str]
) -> tuple[Any, MmsContext]:
    context = MmsContext(model_dir, headers)
    return transformer.transform([{"body": body}], context), context


def test_toolkit_serves_predictions_through_the_handler(
    opt_ml_model: Path, test_rows: pd.DataFrame
) -> None:
    transformer = Transformer()
    body = test_rows.iloc[:3].to_csv(index=False, header=False).encode()

    (response,), context = _invoke(
        transformer, opt_ml_model, body, {"Content-Type": "text/csv", "Accept": "application/json"}
    )

    assert context.status is None  # success leaves the status alone (MMS sends 200)
    assert context.content_type == "application/json"
    assert len(json.loads(response)["predictions"]) == 3
    assert sys.modules["inference"].__file__ == str(opt_ml_model / "code" / "inference.py")


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"", {"Content-Type": "text/csv"}, 400, "request body is empty"),
        (b"1,2,3", {"Content-Type": "text/csv"}, 400, "each row must have 19 values"),
        (b"<x/>", {"Content-Type": "application/xml"}, 415, "is not supported"),
        (b'{"records": [}', {"Content-Type": "application/json"}, 400, "body is not valid JSON"),
        (None, {"Content-Type": "text/csv", "Accept": "image/png"}, 406, "Accept image/png"),
    ],
)
def test_toolkit_turns_request_errors_into_4xx(
    opt_ml_model: Path,
    test_rows: pd.DataFrame,
    body: bytes | None,
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    body = (
        body if body is not None else test_rows.iloc[:1].to_csv(index=False, header=False).encode()
    )
    (response,), context = _invoke(Transformer(), opt_ml_model, body, headers)
    assert context.status is not None
    assert context.status[0] == status
    assert says in context.status[1]
    assert says in response


def test_toolkit_defaults_accept_to_json(opt_ml_model: Path, test_rows: pd.DataFrame) -> None:
    body = test_rows.iloc[:1].to_csv(index=False, header=False).encode()
    (response,), context = _invoke(
        Transformer(), opt_ml_model, body, {"content-type": "text/csv", "Accept": "*/*"}
    )
    assert context.content_type == "application/json"
    assert "predictions" in json.loads(response)


def test_model_archive_is_deterministic_with_handler_under_code(
    model_dir: Path, tmp_path: Path
) -> None:
    first = build_model_archive(model_dir, tmp_path / "a.tar.gz")
    second = build_model_archive(model_dir, tmp_path / "b.tar.gz")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.members == ("baseline.json", HANDLER_ARCNAME, "manifest.json", "model.joblib")
    with tarfile.open(first.path, "r:gz") as tar:
        assert {m.mtime for m in tar.getmembers()} == {315532800}


def test_model_archive_requires_a_trained_model(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError, match=r"lacks model\.joblib, manifest\.json, baseline\.json"
    ):
        build_model_archive(tmp_path, tmp_path / "model.tar.gz")
