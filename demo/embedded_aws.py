"""An AWS on 127.0.0.1 for the demo: moto's server on a free port, and what the stack owns.

Everything the lifecycle calls goes to this endpoint through plain boto3 clients, exactly
as it would go to AWS. The process environment loses the user's AWS setup and gets
placeholder credentials for the duration (the drift job and promotion build their clients
from it), then is restored: a stray AWS_PROFILE or real keys can neither break the demo nor
reach an account.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.server import ThreadedMotoServer

from infra.aws_session import isolated_session, offline_process_environment
from infra.naming import BucketPurpose
from promotion.aws import Clients, Stage

# The buckets the lifecycle touches; the access-log bucket plays no part locally.
BUCKETS = (BucketPurpose.DATA, BucketPurpose.ARTIFACTS, BucketPurpose.CAPTURE)


@dataclass(frozen=True)
class EmbeddedAws:
    url: str
    region: str
    # One session and one client per service: a new session reloads botocore's models.
    session: Any
    clients: Clients
    _made: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def at(cls, url: str, region: str) -> EmbeddedAws:
        session = isolated_session(region)
        return cls(url, region, session, Clients.create(region, url, session))

    def client(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self.session.client(service, endpoint_url=self.url)
        return self._made[service]


@contextmanager
def embedded_aws(region: str) -> Iterator[EmbeddedAws]:
    # The server logs every request at INFO, and a traceback for a request it cannot serve
    # (the local stack lists those); the demo's own lines are the progress display.
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Port 0: the OS picks a free port, so a busy port can never stop the demo.
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    with offline_process_environment(region):
        server.start()
        try:
            host, port = server.get_host_and_port()
            url = f"http://{host}:{port}"
            # moto keeps its state per process, not per server: a second run in the same
            # process (a test, a notebook) must start from nothing too.
            urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"))
            yield EmbeddedAws.at(url, region)
        finally:
            server.stop()


def provision(aws: EmbeddedAws, stage: Stage) -> None:
    """What `pulumi up` would have created that the lifecycle uses: buckets and registry."""
    s3, region = aws.clients.s3, stage.settings.region
    for purpose in BUCKETS:
        s3.create_bucket(
            Bucket=stage.bucket(purpose), CreateBucketConfiguration={"LocationConstraint": region}
        )
    aws.clients.sagemaker.create_model_package_group(
        ModelPackageGroupName=stage.model_package_group,
        ModelPackageGroupDescription=f"Versions of the {stage.settings.prefix} model",
    )
