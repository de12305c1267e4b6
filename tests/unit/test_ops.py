"""Operator services: validation and errors before anything is started, against a recording client."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lake.errors import ExecutionNotFailed, LakeError, PartitionNotFound, UnknownDataset
from lake.ops import find_execution, redrive, rerun, validate_partitions

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:Pipeline"


class RecordingStepFunctions:
    """Just the calls the services make, recorded; statuses given per execution."""

    def __init__(self, statuses: dict[str, str] | None = None) -> None:
        self.statuses = statuses or {}
        self.started: list[dict] = []
        self.redriven: list[str] = []

    def start_execution(self, **kwargs):
        self.started.append(kwargs)
        return {"executionArn": f"{MACHINE.replace('stateMachine', 'execution')}:{kwargs['name']}"}

    def describe_execution(self, executionArn):
        return {"status": self.statuses[executionArn]}

    def redrive_execution(self, executionArn):
        self.redriven.append(executionArn)

    def get_paginator(self, name):
        statuses = self.statuses

        class Pages:
            def paginate(self, **_):
                yield {"executions": [{"name": arn.rsplit(":", 1)[-1], "executionArn": arn} for arn in statuses]}

        return Pages()


def test_rerun__starts_one_execution_with_sorted_unique_partitions():
    sfn = RecordingStepFunctions()
    partitions = ["ingest_date=2026-11-25", "ingest_date=2026-11-24", "ingest_date=2026-11-25"]
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    arn = rerun(sfn, MACHINE, dataset="orders", partitions=partitions, known_datasets=["orders"], now=now)
    (call,) = sfn.started
    assert json.loads(call["input"]) == {
        "dataset": "orders", "partitions": ["ingest_date=2026-11-24", "ingest_date=2026-11-25"]}  # fmt: skip
    assert call["name"] == "rerun-orders-20261124T120000-000"
    assert arn.endswith(call["name"])


def test_rerun__unknown_dataset_is_refused():
    sfn = RecordingStepFunctions()
    with pytest.raises(UnknownDataset, match="unknown dataset 'order'; configured: orders"):
        rerun(sfn, MACHINE, dataset="order", partitions=["ingest_date=2026-11-24"], known_datasets=["orders"])
    assert sfn.started == []


@pytest.mark.parametrize("partition", ["2026-11-24", "ingest_date=", "ingest_date=2026/11/24", "a=b,c=d"])
def test_validate_partitions__malformed_is_refused(partition):
    with pytest.raises(PartitionNotFound, match="must look like key=value"):
        validate_partitions([partition])


def test_rerun__partition_without_raw_objects_is_refused():
    sfn = RecordingStepFunctions()
    with pytest.raises(PartitionNotFound, match="no raw objects for orders partition\\(s\\) ingest_date=2026-01-01"):
        rerun(sfn, MACHINE, dataset="orders", partitions=["ingest_date=2026-01-01"], known_datasets=["orders"],
              raw_partition_exists=lambda dataset, partition: False)  # fmt: skip
    assert sfn.started == []


def test_redrive__only_failed_executions():
    failed, running = f"{MACHINE}:exec-failed", f"{MACHINE}:exec-running"
    sfn = RecordingStepFunctions({failed: "FAILED", running: "RUNNING"})
    assert redrive(sfn, failed) == failed
    with pytest.raises(ExecutionNotFailed, match="exec-running is RUNNING"):
        redrive(sfn, running)
    assert sfn.redriven == [failed]


def test_find_execution__by_name_or_arn():
    arn = f"{MACHINE}:run-7"
    sfn = RecordingStepFunctions({arn: "SUCCEEDED"})
    assert find_execution(sfn, MACHINE, "run-7") == arn
    assert find_execution(sfn, MACHINE, arn) == arn
    with pytest.raises(LakeError, match="no execution named 'run-8'"):
        find_execution(sfn, MACHINE, "run-8")


def test_raw_object_key__defaults_to_todays_partition_in_utc():
    from datetime import UTC, datetime

    from lake.ops import raw_object_key

    late_evening = datetime(2026, 11, 24, 23, 59, tzinfo=UTC)
    assert raw_object_key("orders", "ingest_date", None, "a.csv", late_evening) == "orders/ingest_date=2026-11-24/a.csv"
    assert raw_object_key("orders", "ingest_date", "ingest_date=2026-01-02", "a.csv") == (
        "orders/ingest_date=2026-01-02/a.csv"
    )


@pytest.mark.parametrize("partition", ["2026-11-24", "day=2026-11-24", "ingest_date=a/b"])
def test_raw_object_key__refuses_a_partition_the_dataset_does_not_use(partition):
    from lake.errors import PartitionNotFound
    from lake.ops import raw_object_key

    with pytest.raises(PartitionNotFound, match="ingest_date"):
        raw_object_key("orders", "ingest_date", partition, "a.csv")
