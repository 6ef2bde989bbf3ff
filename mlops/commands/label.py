"""``mlops label``: upload a labels file as SageMaker ground truth, for the quality job."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlops.commands.common import (
    EndpointUrlOption,
    ProfileOption,
    ProjectDirOption,
    RegionOption,
    aws_errors,
    aws_target,
    console,
    fail,
)

if TYPE_CHECKING:
    from infra.aws_session import AwsTarget


def label_command(
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="CSV with columns id,label (a request of several rows: its labels quoted, "
            'comma-separated, "1,0"), or JSON lines already in ground-truth format.',
        ),
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Ground-truth folder or s3:// prefix (the labels go under yyyy/mm/dd/hh/). "
            "Default with --stack: the stack's s3://<capture bucket>/groundtruth/<endpoint>/.",
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            "-s",
            help="Upload to this deployed stack's ground-truth prefix, with its account settings.",
        ),
    ] = None,
    endpoint_name: Annotated[
        str | None,
        typer.Option(help="Endpoint the labels are for (default: the stack's endpoint)."),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="When the labels were collected, ISO 8601 (default: now, UTC); picks the "
            "hour folder.",
        ),
    ] = None,
    profile: ProfileOption = None,
    region: RegionOption = None,
    endpoint_url: EndpointUrlOption = None,
    project_dir: ProjectDirOption = None,
) -> None:
    """Check every line of a labels file, then write it as one ground-truth file.

    A file with any bad line is refused whole, each bad line named, and
    nothing is written: fix it and run again. The file is named by its
    content: the same labels uploaded again in the same hour replace it.
    """
    from monitoring import labels_file
    from training import uri

    collected = _collected(at)
    try:
        checked = labels_file.read(labels)
    except labels_file.LabelFileError as exc:
        fail(str(exc))
    if to is None and stack is None:
        fail("pass --to (a folder or s3:// prefix) or --stack (the stack's ground-truth prefix)")
    content = checked.jsonl()
    if stack is not None:
        settings, aws = aws_target(
            stack, project_dir, profile=profile, region=region, endpoint_url=endpoint_url
        )
        with aws_errors(aws):
            client, prefix = _stack_target(settings, aws, endpoint_name)
        prefix = to or prefix
    else:
        assert to is not None
        prefix, client, aws = to, None, None
        if uri.is_s3(to):
            from infra.aws_session import AwsTarget

            aws = AwsTarget(
                region=region or "(default)", profile=profile, endpoint_url=endpoint_url
            )
            with aws_errors(aws):
                client = _client(profile, region, endpoint_url)
    target = labels_file.target(prefix, collected, content)
    if uri.is_s3(target):
        assert aws is not None
        with aws_errors(aws):
            uri.write_bytes(target, content, s3=client)
    else:
        try:
            uri.write_bytes(target, content)
        except OSError as exc:
            fail(f"cannot write {target}: {exc.strerror or exc}")
    console.print(
        f"wrote {len(checked.records)} label record(s) ({checked.rows} row(s)) from "
        f"{labels} to {target}",
        soft_wrap=True,
        highlight=False,
    )


def _collected(at: str | None) -> datetime:
    if at is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        fail(f"--at {at!r} is not an ISO 8601 time (e.g. 2026-11-24T10:00:00Z)")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _client(profile: str | None, region: str | None, endpoint_url: str | None) -> Any:
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    return session.client("s3", endpoint_url=endpoint_url)


def _stack_target(settings: Any, aws: AwsTarget, endpoint_name: str | None) -> tuple[Any, str]:
    """The stack's S3 client and ground-truth prefix (Naming.ground_truth_uri)."""
    from infra.aws_session import stack_session
    from infra.naming import BucketPurpose
    from promotion.aws import Stage

    session = stack_session(aws)
    account = settings.account_id or str(
        session.client("sts", endpoint_url=aws.endpoint_url).get_caller_identity()["Account"]
    )
    stage = Stage(settings, account)
    prefix = stage.naming.ground_truth_uri(stage.bucket(BucketPurpose.CAPTURE), endpoint_name)
    return session.client("s3", endpoint_url=aws.endpoint_url), prefix
