"""The AWS clients promotion needs, and the stack facts it derives from names alone."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from infra.config.settings import Settings
from infra.naming import BucketPurpose, Naming, bucket_name


@dataclass(frozen=True)
class Clients:
    sagemaker: Any
    s3: Any
    cloudwatch: Any
    sts: Any

    @classmethod
    def create(
        cls, region: str, endpoint_url: str | None = None, session: Any | None = None
    ) -> Clients:
        """Clients from ``session`` (a boto3 Session; default: boto3's defaults in ``region``)."""
        import boto3

        session = session or boto3.session.Session(region_name=region)

        def client(service: str) -> Any:
            return session.client(service, region_name=region, endpoint_url=endpoint_url)

        return cls(*(client(s) for s in ("sagemaker", "s3", "cloudwatch", "sts")))


@dataclass(frozen=True)
class Stage:
    """One deployed stack, as promotion sees it: its settings and its predictable names."""

    settings: Settings
    account_id: str

    @property
    def name(self) -> str:
        return self.settings.stack

    @property
    def naming(self) -> Naming:
        s = self.settings
        return Naming(prefix=s.prefix, region=s.region, partition=s.partition)

    @property
    def model_package_group(self) -> str:
        return self.naming.model_package_group

    def package_arn(self, version: int) -> str:
        return self.naming.model_package_arn(self.account_id, version)

    def bucket(self, purpose: BucketPurpose) -> str:
        s = self.settings
        return bucket_name(s.prefix, purpose, self.account_id, s.region)
