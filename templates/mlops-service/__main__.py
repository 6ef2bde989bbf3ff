"""${DESCRIPTION}: one mlops-kit environment (see the kit's README for every setting)."""

import pulumi

from infra.components.environment import MlopsEnvironment, MlopsEnvironmentArgs
from infra.config.loader import load_settings
from infra.provider import aws_provider, check_account
from infra.stack_files import build_code, build_dataset

settings = load_settings()
provider = aws_provider(settings)
check_account(settings, provider)

environment = MlopsEnvironment(
    settings.service_name,
    MlopsEnvironmentArgs(settings=settings, code=build_code(), dataset=build_dataset()),
    opts=pulumi.ResourceOptions(providers={"aws": provider}),
)
for name, value in environment.outputs.items():
    pulumi.export(name, value)
