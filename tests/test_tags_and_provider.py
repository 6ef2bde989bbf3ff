"""Tags reach every resource through one explicit, tagged provider."""

from __future__ import annotations

from collections.abc import Callable

from conftest import PROVIDER, PlannedStack


def test_provider_pins_region_and_carries_default_tags(stack: PlannedStack) -> None:
    provider = stack.one(PROVIDER, "aws")
    assert provider.inputs["region"] == "eu-west-1"
    # Providers receive structured inputs as JSON strings.
    tags = stack.document(provider, "defaultTags")["tags"]
    assert tags["project"] == "mlops-kit"
    assert tags["environment"] == stack.stack
    assert tags["stack"] == stack.stack
    assert tags["managed-by"] == "pulumi"
    assert tags["team"] == "ml-platform"


def test_config_tags_differ_per_stack(plan_of: Callable[[str], PlannedStack]) -> None:
    def tags(stack: str) -> dict[str, str]:
        planned = plan_of(stack)
        return dict(planned.document(planned.one(PROVIDER, "aws"), "defaultTags")["tags"])

    assert tags("dev")["cost-center"] == "ml-dev"
    assert tags("prod")["cost-center"] == "ml-prod"
    assert tags("prod")["data-classification"] == "confidential"
    assert "data-classification" not in tags("dev")


def test_every_aws_resource_uses_the_tagged_provider(stack: PlannedStack) -> None:
    provider = stack.one(PROVIDER, "aws")
    aws_resources = [r for r in stack.resources if r.custom and r.type.startswith("aws:")]
    assert len(aws_resources) >= 40
    for resource in aws_resources:
        # Provider references are "<provider urn>::<provider id>".
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_default_providers_are_disabled_in_every_stack_file(
    raw_config: Callable[[str], dict[str, str]],
) -> None:
    for stack in ("dev", "staging", "prod"):
        assert raw_config(stack)["pulumi:disable-default-providers"] == '["aws"]'


def test_components_and_their_children_form_one_tree(stack: PlannedStack) -> None:
    components = {r.urn for r in stack.resources if not r.custom}
    for resource in stack.resources:
        if resource.type.startswith("aws:"):
            assert resource.parent in components, f"{resource.name} has no component parent"
