"""A team's own Pulumi program built on the kit: one ML environment in a few lines.

`pip install mlops-kit` (or `-e path/to/mlops-kit`), put the `mlops:` settings in the stack
file, and run `pulumi up`. Config is validated and the account checked before anything is
declared, exactly as in the kit's own program.
"""

import pulumi

from infra.components.environment import MlopsEnvironment, MlopsEnvironmentArgs
from infra.config.loader import load_settings
from infra.provider import aws_provider, check_account
from infra.stack_files import build_code, build_dataset

settings = load_settings()
provider = aws_provider(settings)
check_account(settings, provider)

environment = MlopsEnvironment(
    "fraud",
    MlopsEnvironmentArgs(settings=settings, code=build_code(), dataset=build_dataset()),
    opts=pulumi.ResourceOptions(providers={"aws": provider}),
)
pulumi.export("trainingPipelineName", environment.training.pipeline.pipeline_name)
pulumi.export("modelPackageGroupName", environment.outputs["modelPackageGroupName"])
