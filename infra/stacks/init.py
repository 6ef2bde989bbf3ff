"""Create ``Pulumi.<stack>.yaml`` for a new account from the repo's dev/staging/prod files.

The presets are the project's own stack files, read round-trip so their comments (which
explain every relaxation of a secure default) carry over. Only what makes a stack belong to
an account changes: ``aws:region``, ``aws:profile``, ``mlops:accountId``, optionally
``mlops:assumeRoleArn`` and ``mlops:serviceName``. ``mlops:serving.model`` is dropped, since
a new account has no registered model yet.

Settings that belong to a team, not to the kit, are never copied from a preset: the alert
e-mails (``mlops:monitoring.alarmEmails``) and the tags (``mlops:tags``) come from
``--alert-email`` and ``--tag``, and where none is given they are written as visible
placeholders (``CHANGE-ME``, ``CHANGE-ME@example.com``), which the ``no-placeholder-settings``
guardrail fails in prod and ``placeholder-settings-warning`` reports elsewhere. The kit's
``sample-stack`` tag is dropped: a new stack is never the kit's sample.

The finished text is validated exactly as ``mlops plan`` and ``pulumi up`` would read it,
before anything is written; the write is atomic and never replaces a file unless asked.
"""

from __future__ import annotations

import difflib
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import EmailStr, TypeAdapter, ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from guardrails.placeholders import (
    PLACEHOLDER,
    PLACEHOLDER_EMAIL,
    SAMPLE_TAG,
    email_problem,
    is_placeholder_tag,
)
from infra.config import validators as v
from infra.config.loader import ConfigError, settings_from_config, shown_name
from infra.config.settings import Environment, Settings
from infra.plan.project import ProjectError, parse_stack_config
from infra.stack_yaml import (
    StackYamlError,
    load_plain,
    read_text,
    round_trip_yaml,
    write_atomically,
)

REGION_KEY = "aws:region"
# pulumi_aws.config.profile reads this key: the named profile from ~/.aws/config.
PROFILE_KEY = "aws:profile"
SERVICE_KEY = "mlops:serviceName"
ACCOUNT_KEY = "mlops:accountId"
ROLE_KEY = "mlops:assumeRoleArn"
SERVING_KEY = "mlops:serving"
TAGS_KEY = "mlops:tags"
MONITORING_KEY = "mlops:monitoring"
EMAILS_KEY = "alarmEmails"
# Keys that name a registered model; a new account has none yet.
MODEL_KEYS = ("model", "shadow")
HEADER = "# Created by `mlops stack init`"


class StackInitError(Exception):
    """The stack file cannot be created; the message says why and what to change."""


@dataclass(frozen=True)
class StackRequest:
    """What ``mlops stack init`` was asked for, before any check."""

    name: str
    account_id: str
    region: str
    profile: str
    preset: Environment | None = None
    service_name: str | None = None
    assume_role_arn: str | None = None
    # Where alarms go; none: the preset's addresses become PLACEHOLDER_EMAIL.
    alert_emails: tuple[str, ...] = ()
    # mlops:tags; a preset tag key not given here gets the value PLACEHOLDER.
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Placeholder:
    """A setting the new file holds that nobody chose: what it is, why, and the flag to set it."""

    setting: str
    value: str
    reason: str
    option: str


@dataclass(frozen=True)
class CreatedStack:
    path: Path
    preset: Environment
    settings: Settings
    replaced: bool
    placeholders: tuple[Placeholder, ...] = ()


def parse_tags(values: Sequence[str]) -> dict[str, str]:
    """``--tag KEY=VALUE`` options as a mapping; each is checked on its own in create_stack."""
    tags: dict[str, str] = {}
    for value in values:
        key, separator, tag_value = value.partition("=")
        if not separator:
            raise StackInitError(
                f"--tag: {_quoted(value)} is not KEY=VALUE (e.g. --tag team=fraud-ml)"
            )
        if not key:
            raise StackInitError(f"--tag: {_quoted(value)} has no key before '='; use KEY=VALUE")
        if key in tags:
            raise StackInitError(f"--tag: key {_quoted(key)} is given more than once")
        tags[key] = tag_value
    return tags


