"""The stack's resources, declared from validated settings.

``main`` is what ``pulumi up`` runs (via ``infra/__main__.py``) and what the offline plan
runs under mocks; both validate config, and check the account, before a single resource is
declared. Everything else is one ``MlopsEnvironment``.
"""

from __future__ import annotations

import pulumi

from infra.components.environment import MlopsEnvironment, MlopsEnvironmentArgs
from infra.config.loader import ConfigError, load_settings
from infra.provider import WrongAccountError, aws_provider, check_account
from infra.stack_files import StackFilesError, build_code, build_dataset


def main() -> None:
    # RunError makes `pulumi up` print just the message, not a Python traceback.
    try:
        settings = load_settings()
        code, dataset = build_code(), build_dataset()
        provider = aws_provider(settings)
        check_account(settings, provider)
    except (ConfigError, StackFilesError, WrongAccountError) as exc:
        raise pulumi.RunError(str(exc)) from None
    environment = MlopsEnvironment(
        settings.service_name,
        MlopsEnvironmentArgs(settings=settings, code=code, dataset=dataset),
        opts=pulumi.ResourceOptions(providers={"aws": provider}),
    )
    for name, value in environment.outputs.items():
        pulumi.export(name, value)
