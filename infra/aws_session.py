"""AWS sessions, built explicitly: offline ones that read nothing, and one per stack.

botocore's defaults read the shell's environment, ``~/.aws/config`` and the instance
metadata service, so an ``AWS_PROFILE`` naming a profile this machine lacks breaks even code
that never sends a request. Offline work (the plan, the demo, local stacks) therefore uses
``isolated_session``: fixed placeholder credentials, the given region, no files read.
Commands that call a real account use ``stack_session``: the stack's region, its
``aws:profile`` and ``mlops:assumeRoleArn``, with ``--profile``/``--region`` on top, as the
AWS CLI orders them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import boto3
    import botocore.session

    from infra.config.settings import Settings

PLACEHOLDER_KEY = "local"
# Variables that make botocore read the user's setup; an isolated session overrides all.
USER_AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_CA_BUNDLE",
)


def offline_environment(region: str | None = None) -> dict[str, str]:
    """Environment variables under which boto3's defaults read nothing of the user's (set
    them after removing ``USER_AWS_VARIABLES``); no region unless one is given."""
    env = {
        "AWS_ACCESS_KEY_ID": PLACEHOLDER_KEY,
        "AWS_SECRET_ACCESS_KEY": PLACEHOLDER_KEY,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if region is not None:
        env |= {"AWS_REGION": region, "AWS_DEFAULT_REGION": region}
    return env


@contextmanager
def offline_process_environment(region: str) -> Iterator[None]:
    """This process's environment without the user's AWS setup, for the duration.

    For code that builds sessions it does not let us pass in: the SageMaker SDK creates
    one on import, and the drift job builds clients from the environment as in SageMaker.
    """
    offline = offline_environment(region)
    saved = {name: os.environ.get(name) for name in {*USER_AWS_VARIABLES, *offline}}
    for name in USER_AWS_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(offline)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def isolated_botocore_session(
    region: str | None = None, access_key: str = PLACEHOLDER_KEY
) -> botocore.session.Session:
    """A botocore session with placeholder credentials that reads no file, variable or
    metadata: for botocore's bundled data (service models, regions) and offline clients."""
    import botocore.session
    from botocore.configprovider import BOTOCORE_DEFAUT_SESSION_VARIABLES, ConstantProvider

    core = botocore.session.Session()
    # Every setting from its built-in default, never from a variable or a config file (the
    # profile too: with none, botocore asks for no file at all).
    fixed: dict[str, object] = {
        name: default for name, (_, _, default, _) in BOTOCORE_DEFAUT_SESSION_VARIABLES.items()
    }
    fixed |= {
        "profile": None,
        "config_file": os.devnull,
        "credentials_file": os.devnull,
        "region": region,
        "ignore_configured_endpoint_urls": True,
    }
    store = core.get_component("config_store")
    for name, value in fixed.items():
        store.set_config_provider(name, ConstantProvider(value))
    core.set_credentials(access_key, PLACEHOLDER_KEY)
    return core


def isolated_session(region: str, access_key: str = PLACEHOLDER_KEY) -> boto3.Session:
    """A boto3 session with placeholder credentials that reads nothing of the user's.

    moto takes a 12-digit access key as the account to act in.
    """
    import boto3

    return boto3.Session(botocore_session=isolated_botocore_session(region, access_key))


@dataclass(frozen=True)
class AwsTarget:
    """Where a command's requests go: the stack's account settings, then the flags."""

    region: str
    profile: str | None = None
    role_arn: str | None = None
    role_session_name: str = "mlops-cli"
    endpoint_url: str | None = None

    @classmethod
    def of(
        cls,
        settings: Settings,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        stack_profile: str | None = None,
    ) -> AwsTarget:
        return cls(
            region=region or settings.region,
            profile=profile or stack_profile,
            role_arn=settings.assume_role_arn,
            role_session_name=f"mlops-{settings.prefix}"[:64],
            endpoint_url=endpoint_url,
        )

    def describe(self) -> str:
        via = f" as {self.role_arn}" if self.role_arn else ""
        profile = self.profile or os.environ.get("AWS_PROFILE")
        source = f"profile {profile}" if profile else "the default credential chain"
        return f"{source}{via}, region {self.region}"


