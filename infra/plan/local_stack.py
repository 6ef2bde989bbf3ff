"""A stack's resources in a local AWS (a moto server), created from its offline plan.

The plan already knows every API request the provider would send for each resource
(``infra.plan.aws_requests``, validated against botocore's models). Replaying those requests
against a local endpoint stands the stack up as `pulumi up` would, with the same names, ARNs
and policies, so every command that calls AWS can be tried against it as documented.

The pretend account is moto's own (123456789012, the plan's too). The KMS key gets a new ID
from the endpoint, as from AWS, and every later request naming the plan's key ID names the
real one instead; uploads carry the plan's files. What the endpoint refuses, or what depends
on a value known only at deploy time, is listed with the reason instead of failing the rest.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.config import Config

from infra.plan.aws_requests import check_plan, network
from infra.plan.aws_requests.inputs import Request
from infra.plan.aws_requests.shapes import Opaque
from infra.plan.aws_requests.storage import PENDING_KEY_ID
from infra.plan.mocks import RecordedResource, mock_key_id
from infra.plan.runner import Plan


@dataclass(frozen=True)
class Skipped:
    resource: RecordedResource
    operation: str
    reason: str

    def __str__(self) -> str:
        return f"{self.resource.type.split(':')[-1]} {self.resource.name}: {self.reason}"


@dataclass
class LocalStack:
    """What replaying a plan created, and what it could not."""

    stack: str
    region: str
    created: list[RecordedResource] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    requests: int = 0

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for resource in self.created:
            kind = resource.type.split(":")[-1]
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))


# The plan lists resources by URN; AWS needs a resource before what names it. Types not
# listed keep their plan order, after these.
CREATE_ORDER = (
    "aws:kms/key:Key",
    "aws:kms/alias:Alias",
    # The network before what runs in it: later requests name its real IDs.
    *network.CREATE_ORDER,
    "aws:s3/bucket:Bucket",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketVersioning:BucketVersioning",
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketObjectv2:BucketObjectv2",
    "aws:s3/bucketPolicy:BucketPolicy",
    "aws:s3/bucketLogging:BucketLogging",
    "aws:iam/role:Role",
    "aws:iam/policy:Policy",
    "aws:sns/topic:Topic",
    "aws:sagemaker/modelPackageGroup:ModelPackageGroup",
    "aws:sagemaker/model:Model",
    "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
    "aws:sagemaker/endpoint:Endpoint",
    "aws:sagemaker/pipeline:Pipeline",
    "aws:cloudwatch/eventRule:EventRule",
    "aws:cloudwatch/logGroup:LogGroup",
    network.FLOW_LOG,
)

# Requests left out on purpose, with the reason (checked against moto 5.2).
NOT_SENT = {
    "PutBucketPolicy": (
        "not applied: moto evaluates bucket-policy conditions wrongly (it denies a plain "
        "PutObject under each of the kit's four Deny statements, whose conditions do not "
        "match it), so the policy would refuse the kit's own requests; the IAM simulation "
        "tests (infra/policies/analysis) evaluate it instead"
    ),
}
# One attempt per request: a refusal is reported, not retried with backoff.
NO_RETRIES = Config(retries={"max_attempts": 1, "mode": "standard"})

Progress = Callable[[int, int], None]


def create(
    plan: Plan,
    session: Any,
    endpoint_url: str,
    project_dir: Path,
    progress: Progress | None = None,
) -> LocalStack:
    """Send each planned resource's create requests to ``endpoint_url``, with clients of
    ``session`` (a boto3 Session), one per service, each request tried once."""
    from botocore.exceptions import BotoCoreError, ClientError

    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service, endpoint_url=endpoint_url, config=NO_RETRIES)
        return clients[service]

    checked = check_plan(plan)
    region = _region(plan)
    result = LocalStack(plan.stack, region)
    report = progress or (lambda done, total: None)
    # Planned IDs -> the IDs the endpoint gave (the KMS key's, the network's), applied to
    # every request.
    renamed: dict[str, str] = {}
    checks = sorted(checked.checks, key=lambda c: _rank(c.resource.type))
    for done, check in enumerate(checks, start=1):
        resource = check.resource
        failure: Skipped | None = None
        for sent in _create_requests(check.requests):
            blocker = _unknowable(sent.params)
            if blocker:
                failure = Skipped(resource, sent.operation, f"{sent.operation} needs {blocker}")
                break
            try:
                params = _renamed(_localised(resource, sent, project_dir), renamed)
            except FileNotFoundError as exc:
                failure = Skipped(resource, sent.operation, f"its file is missing: {exc}")
                break
            if sent.operation in NOT_SENT:
                failure = Skipped(resource, sent.operation, NOT_SENT[sent.operation])
                break
            try:
                answer = client(sent.service)._make_api_call(sent.operation, params)
                result.requests += 1
            except (ClientError, BotoCoreError, NotImplementedError) as exc:
                if _already_revoked(sent, exc):
                    continue
                failure = Skipped(resource, sent.operation, _reason(sent, exc))
                break
            if sent.operation == "CreateKey":
                real = answer["KeyMetadata"]["KeyId"]
                renamed |= {mock_key_id(resource.name): real, PENDING_KEY_ID: real}
            renamed |= network.created_ids(resource.name, sent.operation, answer)
        if failure is None:
            result.created.append(resource)
        else:
            result.skipped.append(failure)
        report(done, len(checks))
    return result


def _rank(type_token: str) -> int:
    return CREATE_ORDER.index(type_token) if type_token in CREATE_ORDER else len(CREATE_ORDER)


def _region(plan: Plan) -> str:
    for resource in plan.resources:
        if resource.type.startswith("pulumi:providers:aws"):
            return str(resource.inputs.get("region", "us-east-1"))
    return "us-east-1"


def _create_requests(requests: Iterable[Request]) -> list[Request]:
    return [r for r in requests if not r.when]


def _unknowable(value: Any, path: str = "") -> str:
    """The first field whose value the plan cannot know (a Pulumi unknown or a secret)."""
    if isinstance(value, Opaque):
        return f"{path.lstrip('.')}, known only at deploy time"
    if isinstance(value, dict):
        for key, inner in value.items():
            found = _unknowable(inner, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list):
        for index, inner in enumerate(value):
            found = _unknowable(inner, f"{path}[{index}]")
            if found:
                return found
    return ""


def _renamed(value: Any, renamed: dict[str, str]) -> Any:
    if isinstance(value, str):
        for planned, real in renamed.items():
            value = value.replace(planned, real)
        return value
    if isinstance(value, dict):
        return {k: _renamed(v, renamed) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, renamed) for v in value]
    return value


def _localised(resource: RecordedResource, sent: Request, project_dir: Path) -> dict[str, Any]:
    params = dict(sent.params)
    if sent.operation == "PutObject":
        source = resource.inputs.get("source")
        if isinstance(source, dict) and source.get("path"):
            params["Body"] = _asset(Path(source["path"]), project_dir).read_bytes()
    return params


def _asset(path: Path, project_dir: Path) -> Path:
    """A file asset's path: Pulumi resolves relative ones from the program's directory."""
    from infra.stack_files import REPO_ROOT

    for candidate in (project_dir / path, REPO_ROOT / path):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{path} (not under {project_dir} or {REPO_ROOT})")


def _already_revoked(sent: Request, exc: BaseException) -> bool:
    """The provider revokes the rules a security group has; AWS's default group has two,
    moto's only the egress one. A rule that is not there is as good as revoked."""
    code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")
    return sent.operation.startswith("RevokeSecurityGroup") and code == "InvalidPermission.NotFound"


