"""`mlops stack init`: a new account's stack file from the dev, staging or prod preset."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO
from hostile_stack_files import HOSTILE, LONG_STACK, HostileFile, expected
from typer.testing import CliRunner

from infra.config.loader import ConfigError, settings_from_config
from infra.config.settings import Environment, Settings
from infra.plan.mocks import PLAN_ACCOUNT_ID
from infra.plan.project import load_stack_config
from infra.plan.runner import plan_config
from infra.stacks.init import StackInitError, StackRequest, create_stack
from mlops.cli import app

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
PRESETS = ("dev", "staging", "prod")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the repo's project file and its three stack files (the presets)."""
    directory = tmp_path / "project"
    directory.mkdir()
    for name in ("Pulumi.yaml", *(f"Pulumi.{preset}.yaml" for preset in PRESETS)):
        shutil.copy(REPO / name, directory / name)
    return directory


@pytest.fixture(autouse=True)
def aws_profiles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS config with one named profile, `prod`, and no credentials file."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = eu-west-1\n\n[profile prod]\nregion = eu-west-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return config


def _init(project: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["stack", "init", "--project-dir", str(project), *args])
    return result.exit_code, result.output


def _required(name: str = "team-a-prod", **overrides: str) -> list[str]:
    values = {"--account-id": ACCOUNT, "--region": "eu-west-1", "--profile": "prod"}
    values.update({f"--{key.replace('_', '-')}": value for key, value in overrides.items()})
    return ["--name", name, *(part for pair in values.items() for part in pair)]


def _settings(project: Path, stack: str) -> Settings:
    """The new file read exactly as `mlops plan` reads a stack."""
    config = load_stack_config(project, stack)
    return settings_from_config(config.values, project=config.project, stack=stack)


def _stack_files(project: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(project.glob("Pulumi.*.yaml"))}


@pytest.mark.parametrize("preset", PRESETS)
def test_each_preset_writes_a_stack_that_loads_with_the_account(project: Path, preset: str) -> None:
    name = f"team-a-{preset}"
    code, output = _init(project, *_required(name, region="us-east-2"))
    assert code == 0, output
    assert f"Pulumi.{name}.yaml" in output

    settings = _settings(project, name)
    assert settings.environment is Environment(preset)
    assert settings.account_id == ACCOUNT
    assert settings.region == "us-east-2"
    assert settings.stack == name
    assert settings.serving.model is None
    raw = yaml.safe_load((project / f"Pulumi.{name}.yaml").read_text())["config"]
    assert raw["aws:profile"] == "prod"
    # Quoted, so a leading zero in an account ID survives YAML.
    assert raw["mlops:accountId"] == ACCOUNT
    assert "mlops:assumeRoleArn" not in raw
    assert "model" not in raw["mlops:serving"]


def test_the_preset_can_be_named_and_the_role_and_service_set(project: Path) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/deploy"
    code, output = _init(
        project,
        *_required("team-b", assume_role_arn=role, service_name="fraud"),
        "--preset", "staging",
    )  # fmt: skip
    assert code == 0, output
    settings = _settings(project, "team-b")
    assert settings.environment is Environment.STAGING
    assert settings.assume_role_arn == role
    assert settings.service_name == "fraud"
    assert settings.prefix == "fraud-team-b"


def test_prod_keeps_every_prod_rule(project: Path) -> None:
    code, output = _init(project, *_required("team-a-prod"))
    assert code == 0, output
    settings = _settings(project, "team-a-prod")
    assert settings.is_prod
    assert settings.monitoring.alarm_emails
    assert settings.storage.protect_data and not settings.storage.force_destroy
    assert settings.serving.min_instances >= 2 and settings.serving.network_isolation

    # The rules still bite: the generated file without its alarm e-mails is refused.
    path = project / "Pulumi.team-a-prod.yaml"
    document = yaml.safe_load(path.read_text())
    del document["config"]["mlops:monitoring"]["alarmEmails"]
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=r"mlops:monitoring\.alarmEmails: prod needs"):
        _settings(project, "team-a-prod")


