"""`lake show`: what it prints for an execution, from a fake Step Functions client and the run documents."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta

from rich.console import Console

from lake.cli import cmd_show
from lake.context import LakeContext, StackResources

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:DataLake-dev-pipeline"
NAME = "33bf3376-0ed1-4734-b400-e84d9b13ef44"
ARN = f"arn:aws:states:us-east-1:123456789012:execution:DataLake-dev-pipeline:{NAME}"
STAGING = "staging-bucket"
T0 = datetime(2026, 11, 24, 10, tzinfo=UTC)
JOB_ERROR = "AnalysisException: [UNRESOLVED_COLUMN] A column `amount` cannot be resolved"
CAUSE = json.dumps({"JobName": "lake-dev-dq", "Id": "jr_0123", "JobRunState": "FAILED", "ErrorMessage": JOB_ERROR})
QUARANTINED = {
    "object": "s3://raw-bucket/orders/ingest_date=2026-11-24/orders-0003.csv.gz",
    "partition": "ingest_date=2026-11-24",
    "reason": "truncated gzip stream (the file ends before the end of the compressed data)",
}


def _event(seconds: float, kind: str, **details) -> dict:
    return {"timestamp": T0 + timedelta(seconds=seconds), "type": kind, **details}


HISTORY = [
    _event(0, "ExecutionStarted"),
    _event(0.1, "ChoiceStateEntered", stateEnteredEventDetails={"name": "Manual or S3 events?"}),
    _event(0.1, "ChoiceStateExited", stateExitedEventDetails={"name": "Manual or S3 events?", "output": "{}"}),
    _event(0.2, "TaskStateEntered", stateEnteredEventDetails={"name": "Run ETL job"}),
    _event(30.2, "TaskStateExited", stateExitedEventDetails={"name": "Run ETL job", "output": "{}"}),
    _event(30.3, "TaskStateEntered", stateEnteredEventDetails={"name": "Run data quality job"}),
    _event(55.0, "TaskFailed", taskFailedEventDetails={"error": "States.TaskFailed", "cause": CAUSE}),
    _event(55.0, "ExecutionFailed", executionFailedEventDetails={"error": "States.TaskFailed", "cause": CAUSE}),
]


class FakeStepFunctions:
    """The three calls `lake show` makes: find the execution by name, describe it, read its history."""

    def __init__(self) -> None:
        self.described: list[str] = []

    def get_paginator(self, name: str):
        assert name == "list_executions"

        class Pages:
            def paginate(self, stateMachineArn):
                assert stateMachineArn == MACHINE
                yield {"executions": [{"name": "other", "executionArn": f"{ARN}-other"},
                                      {"name": NAME, "executionArn": ARN}]}  # fmt: skip

        return Pages()

    def describe_execution(self, executionArn):
        self.described.append(executionArn)
        return {"executionArn": executionArn, "status": "FAILED", "startDate": T0,
                "stopDate": T0 + timedelta(seconds=55), "error": "States.TaskFailed", "cause": CAUSE,
                "input": json.dumps({"dataset": "orders", "partitions": ["ingest_date=2026-11-24"]})}  # fmt: skip

    def get_execution_history(self, executionArn, maxResults, **_):
        assert executionArn == ARN
        return {"events": HISTORY}


def _show(tmp_path, metrics: dict | None) -> tuple[str, FakeStepFunctions]:
    if metrics is not None:
        path = tmp_path / "lake" / STAGING / "runs" / "orders" / NAME / "etl_metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(metrics))
    sfn = FakeStepFunctions()
    resources = StackResources(state_machine_arn=MACHINE, datasets=("orders",), curated_database="lake_dev_curated",
                               staging_bucket=STAGING, raw_bucket="raw-bucket", curated_bucket="curated-bucket",
                               athena_workgroup="lake-dev")  # fmt: skip
    ctx = LakeContext(resources=resources, client_factory={"stepfunctions": sfn}.__getitem__, local_root=tmp_path)
    console = Console(record=True, width=250)
    assert cmd_show(ctx, argparse.Namespace(execution=NAME), console) == 0
    return console.export_text(), sfn


def test_show__failed_execution_names_the_state_the_glue_error_and_quarantined_objects(tmp_path):
    metrics = {"input_rows": 1632, "output_rows": 1600, "rejected_rows": 12, "duplicates_removed": 20,
               "quarantined_objects": [QUARANTINED]}  # fmt: skip
    text, sfn = _show(tmp_path, metrics)
    assert sfn.described == [ARN]  # found by name among the state machine's executions
    assert f"{NAME} FAILED 55.0 s" in text
    assert "failed at Run data quality job: States.TaskFailed: Glue job lake-dev-dq run jr_0123 FAILED: " \
           f"{JOB_ERROR}" in text  # fmt: skip
    assert "rows: 1632 read, 1600 written, 12 rejected, 20 duplicates removed" in text
    assert "quarantined objects (1, not processed)" in text
    (row,) = [line for line in text.splitlines() if QUARANTINED["object"] in line]
    assert QUARANTINED["partition"] in row and QUARANTINED["reason"] in row
    assert '"dataset": "orders"' in text


def test_show__without_run_documents_prints_the_execution_only(tmp_path):
    text, _ = _show(tmp_path, None)
    assert "failed at Run data quality job" in text
    assert "rows:" not in text and "quarantined objects" not in text