def parse_preset(value: str) -> Environment:
    try:
        return Environment(value)
    except ValueError:
        choices = ", ".join(e.value for e in Environment)
        raise StackInitError(f"--preset: {value!r} is not a preset; choose {choices}") from None


def preset_for(name: str, preset: Environment | None) -> Environment:
    """The explicit preset, else the one the stack name ends with (team-a-prod -> prod)."""
    if preset is not None:
        return preset
    suffix = name.rsplit("-", 1)[-1]
    try:
        return Environment(suffix)
    except ValueError:
        choices = "|".join(e.value for e in Environment)
        raise StackInitError(
            f"cannot tell the preset from the stack name {name!r} (it does not end in "
            f"-dev, -staging or -prod); pass --preset {choices}"
        ) from None


def check_profile(profile: str) -> None:
    """Refuse a profile botocore does not know (it honours AWS_CONFIG_FILE and
    AWS_SHARED_CREDENTIALS_FILE, as the Pulumi AWS provider does)."""
    import botocore.exceptions
    import botocore.session

    session = botocore.session.Session()
    try:
        known = sorted(session.available_profiles)
    except botocore.exceptions.BotoCoreError as exc:
        raise StackInitError(f"--profile: cannot read the AWS config files: {exc}") from None
    if profile in known:
        return
    files = " and ".join(
        str(session.get_config_variable(name)) for name in ("config_file", "credentials_file")
    )
    close = difflib.get_close_matches(profile, known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listed = ", ".join(known) if known else "none"
    raise StackInitError(
        f"--profile: no AWS profile {profile!r} in {files} (profiles: {listed}).{hint} "
        "Add it with `aws configure --profile "
        f"{profile}`, or pass --skip-profile-check on machines without AWS profiles (CI)"
    )


def create_stack(
    project_dir: Path,
    request: StackRequest,
    *,
    force: bool = False,
    profile_check: bool = True,
) -> CreatedStack:
    """Write ``Pulumi.<name>.yaml`` in ``project_dir``; nothing is written on any refusal."""
    preset = _check_request(request)
    if profile_check:
        check_profile(request.profile)
    path = project_dir / f"Pulumi.{request.name}.yaml"
    if path.exists() and not force:
        raise StackInitError(
            f"{path} already exists; pass --force to replace it (its contents will be lost)"
        )
    template = project_dir / f"Pulumi.{preset.value}.yaml"
    text = render(template, request, preset)
    settings = _validate(project_dir, request.name, path, text)
    replaced = path.exists()
    _write(path, text, mode=template.stat().st_mode & 0o777, replace=force)
    return CreatedStack(
        path=path,
        preset=preset,
        settings=settings,
        replaced=replaced,
        placeholders=placeholders_of(settings),
    )


def placeholders_of(settings: Settings) -> tuple[Placeholder, ...]:
    """The settings the guardrails would call placeholders (the same tests they apply)."""
    found = [
        Placeholder(f"{MONITORING_KEY}.{EMAILS_KEY}", address, problem, "--alert-email ADDRESS")
        for address in settings.monitoring.alarm_emails
        if (problem := email_problem(address)) is not None
    ]
    found += [
        Placeholder(
            f"{TAGS_KEY}.{key}", value, f"it is the placeholder {PLACEHOLDER}", f"--tag {key}=VALUE"
        )
        for key, value in settings.tags.items()
        if is_placeholder_tag(key, value)
    ]
    return tuple(found)


def render(template: Path, request: StackRequest, preset: Environment) -> str:
    """The new stack file's text: the preset with this account's values in place."""
    round_trip = round_trip_yaml(template.name)
    try:
        document = round_trip.load(read_text(template))
    except OSError as exc:
        raise StackInitError(
            f"no {preset.value} preset: cannot read {template} ({exc.strerror}); the presets "
            "are the project's own Pulumi.dev.yaml, Pulumi.staging.yaml and Pulumi.prod.yaml"
        ) from None
    except StackYamlError as exc:
        raise StackInitError(f"the {preset.value} preset: {exc}") from None
    except YAMLError as exc:
        raise StackInitError(f"{template.name} is not valid YAML: {exc}") from None
    if not isinstance(document, CommentedMap) or not isinstance(
        document.get("config"), CommentedMap
    ):
        raise StackInitError(f"{template.name} has no 'config:' mapping to start from")
    config: CommentedMap = document["config"]

    config[REGION_KEY] = request.region
    _put(config, PROFILE_KEY, request.profile, after=REGION_KEY)
    if request.service_name is not None:
        config[SERVICE_KEY] = request.service_name
    _put(config, ACCOUNT_KEY, request.account_id, after=SERVICE_KEY)
    if request.assume_role_arn is not None:
        _put(config, ROLE_KEY, request.assume_role_arn, after=ACCOUNT_KEY)
    elif ROLE_KEY in config:
        # The preset's role lives in the preset's account.
        del config[ROLE_KEY]
    serving = config.get(SERVING_KEY)
    if isinstance(serving, CommentedMap):
        _drop_models(serving, request.name)
        config.ca.items.pop(SERVING_KEY, None)
    _set_tags(config, request.tags)
    _set_alert_emails(config, request.alert_emails, preset)

    buffer = io.StringIO()
    round_trip.dump(document, buffer)
    body = buffer.getvalue()
    if body.startswith(HEADER):  # a preset that was itself created by this command
        body = body.split("\n", 1)[1]
    header = (
        f"{HEADER} from the {preset.value} preset (Pulumi.{preset.value}.yaml) for account "
        f"{request.account_id}.\n"
    )
    return header + body


def _check_request(request: StackRequest) -> Environment:
    """Each flag on its own, with the kit's validators, so one message names one flag."""
    checks: list[tuple[str, Callable[[str], str], str]] = [
        ("--name", v.stack_name, request.name),
        ("--account-id", v.account_id, request.account_id),
        ("--region", v.region, request.region),
    ]
    if request.service_name is not None:
        checks.append(("--service-name", v.service_name, request.service_name))
    if request.assume_role_arn is not None:
        checks.append(("--assume-role-arn", v.role_arn, request.assume_role_arn))
    for flag, check, value in checks:
        try:
            check(value)
        except ValueError as exc:
            raise StackInitError(
                f"{flag}: {str(exc).replace(repr(value), shown_name(value))}"
            ) from None
    if not request.profile.strip():
        raise StackInitError("--profile: must not be empty")
    _check_alert_emails(request.alert_emails)
    _check_tags(request.tags)
    return preset_for(request.name, request.preset)


_EMAIL: TypeAdapter[str] = TypeAdapter(EmailStr)


def _check_alert_emails(addresses: Sequence[str]) -> None:
    """Each address as the config validates it, so the flag, not the file, is named."""
    seen: set[str] = set()
    for address in addresses:
        try:
            _EMAIL.validate_python(address)
        except ValidationError as exc:
            reason = str(exc.errors()[0]["msg"]).removeprefix(
                "value is not a valid email address: "
            )
            raise StackInitError(
                f"--alert-email: {_quoted(address)} is not an e-mail address: {reason}"
            ) from None
        if address.lower() in seen:
            raise StackInitError(f"--alert-email: {_quoted(address)} is given more than once")
        seen.add(address.lower())


def _quoted(value: str) -> str:
    """A flag's value in a one-line message: quoted, escaped, cut short."""
    return shown_name(value if value.isprintable() else repr(value)[1:-1])


def _check_tags(tags: Mapping[str, str]) -> None:
    for key, value in tags.items():
        if key == SAMPLE_TAG:
            raise StackInitError(
                f"--tag: {SAMPLE_TAG} marks the kit's own sample stack files (their placeholders "
                "only warn); a new stack cannot be one"
            )
        try:
            v.user_tags({key: value})
        except ValueError as exc:
            raise StackInitError(f"--tag: {exc}") from None


def _set_tags(config: CommentedMap, given: Mapping[str, str]) -> None:
    """The preset's tag keys, valued from ``given`` or PLACEHOLDER; then the other given tags."""
    tags = config.get(TAGS_KEY)
    if not isinstance(tags, CommentedMap):
        if not given:
            return
        tags = CommentedMap()
        _put(config, TAGS_KEY, tags, after=SERVICE_KEY)
    for key in list(tags):
        if key == SAMPLE_TAG:
            del tags[key]
        else:
            tags[key] = given.get(str(key), PLACEHOLDER)
    for key, value in given.items():
        if key not in tags:
            tags[key] = value


def _set_alert_emails(config: CommentedMap, given: Sequence[str], preset: Environment) -> None:
    """``given``, else one placeholder where the preset alerts anyone (prod always must)."""
    monitoring = config.get(MONITORING_KEY)
    present = isinstance(monitoring, CommentedMap) and bool(monitoring.get(EMAILS_KEY))
    if not given and not present and preset is not Environment.PROD:
        return
    addresses = CommentedSeq(given or [PLACEHOLDER_EMAIL])
    if not isinstance(monitoring, CommentedMap):
        config[MONITORING_KEY] = CommentedMap({EMAILS_KEY: addresses})
    elif EMAILS_KEY in monitoring:
        monitoring[EMAILS_KEY] = addresses
    else:
        monitoring.insert(0, EMAILS_KEY, addresses)


def _validate(project_dir: Path, stack: str, path: Path, text: str) -> Settings:
    """Read the text as the Pulumi CLI would and validate it as `mlops plan` does."""
    try:
        document = load_plain(text, path.name)
        config = parse_stack_config(project_dir, stack, path, document)
        return settings_from_config(config.values, project=config.project, stack=stack)
    except (ProjectError, StackYamlError) as exc:
        raise StackInitError(str(exc)) from None
    except ConfigError as exc:
        problems = "; ".join(exc.problems)
        raise StackInitError(f"{path.name} would not be valid config: {problems}") from None


def _put(mapping: CommentedMap, key: str, value: Any, *, after: str) -> None:
    """Set ``key``; a new key goes right after ``after`` (else at the end)."""
    if key in mapping:
        mapping[key] = value
        return
    if after not in mapping:
        mapping[key] = value
        return
    mapping.insert(list(mapping).index(after) + 1, key, value)
    # A comment below ``after`` introduces the key that followed it; keep it there.
    anchor = mapping.ca.items.get(after)
    if anchor and len(anchor) > 2 and anchor[2] is not None and _is_scalar(mapping[after]):
        mapping.ca.items[key] = [None, None, anchor[2], None]
        anchor[2] = None


def _drop_models(serving: CommentedMap, stack: str) -> None:
    present = [key for key in MODEL_KEYS if key in serving]
    if not present:
        return
    # Comments after a removed block describe the key that follows it: keep them.
    moved: list[str] = []
    for key in present:
        moved += _take_trailing_comment(serving[key])
        del serving[key]
    # The comment above serving.model described the model; say why there is none.
    serving.ca.comment = None
    note = [
        "No model yet: this account's registry is empty. Once a version is registered,",
        f"`mlops promote --to {stack}` writes serving.model here (README: Deploy to a real "
        "account).",
        *moved,
    ]
    if serving:
        indent = serving.lc.col if serving.lc.col is not None else 4
        serving.yaml_set_comment_before_after_key(
            next(iter(serving)), before="\n".join(note), indent=indent
        )


def _take_trailing_comment(value: Any) -> list[str]:
    """Detach the comment lines after the last scalar inside ``value``."""
    while isinstance(value, CommentedMap) and value:
        last = next(reversed(value))
        if isinstance(value[last], CommentedMap):
            value = value[last]
            continue
        item = value.ca.items.get(last)
        if not item or len(item) < 3 or item[2] is None:
            return []
        token, item[2] = item[2], None
        lines = str(token.value).splitlines()
        return [line.strip().removeprefix("#").strip() for line in lines if line.strip()]
    return []


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list)


def _write(path: Path, text: str, *, mode: int, replace: bool) -> None:
    try:
        write_atomically(path, text, mode=mode, replace=replace)
    except FileExistsError:
        raise StackInitError(f"{path} already exists; pass --force to replace it") from None