def stack_session(target: AwsTarget) -> boto3.Session:
    """A session for a real account (or an endpoint standing in for one).

    The profile, when given, must exist: botocore raises ProfileNotFound, which
    ``credentials_problem`` turns into one line. The role is assumed lazily, on the first
    request, and refreshed before it expires.
    """
    import boto3
    import botocore.session

    core = botocore.session.Session(profile=target.profile)
    core.set_config_variable("region", target.region)
    if target.role_arn:
        _assume_role(core, target)
    return boto3.Session(botocore_session=core)


def _assume_role(core: Any, target: AwsTarget) -> None:
    from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

    source = core.get_credentials()
    if source is None:
        from botocore.exceptions import NoCredentialsError

        raise NoCredentialsError()
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=lambda service, **kwargs: core.create_client(
            service, endpoint_url=target.endpoint_url, **kwargs
        ),
        source_credentials=source,
        role_arn=target.role_arn,
        extra_args={"RoleSessionName": target.role_session_name},
    )
    core._credentials = DeferredRefreshableCredentials(  # botocore's own assume-role path
        method="assume-role", refresh_using=fetcher.fetch_credentials
    )


def credentials_problem(exc: BaseException, target: AwsTarget) -> str | None:
    """One line saying what to do, when ``exc`` is a local credential or setup problem.

    None for anything else (AWS answered, and refused): the caller reports that as AWS's.
    """
    from botocore.exceptions import (
        BotoCoreError,
        ConfigParseError,
        EndpointConnectionError,
        HTTPClientError,
        NoCredentialsError,
        NoRegionError,
        PartialCredentialsError,
        ProfileNotFound,
        TokenRetrievalError,
        UnknownEndpointError,
    )

    where = target.describe()
    if isinstance(exc, ProfileNotFound):
        return (
            f"AWS profile '{exc.kwargs.get('profile')}' is not configured on this machine; "
            "run `aws configure --profile <name>` (or `aws configure sso`), or pass "
            "--profile with one that exists"
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return (
            f"no AWS credentials found ({where}); run `aws sso login`, set AWS_PROFILE or "
            "pass --profile, or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, TokenRetrievalError):
        return f"the SSO session has expired ({where}); run `aws sso login`"
    if isinstance(exc, NoRegionError | UnknownEndpointError):
        return f"no AWS endpoint for region {target.region}; set aws:region or pass --region"
    if isinstance(exc, EndpointConnectionError):
        return (
            f"could not connect to {exc.kwargs.get('endpoint_url')} ({where}); check the "
            "region (--region), the network, or --endpoint-url"
        )
    if isinstance(exc, ConfigParseError):
        return (
            f"cannot read the AWS config file {exc.kwargs.get('path')}; fix it, or point "
            "AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at readable files"
        )
    if isinstance(exc, HTTPClientError):
        return f"the connection to AWS failed ({where}): {exc}; retry, or check the network"
    if isinstance(exc, BotoCoreError):
        # Raised before any answer came back: the setup, not AWS, is the problem.
        return f"the AWS setup on this machine cannot be used ({where}): {exc}"
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in {"ExpiredToken", "ExpiredTokenException", "RequestExpired"}:
        return f"the AWS credentials have expired ({where}); refresh them and retry"
    if code in {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch"}:
        return (
            f"AWS does not recognise these credentials ({where}); check AWS_PROFILE, "
            "--profile or the exported keys"
        )
    return None


def plain_error(exc: BaseException) -> str:
    """The error's text, without the HTML page an endpoint that lacks an API may answer with.

    moto (and some proxies) answer an unimplemented operation with a 404 or 500 HTML page,
    which botocore then quotes whole.
    """
    text = str(exc)
    lowered = text.lower()
    if "<html" not in lowered and "<!doctype" not in lowered:
        return text
    response = getattr(exc, "response", {}) or {}
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", "an error")
    operation = getattr(exc, "operation_name", "the request")
    return (
        f"{operation}: the endpoint answered HTTP {status} with a web page instead of an AWS "
        "response; it does not implement this operation"
    )