def test_comments_survive_and_the_rest_of_the_preset_is_unchanged(project: Path) -> None:
    code, output = _init(project, *_required("team-a-dev", region="us-east-2"))
    assert code == 0, output
    written = (project / "Pulumi.team-a-dev.yaml").read_text()
    preset = (REPO / "Pulumi.dev.yaml").read_text()

    for line in preset.splitlines():
        if line.lstrip().startswith("#") and "serving.model" not in line and "rewrites" not in line:
            assert line in written, f"comment lost: {line}"
    assert written.startswith("# Created by `mlops stack init` from the dev preset")
    # Comments stay above the keys they describe.
    assert (
        "  aws:profile: prod\n"
        "  # Every resource must use the kit's tagged, region-pinned provider.\n"
        "  pulumi:disable-default-providers:\n"
    ) in written
    assert (
        "    # No always-on instances: serverless bills per request.\n    kind: serverless\n"
    ) in written
    assert "`mlops promote --to team-a-dev` writes serving.model" in written

    removed = {"  aws:region: eu-west-1", "    model:", "      packageVersion: 1"}
    # The preset's tags are the kit's team's: their keys stay, their values become placeholders.
    replaced = {
        "    team: ml-platform": "    team: CHANGE-ME",
        "    cost-center: ml-dev": "    cost-center: CHANGE-ME",
    }
    kept = [line for line in preset.splitlines() if not line.lstrip().startswith("#")]
    assert set(replaced) <= set(kept)
    assert [replaced.get(line, line) for line in kept if line not in removed] == [
        line
        for line in written.splitlines()
        if not line.lstrip().startswith("#")
        and not line.startswith(("  aws:region:", "  aws:profile:", "  mlops:accountId:"))
    ]


ROLE_ELSEWHERE = f"arn:aws:iam::{OTHER_ACCOUNT}:role/deploy"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (_required(account_id="12345"), "--account-id: '12345' is not an AWS account ID"),
        (_required(account_id="12345678901a"), "is not an AWS account ID (12 digits)"),
        (_required(region="eu-wset-1"), "--region: 'eu-wset-1' is not a region where SageMaker"),
        (_required(region="eu-wset-1"), "Did you mean 'eu-west-1'"),
        (_required(profile="prd"), "--profile: no AWS profile 'prd' in"),
        (_required(profile="prd"), "Did you mean 'prod'?"),
        (_required("Team_A-prod"), "--name: stack name 'Team_A-prod' cannot be used in AWS"),
        (_required("team-a"), "cannot tell the preset from the stack name 'team-a'"),
        ([*_required("team-a"), "--preset", "qa"], "--preset: 'qa' is not a preset"),
        (_required(assume_role_arn=ROLE_ELSEWHERE), f"in account {OTHER_ACCOUNT}, but accountId"),
        (_required(assume_role_arn="deploy"), "--assume-role-arn: 'deploy' is not an IAM role ARN"),
        (_required(service_name="Churn!"), "--service-name: 'Churn!' is not a valid service name"),
    ],
)  # fmt: skip
def test_refusals_give_one_message_and_write_nothing(
    project: Path, args: list[str], message: str
) -> None:
    before = _stack_files(project)
    code, output = _init(project, *args)
    assert code == 1, output
    assert message in output
    assert output.count("error:") == 1
    assert _stack_files(project) == before
    assert not [p for p in project.iterdir() if p.name.startswith(".")]  # no temporary left


def test_an_unknown_profile_suggests_the_skip_flag_which_skips_the_check(project: Path) -> None:
    code, output = _init(project, *_required(profile="ci"))
    assert code == 1
    assert "profiles: default, prod" in output
    assert "--skip-profile-check" in output

    code, output = _init(project, *_required(profile="ci"), "--skip-profile-check")
    assert code == 0, output
    assert (
        yaml.safe_load((project / "Pulumi.team-a-prod.yaml").read_text())["config"]["aws:profile"]
        == "ci"
    )


