"""The model card (training.model_card) and its publication (training.publish_card).

Cards are checked against SageMaker's model card JSON schema, vendored in
training/schemas; CreateModelCard runs against moto 5.2, which implements it (and
UpdateModelCard); the answers of accounts without model cards come from a fake client.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from training import bias, evaluate, manifest, model_card, publish_card
from training.hashing import sha256_file, sha256_files
from training.schemas import MODEL_CARD_SCHEMA

REGION = "eu-west-1"
BUCKET = "churn-dev-artifacts"
PACKAGE = f"arn:aws:sagemaker:{REGION}:123456789012:model-package/churn-dev-models/3"
SHAP = {
    "version": "1.0",
    "explanations": {
        "kernel_shap": {
            "label0": {
                "global_shap_values": {"state": 0.01, "total_day_minutes": 0.2, "area_code": -0.05},
                "expected_value": 0.14,
            }
        }
    },
}
PROVENANCE = model_card.Provenance(
    training_data="s3://churn-dev-data/processed/abc/train/",
    test_data="s3://churn-dev-data/processed/abc/test/",
    sourcedir="s3://churn-dev-artifacts/code/1234/sourcedir.tar.gz",
    image="141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3",
    model_artifact="s3://churn-dev-artifacts/models/run/output/model.tar.gz",
    risk_rating="Low",
)


@pytest.fixture(scope="module")
def evaluated(model_dir: Path, processed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("evaluation")
    options = evaluate.Options(
        model=model_dir,
        test_dir=processed / "test",
        output_dir=out,
        facets=(bias.parse_facet("international_plan=yes"),),
        explain_rows=0,
        provenance=PROVENANCE,
    )
    evaluate.run(options, log=lambda _: None)
    return out


def _read(path: Path) -> Any:
    return json.loads(path.read_text())


def _card(model_dir: Path, evaluated: Path, **results: Any) -> dict[str, Any]:
    return model_card.build(
        manifest.read(model_dir),
        model_card.Results(
            evaluation=_read(evaluated / "evaluation.json"),
            bias=_read(evaluated / "bias" / "analysis.json"),
            **results,
        ),
        PROVENANCE,
    )


def test_the_schema_is_sagemakers_file_unchanged() -> None:
    # The hash training/schemas/__init__.py records for the upstream file.
    digest = "da893c9c875bbeaeb354b5e908d9f586953c9ff99790e1ef611e54507e5281bd"
    assert sha256_file(MODEL_CARD_SCHEMA) == digest
    schema = _read(MODEL_CARD_SCHEMA)
    assert schema["title"] == "SageMakerModelCardSchema"
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"


def test_evaluation_writes_a_card_that_follows_the_schema(
    model_dir: Path, processed: Path, evaluated: Path
) -> None:
    card = _read(evaluated / model_card.CARD_FILE)

    assert model_card.problems(card) == []
    described = manifest.read(model_dir)
    lineage = card["additional_information"]["custom_details"]
    assert lineage["model_sha256"] == described["model"]["sha256"]
    assert lineage["training_data_sha256"] == described["data"]["train_sha256"]
    assert lineage["code_commit"] == described["code"]["git_sha"]
    assert lineage["code_sourcedir"] == PROVENANCE.sourcedir
    assert lineage["inference_image"] == PROVENANCE.image
    assert lineage["training_data"] == PROVENANCE.training_data
    test_split = processed / "test"
    assert lineage["test_data_sha256"] == sha256_files(test_split.glob("*.csv"), test_split)
    job = card["training_details"]["training_job_details"]
    assert job["training_datasets"] == [PROVENANCE.training_data]
    assert {"name": "seed", "value": str(described["hyperparameters"]["seed"])} in job[
        "hyper_parameters"
    ]
    overview = card["model_overview"]
    assert overview["model_artifact"] == [PROVENANCE.model_artifact]
    assert overview["algorithm_type"].startswith("HistGradientBoostingClassifier (scikit-learn")
    assert card["intended_uses"]["risk_rating"] == "Low"


def test_the_card_carries_test_metrics_and_bias_results(evaluated: Path) -> None:
    card = _read(evaluated / model_card.CARD_FILE)
    evaluation = _read(evaluated / "evaluation.json")["binary_classification_metrics"]
    report = _read(evaluated / "bias" / "analysis.json")

    [details] = card["evaluation_details"]
    groups = {g["name"]: g["metric_data"] for g in details["metric_groups"]}
    quality = {m["name"]: m for m in groups["binary classification"]}
    assert quality["auc"]["value"] == evaluation["auc"]["value"]
    matrix = evaluation["confusion_matrix"]
    assert quality["confusion_matrix"]["value"] == [
        [matrix["0"]["0"], matrix["0"]["1"]],
        [matrix["1"]["0"], matrix["1"]["1"]],
    ]
    [post] = report["post_training_bias_metrics"]["facets"]["international_plan"]
    carried = {m["name"]: m["value"] for m in groups["post-training bias international_plan=yes"]}
    assert carried["DCAcc"] == next(m["value"] for m in post["metrics"] if m["name"] == "DCA")
    assert set(carried) == {"AD", "DCAcc", "DI", "DPPL", "RD"}
    assert "pre-training bias international_plan=yes" in groups


def test_global_attributions_become_a_bar_chart_largest_first(
    model_dir: Path, evaluated: Path
) -> None:
    card = _card(model_dir, evaluated, explainability=SHAP)

    assert model_card.problems(card) == []
    [details] = card["evaluation_details"]
    [chart] = next(g for g in details["metric_groups"] if g["name"] == "global attributions")[
        "metric_data"
    ]
    assert chart["type"] == "bar_chart"
    assert chart["x_axis_name"] == ["total_day_minutes", "area_code", "state"]
    assert chart["value"] == [0.2, -0.05, 0.01]


def test_values_json_cannot_carry_are_written_as_strings(model_dir: Path, evaluated: Path) -> None:
    infinite = {"name": "DI", "description": "Disparate Impact (DI)", "value": "Infinity"}
    failed = {"name": "RD", "description": "RD", "value": None, "error": "Facet set is empty"}
    report = {
        "version": "1.0",
        "post_training_bias_metrics": {
            "label": "churn",
            "label_value_or_threshold": "1",
            "facets": {"state": [{"value_or_threshold": "CA", "metrics": [infinite, failed]}]},
        },
    }

    card = model_card.build(
        manifest.read(model_dir),
        model_card.Results(evaluation=_read(evaluated / "evaluation.json"), bias=report),
        PROVENANCE,
    )

    assert model_card.problems(card) == []
    [details] = card["evaluation_details"]
    [group] = [g for g in details["metric_groups"] if g["name"].startswith("post-training")]
    assert group["metric_data"] == [
        {"name": "DI", "type": "string", "value": "Infinity"},
        {"name": "RD", "type": "string", "value": "not computed", "notes": "Facet set is empty"},
    ]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c.update(owner="me"), "Additional properties are not allowed ('owner'"),
        (
            lambda c: c["intended_uses"].update(risk_rating="Severe"),
            "intended_uses.risk_rating: 'Severe' is not one of",
        ),
        (
            lambda c: c["model_overview"].update(model_description="x" * 1025),
            "model_overview.model_description: ",
        ),
    ],
)
def test_the_schema_catches_a_broken_card(
    model_dir: Path, evaluated: Path, change: Any, problem: str
) -> None:
    card = _card(model_dir, evaluated)
    change(card)

    with pytest.raises(model_card.CardError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        model_card.validate(card)


def test_a_risk_rating_outside_the_schemas_enum_is_refused(
    model_dir: Path, evaluated: Path
) -> None:
    with pytest.raises(model_card.CardError, match="risk rating 'Severe' is not one of High"):
        model_card.build(
            manifest.read(model_dir),
            model_card.Results(evaluation=_read(evaluated / "evaluation.json")),
            model_card.Provenance(risk_rating="Severe"),
        )


# publish_card.py


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield s3


def _upload(s3: Any, evaluated: Path) -> str:
    key = "evaluation/pipelines-abc/model_card.json"
    s3.put_object(Bucket=BUCKET, Key=key, Body=(evaluated / model_card.CARD_FILE).read_bytes())
    return f"s3://{BUCKET}/{key}"


def _publish(card: str, name: str = "churn-dev-abc", *extra: str) -> int:
    return publish_card.main(
        ["--card", card, "--model-package-arn", PACKAGE, "--card-name", name, "--region", REGION,
         *extra]
    )  # fmt: skip


def test_publishing_names_the_package_in_s3_and_creates_the_card(
    aws: Any, evaluated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card_uri = _upload(aws, evaluated)

    assert _publish(card_uri, "churn-dev-abc", "--kms-key-id", "alias/churn-dev") == 0

    stored = json.loads(aws.get_object(Bucket=BUCKET, Key=card_uri.split("/", 3)[3])["Body"].read())
    assert stored["additional_information"]["custom_details"]["model_package_arn"] == PACKAGE
    assert model_card.problems(stored) == []
    described = boto3.client("sagemaker", region_name=REGION).describe_model_card(
        ModelCardName="churn-dev-abc"
    )
    assert described["ModelCardStatus"] == "Draft"
    assert json.loads(described["Content"]) == stored
    assert described["SecurityConfig"] == {"KmsKeyId": "alias/churn-dev"}
    assert "created model card churn-dev-abc (Draft)" in capsys.readouterr().out


def test_a_rerun_updates_the_existing_card(aws: Any, evaluated: Path) -> None:
    card_uri = _upload(aws, evaluated)
    assert _publish(card_uri) == 0

    assert _publish(card_uri) == 0

    described = boto3.client("sagemaker", region_name=REGION).describe_model_card(
        ModelCardName="churn-dev-abc"
    )
    assert described["ModelCardVersion"] == 2


class _Refusing:
    """A SageMaker client whose CreateModelCard answers with one error."""

    def __init__(self, code: str, message: str) -> None:
        self.error = ClientError({"Error": {"Code": code, "Message": message}}, "CreateModelCard")

    def create_model_card(self, **_: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("UnknownOperationException", ""),
        ("AccessDeniedException", "User is not authorized to perform: sagemaker:CreateModelCard"),
        ("ValidationException", "Model cards are not supported in this region"),
    ],
)
def test_an_account_without_model_cards_keeps_the_card_in_s3_and_succeeds(
    aws: Any, evaluated: Path, code: str, message: str
) -> None:
    options = publish_card.parse_options(
        ["--card", _upload(aws, evaluated), "--model-package-arn", PACKAGE, "--card-name", "c1"]
    )
    notes: list[str] = []

    published = publish_card.run(options, notes.append, sagemaker=_Refusing(code, message), s3=aws)

    assert published.card_arn is None
    assert f"not available here ({code}" in notes[-1] and "card in S3 is the record" in notes[-1]


def test_any_other_refusal_fails_the_job(
    aws: Any, evaluated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refusing = _Refusing("ValidationException", "Content does not follow the model card schema")
    monkeypatch.setattr(
        publish_card,
        "_client",
        lambda service, options: {"s3": aws, "sagemaker": refusing}[service],
    )

    assert _publish(_upload(aws, evaluated)) == publish_card.EXIT_AWS
    err = capsys.readouterr().err
    assert err.startswith("error: AWS refused a request:") and err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--card-name", "churn_dev"], "--card-name 'churn_dev': 1-63 letters"),
        (["--model-package-arn", "churn-dev-models/3"], "is not a model package ARN"),
        (["--card", "s3://churn-dev-artifacts/none.json"], "no such object"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(
    aws: Any, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {"--card": f"s3://{BUCKET}/x.json", "--model-package-arn": PACKAGE, "--card-name": "c"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))

    argv = [part for pair in base.items() for part in pair]
    code = publish_card.main([*argv, "--region", REGION])

    assert code == publish_card.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_local_card_that_is_not_json_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model_card.json"
    path.write_text("{not json")

    assert _publish(str(path)) == publish_card.EXIT_USAGE
    assert f"{path} is not JSON" in capsys.readouterr().err
