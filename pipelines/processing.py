"""Processing-job pieces both pipelines use: the processor, and S3 inputs and outputs.

Every processing job runs the code bundle on the managed scikit-learn image with the stack
key on its volume and outputs and encrypted inter-container traffic, in the stack's VPC when
it has one; only whether it may reach the network differs (training: never; drift: it must).
"""

from __future__ import annotations

from typing import Any

from pipelines import sdk
from pipelines.spec import BUNDLE_DIR, VpcSpec

with sdk.sdk_environment():
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingS3Input,
        ProcessingS3Output,
    )


def script_processor(
    session: Any,
    *,
    role_arn: str,
    image_uri: str,
    instance_type: Any,
    volume_size_gb: int,
    kms_key_arn: str,
    max_runtime_seconds: int,
    network_isolation: bool,
    environment: dict[str, str],
    vpc: VpcSpec | None = None,
) -> Any:
    return ScriptProcessor(
        role=role_arn,
        image_uri=image_uri,
        command=["python3"],
        instance_type=instance_type,
        instance_count=1,
        volume_size_in_gb=volume_size_gb,
        volume_kms_key=kms_key_arn,
        output_kms_key=kms_key_arn,
        max_runtime_in_seconds=max_runtime_seconds,
        sagemaker_session=session,
        env=environment or None,
        network_config=network_config(network_isolation=network_isolation, vpc=vpc),
    )


def network_config(*, network_isolation: bool, vpc: VpcSpec | None) -> Any:
    """A processing job's NetworkConfig; with a VPC, its VpcConfig (CreateProcessingJob's
    NetworkConfig.VpcConfig). None leaves both members out, so the request is unchanged."""
    return NetworkConfig(
        enable_network_isolation=network_isolation,
        encrypt_inter_container_traffic=True,
        subnets=None if vpc is None else list(vpc.subnets),
        security_group_ids=None if vpc is None else list(vpc.security_group_ids),
    )


def s3_input(name: str, uri: Any, local_path: str) -> Any:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def bundle_input(sourcedir_uri: str) -> Any:
    return s3_input("bundle", sourcedir_uri, BUNDLE_DIR)


def s3_output(name: str, uri: Any, local_path: str) -> Any:
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=uri, local_path=local_path, s3_upload_mode="EndOfJob"),
    )