def test_a_profile_in_the_credentials_file_counts(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[ci]\naws_access_key_id = x\naws_secret_access_key = y\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    code, output = _init(project, *_required(profile="ci"))
    assert code == 0, output


def test_an_existing_file_is_kept_without_force_and_replaced_with_it(project: Path) -> None:
    existing = project / "Pulumi.team-a-prod.yaml"
    existing.write_text("# hand-written\nconfig: {}\n")

    code, output = _init(project, *_required())
    assert code == 1
    assert "Pulumi.team-a-prod.yaml already exists; pass --force to replace it" in output
    assert existing.read_text() == "# hand-written\nconfig: {}\n"

    code, output = _init(project, *_required(), "--force")
    assert code == 0, output
    assert "replaced" in output
    assert _settings(project, "team-a-prod").account_id == ACCOUNT


def test_a_refused_force_leaves_the_existing_file(project: Path) -> None:
    existing = project / "Pulumi.team-a-prod.yaml"
    existing.write_text("# hand-written\n")
    code, _ = _init(project, *_required(region="mars-1"), "--force")
    assert code == 1
    assert existing.read_text() == "# hand-written\n"


def test_a_name_too_long_for_bucket_names_is_refused_by_the_settings(project: Path) -> None:
    code, output = _init(project, *_required("a-very-long-team-name-prod"))
    assert code == 1
    assert "would not be valid config: mlops:serviceName:" in output
    assert "S3 allows 63" in output
    assert not (project / "Pulumi.a-very-long-team-name-prod.yaml").exists()


def test_a_missing_or_broken_preset_is_refused(project: Path) -> None:
    (project / "Pulumi.staging.yaml").unlink()
    code, output = _init(project, *_required("team-a-staging"))
    assert code == 1
    assert "no staging preset: cannot read" in output

    (project / "Pulumi.dev.yaml").write_text("config: [\n")
    code, output = _init(project, *_required("team-a-dev"))
    assert code == 1
    assert "Pulumi.dev.yaml is not valid YAML" in output
    assert not list(project.glob("Pulumi.team-a-*.yaml"))


def test_the_library_call_returns_the_validated_settings(project: Path) -> None:
    request = StackRequest(
        name="ml-staging", account_id=ACCOUNT, region="eu-central-1", profile="unknown"
    )
    created = create_stack(project, request, profile_check=False)
    assert created.preset is Environment.STAGING
    assert created.settings == _settings(project, "ml-staging")
    assert (
        created.path.stat().st_mode & 0o777
        == (project / "Pulumi.staging.yaml").stat().st_mode & 0o777
    )
    with pytest.raises(StackInitError, match="already exists"):
        create_stack(project, request, profile_check=False)


@pytest.mark.parametrize("preset", ["dev", "prod"])
def test_the_offline_plan_of_a_generated_stack_succeeds(project: Path, preset: str) -> None:
    # The plan's mocks answer as account PLAN_ACCOUNT_ID; the provider only allows that one.
    name = f"team-a-{preset}"
    code, output = _init(project, *_required(name, account_id=PLAN_ACCOUNT_ID))
    assert code == 0, output
    plan = plan_config(load_stack_config(project, name))
    buckets = {r.inputs.get("bucket") for r in plan.of_type("aws:s3/bucket:Bucket")}
    assert f"churn-{name}-data-{PLAN_ACCOUNT_ID}-eu-west-1" in buckets
    # No model yet, so no endpoint.
    assert not plan.of_type("aws:sagemaker/endpoint:Endpoint")


# --- hostile presets -----------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda h: h.id)
def test_a_hostile_preset_is_refused_with_one_line_and_nothing_written(
    project: Path, hostile: HostileFile
) -> None:
    (project / "Pulumi.dev.yaml").write_bytes(hostile.content)
    before = _stack_files(project)
    result = CliRunner().invoke(
        app, ["stack", "init", "--project-dir", str(project), *_required("team-a-dev")]
    )
    # 1 from fail(), not an escaped exception, nor EXIT_IF_RUN from a tag that was run.
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception
    says = (
        "Pulumi.dev.yaml has no 'config:' mapping to start from"
        if hostile.id == "not-a-mapping"
        else f"the dev preset: {expected(hostile)}"
    )
    assert result.output.startswith(f"error: {says}"), result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert _stack_files(project) == before
    assert not [p for p in project.iterdir() if p.name.startswith(".")]


def test_a_stack_name_too_long_for_aws_is_named_briefly(project: Path) -> None:
    code, output = _init(project, *_required(LONG_STACK))
    assert code == 1
    assert output == (
        "error: --name: stack name 'aaaaaaaaaaaaaaaaaaaaaaaa...' (300 characters) cannot be "
        "used in AWS resource names: use up to 32 lowercase letters, digits and hyphens\n"
    )


def test_text_that_yaml_would_read_as_a_date_is_written_quoted(project: Path) -> None:
    code, output = _init(project, *_required(profile="2024-01-01"), "--skip-profile-check")
    assert code == 0, output
    written = (project / "Pulumi.team-a-prod.yaml").read_text()
    assert "  aws:profile: '2024-01-01'\n" in written
    assert load_stack_config(project, "team-a-prod").values["aws:profile"] == "2024-01-01"


# --- alert e-mails and tags: given, or visibly placeholders ---------------------------------

PLACEHOLDER_LINES = {
    "email": (
        "placeholder: mlops:monitoring.alarmEmails = CHANGE-ME@example.com (it holds the "
        "placeholder marker CHANGE-ME); pass --alert-email ADDRESS or edit the file"
    ),
    **{
        key: (
            f"placeholder: mlops:tags.{key} = CHANGE-ME (it is the placeholder CHANGE-ME); "
            f"pass --tag {key}=VALUE or edit the file"
        )
        for key in ("team", "cost-center", "data-classification")
    },
}
PROD_VERDICT = (
    "replace them before deploying: mlops plan --stack team-a-prod --policy fails until they "
    "are gone (guardrail no-placeholder-settings)"
)


def _placeholder_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(("placeholder:", "replace "))]


