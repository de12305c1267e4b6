"""Where the `lake` command operates: a deployed stack in AWS, or the local cloud started by `lake up`.

Both resolve to the same `LakeContext` (boto3 clients plus the stack's resource names), so the services in
`lake/ops.py` never branch on the environment. The local cloud is found through `<lake root>/cloud.json`,
which `lake up` writes with its endpoint URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lake.errors import LakeError, NoCredentials

LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@dataclass(frozen=True)
class StackResources:
    """The names the operator commands need, resolved from the stack."""

    state_machine_arn: str
    datasets: tuple[str, ...]
    curated_database: str
    staging_bucket: str
    raw_bucket: str
    curated_bucket: str
    athena_workgroup: str

    def to_json(self) -> dict:
        return {**self.__dict__, "datasets": list(self.datasets)}


@dataclass(frozen=True)
class LakeContext:
    resources: StackResources
    client_factory: Any  # (service name) -> boto3 client
    local_root: Path | None = None

    @property
    def is_local(self) -> bool:
        return self.local_root is not None

    def client(self, service: str) -> Any:
        return self.client_factory(service)


def local_context(root: Path) -> LakeContext:
    """Connect to the local cloud that `lake up` runs under `root`."""
    state_file = root / "cloud.json"
    if not state_file.is_file():
        raise LakeError(f"no local cloud is running under {root}; start one with `lake up` (or use `lake demo`)")
    state = json.loads(state_file.read_text())
    import boto3

    endpoint = state["endpoint"]
    resources = StackResources(**{**state["resources"], "datasets": tuple(state["resources"]["datasets"])})
    return LakeContext(
        resources=resources,
        client_factory=lambda service: boto3.client(service, endpoint_url=endpoint, **LOCAL_CREDENTIALS),
        local_root=root,
    )


def _physical(resources: list[dict], logical_prefix: str, kind: str) -> str:
    matches = [r for r in resources if r["LogicalResourceId"].startswith(logical_prefix) and r["ResourceType"] == kind]
    if len(matches) != 1:
        raise LakeError(f"expected one {kind} named {logical_prefix}* in the stack, found {len(matches)}")
    return matches[0]["PhysicalResourceId"]


def aws_context(stage: str, datasets: tuple[str, ...], curated_database: str, workgroup: str) -> LakeContext:
    """Resolve the deployed `DataLake-<stage>` stack with the default AWS credential chain."""
    import boto3
    from botocore.exceptions import ClientError, NoCredentialsError

    session = boto3.session.Session()
    try:
        cloudformation = session.client("cloudformation")
        listed = cloudformation.describe_stack_resources(StackName=f"DataLake-{stage}")["StackResources"]
    except NoCredentialsError as error:
        raise NoCredentials(
            "no AWS credentials found; configure a profile (aws configure / AWS_PROFILE) or use --local"
        ) from error
    except ClientError as error:
        raise LakeError(f"cannot read stack DataLake-{stage}: {error}") from error
    resources = StackResources(
        state_machine_arn=_physical(listed, "PipelineStateMachine", "AWS::StepFunctions::StateMachine"),
        datasets=datasets,
        curated_database=curated_database,
        staging_bucket=_physical(listed, "StorageStaging", "AWS::S3::Bucket"),
        raw_bucket=_physical(listed, "StorageRaw", "AWS::S3::Bucket"),
        curated_bucket=_physical(listed, "StorageCurated", "AWS::S3::Bucket"),
        athena_workgroup=workgroup,
    )
    return LakeContext(resources=resources, client_factory=session.client)
