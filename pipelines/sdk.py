"""The one place that knows how to make the SageMaker v3 SDK build definitions offline.

The SDK is built for notebooks: importing it creates boto3 clients (which walk the
credential chain, up to the EC2 metadata endpoint), its decorated calls send telemetry, and
several code paths check or create the default S3 bucket. None of that may happen while
Pulumi previews a stack. This adapter contains every workaround, so the pipeline builders
never touch boto3 or SDK internals themselves:

- imports happen with a region set and the metadata endpoint disabled, and the process
  environment is restored afterwards;
- the session has static placeholder credentials, telemetry opted out, and the stack's
  artifacts bucket pre-set as its default bucket, so nothing checks or creates a bucket;
- every AWS request the session's clients would send is refused with ``OfflineSdkError``,
  so an SDK change that starts calling AWS fails the build loudly instead of silently
  hitting the network (tests assert that no request is even attempted).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# SageMaker's own switch: do not look the role up in IAM while building requests.
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")

_IMPORT_LOCK = threading.RLock()
IMPORT_REGION = "us-east-1"
# The SDK's defaults-config shape: only telemetry is set, everything else stays explicit.
_SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


class OfflineSdkError(RuntimeError):
    """The SageMaker SDK tried to call AWS while building a pipeline definition."""


@contextmanager
def sdk_environment() -> Iterator[None]:
    """Import SageMaker SDK modules inside this block (imports are cached afterwards).

    sagemaker.ai_registry creates a boto3 client at import time: without a region it
    raises, and without credentials it asks the EC2 metadata endpoint for some. The
    region only has to exist; definitions take theirs from the session below.
    """
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or IMPORT_REGION
    overrides = {"AWS_DEFAULT_REGION": region, "AWS_EC2_METADATA_DISABLED": "true"}
    with _IMPORT_LOCK, warnings.catch_warnings():
        # The SDK narrates notebook concerns (telemetry, "no job started", popped job
        # names) at INFO/WARNING; in a `pulumi up` log they are noise.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # Its loggers set their own levels and handlers, so a parent level would not hold.
        saved_disable = logging.root.manager.disable
        logging.disable(logging.WARNING)
        saved = {name: os.environ.get(name) for name in overrides}
        os.environ.update(overrides)
        try:
            yield
        finally:
            logging.disable(saved_disable)
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def config_validated_once() -> Iterator[None]:
    """Validate each distinct SDK config once per block, not on every default lookup.

    The SDK checks its whole config against a large JSON schema each time a step resolves
    a default (about 50 times per definition, most of the definition's build time). Inside
    this block a config that passed once is not checked again; a new or bad one still is.
    """
    from sagemaker.core.config.config_manager import SageMakerConfig

    original = SageMakerConfig.__dict__["validate_sagemaker_config"]
    passed: set[str] = set()

    def validate_once(sagemaker_config: dict[str, Any] | None = None) -> None:
        key = json.dumps(sagemaker_config, sort_keys=True, default=str)
        if key not in passed:
            original.__func__(sagemaker_config)
            passed.add(key)

    with _IMPORT_LOCK:
        SageMakerConfig.validate_sagemaker_config = staticmethod(validate_once)
        try:
            yield
        finally:
            SageMakerConfig.validate_sagemaker_config = original


def _refuse(request: Any, **_: Any) -> None:
    raise OfflineSdkError(
        f"the SageMaker SDK tried to call AWS ({request.method} {request.url}) while "
        "building a pipeline definition; definitions must build offline (pipelines/sdk.py)"
    )


def offline_session(region: str, default_bucket: str) -> Any:
    """A ``PipelineSession`` that records step requests and never reaches AWS."""
    from infra.aws_session import isolated_session

    with sdk_environment():
        from sagemaker.core.workflow.pipeline_context import PipelineSession

    # Reads nothing of the user's (AWS_PROFILE, ~/.aws): a plan must not depend on them.
    boto_session = isolated_session(region)
    boto_session.events.register("before-send", _refuse)
    session = PipelineSession(
        boto_session=boto_session,
        default_bucket=default_bucket,
        sagemaker_config=_SDK_CONFIG,
    )
    # default_bucket() would otherwise list (and maybe create) the bucket the first time
    # any step asks for it; the stack's artifacts bucket is known to exist.
    session._default_bucket = default_bucket
    return session


def image_uri(region: str, framework_version: str, scope: str) -> str:
    """The managed scikit-learn image for this region, from the SDK's bundled catalog."""
    with sdk_environment():
        from sagemaker.core import image_uris

        uri: str = image_uris.retrieve(
            "sklearn", region=region, version=framework_version, image_scope=scope
        )
    return uri
