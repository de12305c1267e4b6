"""Operator services behind the `lake` command. Each takes injected boto3 clients, so the same code runs
against AWS and against the local emulator (a client whose endpoint is the local cloud)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from lake.errors import ExecutionNotFailed, LakeError, PartitionNotFound, UnknownDataset

PARTITION = re.compile(r"^[a-z][a-z0-9_]*=[^/=,]+$")
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


def list_executions(sfn: Any, state_machine_arn: str, status: str | None = None, limit: int = 20) -> list[dict]:
    kwargs: dict[str, Any] = {"stateMachineArn": state_machine_arn, "maxResults": min(limit, 1000)}
    if status:
        kwargs["statusFilter"] = status
    return sfn.list_executions(**kwargs)["executions"][:limit]


def find_execution(sfn: Any, state_machine_arn: str, name_or_arn: str) -> str:
    """An execution ARN from its name (as notifications print it) or its ARN."""
    if name_or_arn.startswith("arn:"):
        return name_or_arn
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=state_machine_arn):
        for execution in page["executions"]:
            if execution["name"] == name_or_arn:
                return execution["executionArn"]
    raise LakeError(f"no execution named {name_or_arn!r} on {state_machine_arn}")


def validate_partitions(partitions: list[str]) -> list[str]:
    for partition in partitions:
        if not PARTITION.match(partition):
            raise PartitionNotFound(f"partition {partition!r} must look like key=value, e.g. ingest_date=2026-11-24")
    return sorted(set(partitions))


def raw_object_key(
    dataset: str, partition_key: str, partition: str | None, filename: str, now: datetime | None = None
) -> str:
    """`<dataset>/<partition>/<filename>`; without a partition, today's (UTC) `<partition_key>=YYYY-MM-DD`.
    Objects outside partition folders are reported, not processed, so `lake put` never lands one there."""
    if partition is None:
        partition = f"{partition_key}={(now or datetime.now(UTC)):%Y-%m-%d}"
    validate_partitions([partition])
    key = partition.split("=", 1)[0]
    if key != partition_key:
        raise PartitionNotFound(f"dataset {dataset} is partitioned by {partition_key}, not {key} ({partition!r})")
    return f"{dataset}/{partition}/{filename}"


def require_known_dataset(dataset: str, known_datasets: Sequence[str]) -> None:
    if dataset not in known_datasets:
        raise UnknownDataset(f"unknown dataset {dataset!r}; configured: {', '.join(known_datasets)}")


def rerun(
    sfn: Any,
    state_machine_arn: str,
    *,
    dataset: str,
    partitions: list[str],
    known_datasets: list[str],
    raw_partition_exists: Any = None,
    now: datetime | None = None,
) -> str:
    """Start a new execution for the given partitions of one dataset; returns its ARN.

    `raw_partition_exists(dataset, partition) -> bool` lets the caller check the raw zone first, so a
    typo fails here instead of in the ETL job.
    """
    require_known_dataset(dataset, known_datasets)
    partitions = validate_partitions(partitions)
    if raw_partition_exists is not None:
        missing = [p for p in partitions if not raw_partition_exists(dataset, p)]
        if missing:
            raise PartitionNotFound(f"no raw objects for {dataset} partition(s) {', '.join(missing)}")
    now = now or datetime.now(UTC)
    name = f"rerun-{dataset}-{now:%Y%m%dT%H%M%S}-{now.microsecond // 1000:03d}"[:80]
    response = sfn.start_execution(
        stateMachineArn=state_machine_arn,
        name=name,
        input=json.dumps({"dataset": dataset, "partitions": partitions}),
    )
    return response["executionArn"]


def redrive(sfn: Any, execution_arn: str) -> str:
    """Resume a failed execution from the state that failed (RedriveExecution)."""
    status = sfn.describe_execution(executionArn=execution_arn)["status"]
    if status not in FAILED_STATUSES:
        raise ExecutionNotFailed(f"execution {execution_arn.rsplit(':', 1)[-1]} is {status}; only failed, "
                                 "timed-out or aborted executions can be redriven")  # fmt: skip
    sfn.redrive_execution(executionArn=execution_arn)
    return execution_arn
