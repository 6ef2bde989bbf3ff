"""Promotion's governance gates against moto: the model card, and bias within the target's limits.

Uses test_promotion's world (three stacks in one moto account, a real model archive). A
version is registered here as the training pipeline registers it: evaluation, Clarify's
bias report as ModelMetrics.Bias, and its model card's S3 URI under ``mlops:model-card``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_promotion import World, _bucket, _promote
from test_promotion import world as promotion_world  # noqa: F401

from promotion import flow
from promotion.registry import APPROVED, MODEL_CARD
from training import bias

CARD = {
    "model_overview": {"model_description": "churn"},
    "intended_uses": {"risk_rating": "Low"},
}
IMAGE = "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-scikit-learn:1.9-0-cpu-py3"
LIMITS = """\
  mlops:bias:
    facets:
      - name: international_plan
        sensitiveValues: ["yes"]
    limits:
      DPPL: 0.2
      DI: 0.5
"""


@pytest.fixture
def world(request: pytest.FixtureRequest) -> World:
    # test_promotion's fixture, registered here under the name it is imported as.
    found: World = request.getfixturevalue("promotion_world")
    return found


def _analysis(dppl: float, di: float, facet: str = "international_plan") -> dict[str, Any]:
    """Clarify's analysis.json with one group's post-training DPPL and DI."""
    metrics = [
        {"name": "DI", "description": "Disparate Impact (DI)", "value": di},
        {"name": "DPPL", "description": "Difference in Positive Proportions", "value": dppl},
    ]
    section = {
        "label": "churn",
        "label_value_or_threshold": "1",
        "facets": {facet: [{"value_or_threshold": "yes", "metrics": metrics}]},
    }
    return {"version": "1.0", bias.POST_SECTION: section}


def _register(
    world: World,
    *,
    card: Any = CARD,
    report: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> str:
    """Register dev's next version with its card (None: no card key) and bias report."""
    s3, sm, bucket = world.clients.s3, world.clients.sagemaker, _bucket("dev")
    run = f"run{len(world.packages('dev'))}"
    model_key, prefix = f"models/{run}/output/model.tar.gz", f"evaluation/{run}"
    s3.put_object(Bucket=bucket, Key=model_key, Body=world.archive)
    quality = {"binary_classification_metrics": {"auc": {"value": 0.9}}}
    reports = {"ModelQuality": {"Statistics": _put(world, f"{prefix}/evaluation.json", quality)}}
    if report is not None:
        reports["Bias"] = {"Report": _put(world, f"{prefix}/bias/analysis.json", report)}
    properties = dict(metadata or {})
    if card is not None:
        properties[MODEL_CARD] = _put(world, f"{prefix}/model_card.json", card)["S3Uri"]
    request: dict[str, Any] = {
        "ModelPackageGroupName": "churn-dev-models",
        "ModelApprovalStatus": APPROVED,
        "InferenceSpecification": {
            "Containers": [{"Image": IMAGE, "ModelDataUrl": f"s3://{bucket}/{model_key}"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        "ModelMetrics": reports,
    }
    if properties:
        request["CustomerMetadataProperties"] = properties
    arn: str = sm.create_model_package(**request)["ModelPackageArn"]
    return arn


def _put(world: World, key: str, document: Any) -> dict[str, str]:
    world.clients.s3.put_object(Bucket=_bucket("dev"), Key=key, Body=json.dumps(document).encode())
    return {"ContentType": "application/json", "S3Uri": f"s3://{_bucket('dev')}/{key}"}


def _limit(world: World, stack: str) -> None:
    path = world.project / f"Pulumi.{stack}.yaml"
    path.write_text(path.read_text() + LIMITS)


def _refusal(world: World, source: str | None, target: str) -> tuple[str, str]:
    """The one failed gate of a refused promotion, after checking nothing changed."""
    before = world.text(target)
    with pytest.raises(flow.PromotionError) as raised:
        _promote(world, source, target)
    assert raised.value.report is not None
    [failure] = raised.value.report.failures
    assert failure.detail in str(raised.value)
    assert world.text(target) == before and world.packages(target) == []
    return failure.gate, failure.detail


def test_a_version_without_a_model_card_is_refused(world: World) -> None:
    arn = _register(world, card=None)

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "model card"
    assert detail == f"{arn} has no model card (mlops:model-card unset)"


def test_a_card_that_is_gone_is_refused(world: World) -> None:
    _register(world)
    key = "evaluation/run0/model_card.json"
    world.clients.s3.delete_object(Bucket=_bucket("dev"), Key=key)

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "model card"
    assert detail.startswith(f"cannot read s3://{_bucket('dev')}/{key}: NoSuchKey")


@pytest.mark.parametrize(
    ("card", "problem"),
    [
        (
            {**CARD, "intended_uses": {"risk_rating": "Severe"}},
            "intended_uses.risk_rating: 'Severe'",
        ),
        ({"model_overview": {"name": "churn"}}, "Additional properties are not allowed ('name'"),
        (["not", "a", "card"], "the card: ['not', 'a', 'card'] is not of type 'object'"),
    ],
)
def test_a_card_that_breaks_the_schema_is_refused(world: World, card: Any, problem: str) -> None:
    _register(world, card=card)

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "model card"
    assert "breaks SageMaker's model card schema: " in detail and problem in detail


def test_a_card_describing_another_model_is_refused(world: World) -> None:
    card = {**CARD, "additional_information": {"custom_details": {"model_sha256": "0" * 64}}}
    _register(world, card=card)

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "model card"
    assert "describes model 0000000000000000…, not the archive's" in detail


def test_without_limits_a_version_needs_no_bias_report(world: World) -> None:
    _register(world)

    outcome = _promote(world, "dev", "staging")

    assert outcome.report is not None
    assert [(r.gate, r.passed, r.detail) for r in outcome.report.results[-2:]] == [
        ("model card", True, f"s3://{_bucket('dev')}/evaluation/run0/model_card.json follows "
         "SageMaker's model card schema"),
        ("bias within staging's limits", True, "staging sets no bias limits"),
    ]  # fmt: skip


def test_a_target_with_limits_refuses_a_version_without_a_bias_report(world: World) -> None:
    _limit(world, "staging")
    arn = _register(world)

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "bias within staging's limits"
    assert detail == f"{arn} has no bias report; staging limits DI 0.5, DPPL 0.2"


def test_a_version_over_the_targets_limit_is_refused(world: World) -> None:
    _limit(world, "staging")
    _register(world, report=_analysis(dppl=-0.3, di=1.2))

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "bias within staging's limits"
    assert detail == ("DPPL for international_plan=yes is -0.3: 0.3 from fair, over the limit 0.2")


def test_a_bias_report_without_the_targets_facet_is_refused(world: World) -> None:
    _limit(world, "staging")
    _register(world, report=_analysis(dppl=0.0, di=1.0, facet="voice_mail_plan"))

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "bias within staging's limits"
    assert "has no international_plan=yes facet, which staging limits" in detail


def test_a_report_that_is_not_clarifys_layout_is_refused(world: World) -> None:
    _limit(world, "staging")
    _register(world, report={bias.POST_SECTION: {"facets": {"x": [{"metrics": [{}]}]}}})

    gate, detail = _refusal(world, "dev", "staging")

    assert gate == "bias within staging's limits"
    assert "is not Clarify's bias analysis layout" in detail


def test_a_compliant_version_travels_with_its_card_and_reports(world: World) -> None:
    _limit(world, "staging")
    _limit(world, "prod")
    _register(world, report=_analysis(dppl=0.1, di=0.8), metadata={"code_commit": "abc"})

    outcome = _promote(world, "dev", "staging")

    assert outcome.report is not None and outcome.report.passed
    assert outcome.report.results[-1].detail == "every limited metric within DI 0.5, DPPL 0.2"
    [copy] = world.packages("staging")
    promoted = f"s3://{_bucket('staging')}/evaluation/promoted/"
    card_uri = copy["CustomerMetadataProperties"][MODEL_CARD]
    assert card_uri.startswith(promoted) and card_uri.endswith("/model_card.json")
    bias_uri = copy["ModelMetrics"]["Bias"]["Report"]["S3Uri"]
    assert bias_uri.startswith(promoted) and bias_uri.endswith("/bias/analysis.json")
    key = bias_uri.split("/", 3)[3]
    body = world.clients.s3.get_object(Bucket=_bucket("staging"), Key=key)["Body"].read()
    assert json.loads(body) == _analysis(dppl=0.1, di=0.8)
    # Staging's copy passes prod's gates on the copies in staging's bucket.
    onward = _promote(world, "staging", "prod")
    assert onward.report is not None and onward.report.passed
    [prod_copy] = world.packages("prod")
    assert prod_copy["CustomerMetadataProperties"][MODEL_CARD].startswith(
        f"s3://{_bucket('prod')}/"
    )