def _reason(sent: Request, exc: BaseException) -> str:
    from infra.aws_session import plain_error

    response = getattr(exc, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    message = plain_error(exc).splitlines()[0] if str(exc) else type(exc).__name__
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(exc, NotImplementedError) or code in {"NotImplemented", "InternalFailure"}:
        return f"{sent.operation} is not implemented by the local endpoint"
    if (status is not None and status >= 500) or code == "500":
        return f"the local endpoint failed on {sent.operation} (HTTP 500: a moto limitation)"
    return f"{sent.operation} refused: {message}"


def summary(local: LocalStack) -> str:
    """One paragraph for the terminal: counts by type, then what was skipped and why."""
    counts = ", ".join(f"{n} {kind}" for kind, n in local.counts().items())
    lines = [f"created {len(local.created)} resources ({local.requests} requests): {counts}"]
    if local.skipped:
        lines.append(f"not created ({len(local.skipped)}):")
        lines += [f"  - {skipped}" for skipped in local.skipped]
    return "\n".join(lines)


def as_json(local: LocalStack) -> str:
    return json.dumps(
        {
            "stack": local.stack,
            "region": local.region,
            "created": [{"type": r.type, "name": r.name} for r in local.created],
            "skipped": [
                {"type": s.resource.type, "name": s.resource.name, "reason": s.reason}
                for s in local.skipped
            ],
        },
        indent=2,
    )
