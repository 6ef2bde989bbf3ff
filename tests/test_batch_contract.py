"""The batch contract: SageMaker's DataProcessing values, the bad-row policy, the handler's copy."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest

from inference import batch_contract as contract
from inference import handler


def _jsonpath(expression: str, document: Any) -> Any:
    """The JSONPath subset the contract uses, as "Associate Prediction Results with Input
    Records" defines it: ``$[i,j,...]`` (negative from the end), ``$[i:]``, ``$.name`` and
    ``$['a','b']``."""
    if match := re.fullmatch(r"\$\[(-?\d+(?:,-?\d+)*)\]", expression):
        return [document[int(i)] for i in match.group(1).split(",")]
    if match := re.fullmatch(r"\$\[(\d+):\]", expression):
        return document[int(match.group(1)) :]
    if match := re.fullmatch(r"\$\.(\w+)", expression):
        return document[match.group(1)]
    if match := re.fullmatch(r"\$\[('\w+'(?:,'\w+')*)\]", expression):
        names = [n.strip("'") for n in match.group(1).split(",")]
        return {n: document[n] for n in names if n in document}
    raise AssertionError(f"unsupported JSONPath {expression}")


def test_csv_filters_drop_the_id_for_the_model_and_keep_it_with_the_answer() -> None:
    processing = contract.data_processing(contract.CSV)
    row = ["c-7", "KS", "415", "no", "yes", "128", "25.0"]
    assert _jsonpath(processing["InputFilter"], row) == row[1:]
    # JoinSource "Input": the input row, then the handler's columns.
    answer = ["no", "0.900000", "0.100000", "", ""]
    joined = row + answer
    assert _jsonpath(processing["OutputFilter"], joined) == ["c-7", *answer]
    assert len(answer) == len(contract.CSV_OUTPUT_COLUMNS)
    assert processing["JoinSource"] == "Input"


def test_json_lines_filters_select_the_features_and_keep_id_and_output() -> None:
    processing = contract.data_processing(contract.JSON_LINES)
    record = {"id": 7, "features": {"state": "KS"}, "note": "dropped"}
    assert _jsonpath(processing["InputFilter"], record) == {"state": "KS"}
    joined = record | {contract.JOIN_FIELD: {"label": "no"}}
    assert _jsonpath(processing["OutputFilter"], joined) == {
        "id": 7,
        "SageMakerOutput": {"label": "no"},
    }


def test_unknown_content_types_are_refused() -> None:
    with pytest.raises(ValueError, match="text/plain"):
        contract.data_processing("text/plain")
    assert contract.accept(contract.JSON_LINES) == contract.JSON_LINES


def test_the_values_are_valid_in_botocores_sagemaker_model() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    request = model.operation_model("CreateTransformJob").input_shape
    assert {"DataProcessing", "BatchStrategy", "MaxPayloadInMB", "Environment",
            "DataCaptureConfig"} <= set(request.members)  # fmt: skip
    processing = request.members["DataProcessing"]
    for content_type in contract.CONTENT_TYPES:
        assert set(contract.data_processing(content_type)) <= set(processing.members)
    assert contract.JOIN_SOURCE in processing.members["JoinSource"].enum
    assert contract.BATCH_STRATEGY in request.members["BatchStrategy"].enum
    split = request.members["TransformInput"].members["SplitType"]
    assert contract.SPLIT_TYPE in split.enum
    assemble = request.members["TransformOutput"].members["AssembleWith"]
    assert contract.ASSEMBLE_WITH in assemble.enum
    # botocore models the floor only; the 100 MB ceiling is the API reference's.
    assert request.members["MaxPayloadInMB"].metadata["min"] == 0
    capture = request.members["DataCaptureConfig"]
    assert {"DestinationS3Uri", "KmsKeyId", "GenerateInferenceId"} == set(capture.members)


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        (None, None),
        ("", None),
        ("fail", contract.BadRows.FAIL),
        (" Errors", contract.BadRows.ERRORS),
    ],
)
def test_the_bad_row_mode_comes_from_the_environment_value(
    value: str | None, mode: contract.BadRows | None
) -> None:
    assert contract.bad_rows_mode(value) == mode


def test_a_wrong_bad_row_mode_is_named() -> None:
    with pytest.raises(ValueError, match="MLOPS_BAD_ROWS='skip' is not one of fail, errors"):
        contract.bad_rows_mode("skip")


def test_a_detail_never_breaks_the_csv_row() -> None:
    assert contract.safe_detail('a, "b"\nc\r') == "a; 'b' c "
    assert len(contract.safe_detail("x" * 500)) == 200


def test_the_handler_ships_the_same_contract() -> None:
    # code/inference.py travels alone, so it repeats the contract; they must not drift apart.
    assert handler.BAD_ROWS_ENV == contract.BAD_ROWS_ENV
    assert tuple(m.value for m in contract.BadRows) == handler.BAD_ROWS_MODES
    assert handler.BATCH_CONTENT_TYPES == contract.CONTENT_TYPES
    assert handler.BATCH_REASONS == contract.REASONS
    assert handler._safe_detail('a,"b"\n') == contract.safe_detail('a,"b"\n')


def test_a_wrong_mode_in_the_container_stops_the_model_loading(
    model_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(contract.BAD_ROWS_ENV, "skip")
    with pytest.raises(handler.ModelLoadError, match="MLOPS_BAD_ROWS='skip'"):
        handler.model_fn(str(model_dir))