def test_without_emails_or_tags_prod_gets_visible_placeholders_and_says_so(project: Path) -> None:
    result = CliRunner().invoke(
        app, ["stack", "init", "--project-dir", str(project), *_required("team-a-prod")]
    )
    assert result.exit_code == 0, result.output
    output = result.stdout  # said on stdout, not as an error
    assert result.stderr == ""
    written = (project / "Pulumi.team-a-prod.yaml").read_text()
    raw = yaml.safe_load(written)["config"]
    assert raw["mlops:monitoring"]["alarmEmails"] == ["CHANGE-ME@example.com"]
    assert raw["mlops:tags"] == dict.fromkeys(
        ("team", "cost-center", "data-classification"), "CHANGE-ME"
    )
    # Nothing of the kit's own team or its sample marker crosses over.
    for sample in ("ml-oncall@example.com", "ml-platform", "ml-prod", "sample-stack", "sample:"):
        assert sample not in written
    assert _placeholder_lines(output) == [*PLACEHOLDER_LINES.values(), PROD_VERDICT]


def test_given_emails_and_tags_are_written_and_only_the_rest_are_placeholders(
    project: Path,
) -> None:
    code, output = _init(
        project,
        *_required("team-a-prod"),
        "--alert-email", "oncall@fraud.corp.io",
        "--alert-email", "pager@fraud.corp.io",
        "--tag", "team=fraud-ml",
        "--tag", "owner=ana@corp.io",
        "--tag", "note=",
    )  # fmt: skip
    assert code == 0, output
    settings = _settings(project, "team-a-prod")
    assert settings.monitoring.alarm_emails == ("oncall@fraud.corp.io", "pager@fraud.corp.io")
    # The preset's keys in their order, then the new ones; an empty value is a value.
    assert settings.tags == {
        "team": "fraud-ml",
        "cost-center": "CHANGE-ME",
        "data-classification": "CHANGE-ME",
        "owner": "ana@corp.io",
        "note": "",
    }
    assert _placeholder_lines(output) == [
        PLACEHOLDER_LINES["cost-center"],
        PLACEHOLDER_LINES["data-classification"],
        PROD_VERDICT,
    ]


def test_with_every_setting_given_nothing_is_a_placeholder(project: Path) -> None:
    code, output = _init(
        project,
        *_required("team-a-prod"),
        "--alert-email", "oncall@fraud.corp.io",
        "--tag", "team=fraud-ml",
        "--tag", "cost-center=cc-4711",
        "--tag", "data-classification=restricted",
    )  # fmt: skip
    assert code == 0, output
    assert _placeholder_lines(output) == []
    assert "CHANGE-ME" not in (project / "Pulumi.team-a-prod.yaml").read_text()


def test_an_example_address_given_on_purpose_is_still_called_a_placeholder(project: Path) -> None:
    code, output = _init(project, *_required("team-a-staging"), "--alert-email", "me@example.org")
    assert code == 0, output
    assert _placeholder_lines(output)[0] == (
        "placeholder: mlops:monitoring.alarmEmails = me@example.org (example.org is reserved for "
        "examples by RFC 2606; mail to it is never delivered); pass --alert-email ADDRESS or "
        "edit the file"
    )
    assert _placeholder_lines(output)[-1] == (
        "replace them before deploying: mlops plan --stack team-a-staging --policy warns about "
        "them (placeholder-settings-warning); in prod they would fail it"
    )


def test_dev_gets_no_alert_address_unless_given(project: Path) -> None:
    code, output = _init(project, *_required("team-a-dev"))
    assert code == 0, output
    assert _settings(project, "team-a-dev").monitoring.alarm_emails == ()
    assert "alarmEmails" not in (project / "Pulumi.team-a-dev.yaml").read_text()

    code, output = _init(
        project, *_required("team-a-dev"), "--alert-email", "dev@corp.io", "--force"
    )
    assert code == 0, output
    assert _settings(project, "team-a-dev").monitoring.alarm_emails == ("dev@corp.io",)
    assert not [line for line in _placeholder_lines(output) if "alarmEmails" in line]


