"""Publish a registered version's model card: name its package, store it, create it in SageMaker.

Runs as a pipeline job after registration (``python3 bundle_runner.py publish_card.py
ARGS``) or locally (``python -m training.publish_card``). It reads the card evaluation
wrote, fills in the model package ARN, writes the card back where it was (the copy in S3 is
the record ``mlops promote`` checks), then calls SageMaker's ``CreateModelCard`` (status
Draft), or ``UpdateModelCard`` when a re-run finds the card already there. Accounts or
regions without model cards answer that call with an unknown operation, access denied or a
validation error naming the feature; that is logged and the job still succeeds, since the
card in S3 is what the kit relies on.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training import model_card, uri

EXIT_OK = 0
EXIT_AWS = 1
EXIT_USAGE = 2
EXIT_CODES = (
    "Exit codes: 0 the card is written (and created in SageMaker where the account supports "
    "model cards); 1 AWS refused a call; 2 bad arguments, or no readable card at --card."
)
CARD_STATUS = "Draft"
# botocore's EntityName, the shape of ModelCardName.
CARD_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/\S+$")
# Error codes of an account, region or endpoint that has no model cards (or lets this role
# use none), as opposed to a request the service rejected.
_UNSUPPORTED_CODES = frozenset(
    {
        "UnknownOperationException",
        "UnknownOperation",
        "InvalidAction",
        "NotImplemented",
        "AccessDenied",
        "AccessDeniedException",
    }
)
_UNSUPPORTED_MESSAGE = re.compile(
    r"not (supported|available|enabled)|unsupported|not authori[sz]ed", re.IGNORECASE
)


class UsageError(Exception):
    """A caller mistake: exit code 2 with this message."""


@dataclass(frozen=True)
class Options:
    card: str
    model_package_arn: str
    card_name: str
    region: str | None = None
    endpoint_url: str | None = None
    kms_key_id: str | None = None


@dataclass(frozen=True)
class Published:
    card: str
    # The model card's ARN; None where the account has no model cards.
    card_arn: str | None
    note: str


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="publish_card.py",
        description="Name the package in a model card, store it, and create it in SageMaker.",
        epilog=EXIT_CODES,
    )
    p.add_argument("--card", required=True, help="model_card.json: a path or s3:// URI.")
    p.add_argument("--model-package-arn", required=True, help="The registered version.")
    p.add_argument("--card-name", required=True, help="SageMaker model card name.")
    p.add_argument("--kms-key-id", help="KMS key SageMaker encrypts the card with.")
    p.add_argument("--region")
    p.add_argument("--endpoint-url", help="AWS endpoint for every client, e.g. moto.")
    return p


def parse_options(argv: list[str] | None) -> Options:
    args = parser().parse_args(argv)
    if not CARD_NAME.match(args.card_name):
        raise UsageError(
            f"--card-name {args.card_name!r}: 1-63 letters, digits and single hyphens, "
            "starting and ending with a letter or digit"
        )
    if not PACKAGE_ARN.match(args.model_package_arn):
        raise UsageError(
            f"--model-package-arn {args.model_package_arn!r} is not a model package ARN"
        )
    return Options(
        card=args.card,
        model_package_arn=args.model_package_arn,
        card_name=args.card_name,
        region=args.region,
        endpoint_url=args.endpoint_url,
        kms_key_id=args.kms_key_id,
    )


def _log(message: str) -> None:
    print(message, flush=True)


def _client(service: str, options: Options) -> Any:
    import boto3

    return boto3.client(service, region_name=options.region, endpoint_url=options.endpoint_url)


def run(
    options: Options,
    log: Callable[[str], None] = _log,
    *,
    sagemaker: Any | None = None,
    s3: Any | None = None,
) -> Published:
    """``sagemaker`` and ``s3``: clients to use instead of ones made from the options."""
    s3 = s3 if s3 is not None or not uri.is_s3(options.card) else _client("s3", options)
    card = model_card.with_package(_read(options.card, s3), options.model_package_arn)
    if model_card.can_validate():
        model_card.validate(card)
    uri.write_bytes(options.card, model_card.dumps(card).encode(), s3=s3)
    log(f"wrote {options.card} naming {options.model_package_arn}")
    client = sagemaker if sagemaker is not None else _client("sagemaker", options)
    return _create(client, options, card, log)


def _read(location: str, s3: Any) -> dict[str, Any]:
    from botocore.exceptions import ClientError

    try:
        data = uri.read_bytes(location, s3=s3)
    except FileNotFoundError:
        raise UsageError(f"--card {location}: no such file") from None
    except ClientError as exc:
        if _code(exc) in {"NoSuchKey", "404", "NotFound"}:
            raise UsageError(f"--card {location}: no such object") from None
        raise
    return model_card.loads(data, location)


def _create(
    client: Any, options: Options, card: dict[str, Any], log: Callable[[str], None]
) -> Published:
    from botocore.exceptions import ClientError

    # Compact: the content may hold at most 100,000 characters.
    content = json.dumps(card, sort_keys=True, allow_nan=False)
    request: dict[str, Any] = {
        "ModelCardName": options.card_name,
        "Content": content,
        "ModelCardStatus": CARD_STATUS,
    }
    if options.kms_key_id:
        request["SecurityConfig"] = {"KmsKeyId": options.kms_key_id}
    if not hasattr(client, "create_model_card"):
        note = "this botocore has no CreateModelCard; the card in S3 is the record"
        log(note)
        return Published(options.card, None, note)
    try:
        try:
            arn = str(client.create_model_card(**request)["ModelCardArn"])
            note = f"created model card {options.card_name} ({CARD_STATUS})"
        except ClientError as exc:
            if _code(exc) != "ConflictException":
                raise
            # A re-run: the card exists, so its content becomes a new version.
            arn = str(
                client.update_model_card(ModelCardName=options.card_name, Content=content)[
                    "ModelCardArn"
                ]
            )
            note = f"updated model card {options.card_name}: it existed already"
    except ClientError as exc:
        if not unsupported(exc):
            raise
        note = (
            f"SageMaker model cards are not available here ({_code(exc)}: "
            f"{_message(exc)}); the card in S3 is the record"
        )
        log(note)
        return Published(options.card, None, note)
    log(note)
    return Published(options.card, arn, note)


def unsupported(exc: Any) -> bool:
    """Whether an AWS error says the account or region has no model cards for us."""
    code = _code(exc)
    if code in _UNSUPPORTED_CODES:
        return True
    return code == "ValidationException" and bool(_UNSUPPORTED_MESSAGE.search(_message(exc)))


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _message(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Message", ""))


def main(argv: list[str] | None = None) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        options = parse_options(argv)
        run(options)
    except (UsageError, model_card.CardError, uri.UriError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ClientError, BotoCoreError) as exc:
        print(f"error: AWS refused a request: {exc}", file=sys.stderr)
        return EXIT_AWS
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