BAD_EMAILS_AND_TAGS = [
    (
        ["--alert-email", "oncall-at-example"],
        "error: --alert-email: 'oncall-at-example' is not an e-mail address: An email address "
        "must have an @-sign.",
    ),
    (
        ["--alert-email", "a@corp.io", "--alert-email", "A@corp.io"],
        "error: --alert-email: 'A@corp.io' is given more than once",
    ),
    (
        ["--alert-email", "a@corp.io\nb@corp.io"],
        "error: --alert-email: 'a@corp.io\\nb@corp.io' is not an e-mail address",
    ),
    (["--tag", "team"], "error: --tag: 'team' is not KEY=VALUE (e.g. --tag team=fraud-ml)"),
    (["--tag", "=fraud"], "error: --tag: '=fraud' has no key before '='; use KEY=VALUE"),
    (["--tag", "team=a", "--tag", "team=b"], "error: --tag: key 'team' is given more than once"),
    (
        ["--tag", "project=x"],
        "error: --tag: tag key 'project' is set by the kit itself; reserved: project, "
        "environment, stack, managed-by",
    ),
    (
        ["--tag", "aws:team=x"],
        "error: --tag: tag key 'aws:team' uses the 'aws:' prefix, which AWS reserves",
    ),
    (
        ["--tag", "team=a\tb"],
        "error: --tag: tag 'team' has value 'a\\tb'; values must be at most 256 characters",
    ),
    (
        ["--tag", "sample-stack=team-a-prod"],
        "error: --tag: sample-stack marks the kit's own sample stack files (their placeholders "
        "only warn); a new stack cannot be one",
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_EMAILS_AND_TAGS)
def test_a_bad_alert_email_or_tag_is_one_line_naming_the_option_and_nothing_is_written(
    project: Path, args: list[str], message: str
) -> None:
    before = _stack_files(project)
    code, output = _init(project, *_required("team-a-prod"), *args)
    assert code == 1, output
    assert output.startswith(message), output
    assert output.count("\n") == 1 and "Traceback" not in output
    assert _stack_files(project) == before
    assert not [p for p in project.iterdir() if p.name.startswith(".")]


def test_prod_policy_check_fails_on_the_placeholders_until_they_are_replaced(
    project: Path,
) -> None:
    from guardrails import check_plan, has_mandatory

    name = "team-a-prod"
    code, output = _init(project, *_required(name, account_id=PLAN_ACCOUNT_ID))
    assert code == 0, output
    found = check_plan(plan_config(load_stack_config(project, name)))
    assert {(v.policy, v.name) for v in found} == {
        ("no-placeholder-settings", "alerts-email-0"),
        ("no-placeholder-settings", "aws"),
    }
    assert has_mandatory(found)
    messages = sorted(v.message for v in found)
    assert messages[0] == (
        "aws:sns/topicSubscription:TopicSubscription 'alerts-email-0': alert e-mail "
        "CHANGE-ME@example.com is a placeholder (it holds the placeholder marker CHANGE-ME), so "
        "alarms in environment 'prod' reach nobody. Set mlops:monitoring.alarmEmails in "
        "Pulumi.team-a-prod.yaml to your on-call addresses (for a new stack, `mlops stack init "
        "--alert-email ADDRESS` writes them)"
    )
    assert messages[1] == (
        "pulumi:providers:aws 'aws': tag(s) team=CHANGE-ME, cost-center=CHANGE-ME, "
        "data-classification=CHANGE-ME hold the placeholder CHANGE-ME (in the provider's "
        "defaultTags, so every resource it manages carries them) in environment 'prod'. Set "
        "mlops:tags.team, mlops:tags.cost-center, mlops:tags.data-classification in "
        "Pulumi.team-a-prod.yaml to real values (for a new stack, `mlops stack init --tag "
        "KEY=VALUE` writes them)"
    )
    result = CliRunner().invoke(
        app, ["plan", "--project-dir", str(project), "--stack", name, "-q", "--policy"]
    )
    assert result.exit_code == 1, result.output
    assert "policy: 2 mandatory violation(s)" in result.output

    code, output = _init(
        project,
        *_required(name, account_id=PLAN_ACCOUNT_ID),
        "--force",
        "--alert-email", "oncall@fraud.corp.io",
        "--tag", "team=fraud-ml",
        "--tag", "cost-center=cc-4711",
        "--tag", "data-classification=restricted",
    )  # fmt: skip
    assert code == 0, output
    assert check_plan(plan_config(load_stack_config(project, name))) == []
