"""Operator services behind the `lake` command. Each takes injected boto3 clients, so the same code runs
against AWS and against the local emulator (a client whose endpoint is the local cloud)."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lake.errors import ExecutionNotFailed, LakeError, PartitionNotFound, UnknownDataset

PARTITION = re.compile(r"^[a-z][a-z0-9_]*=[^/=,]+$")
FAILED_STATUSES = ("FAILED", "TIMED_OUT", "ABORTED")


@dataclass(frozen=True)
class StateRun:
    """One state's visit in an execution, as the console's graph/table shows it."""

    name: str
    type: str
    entered: datetime
    exited: datetime | None
    error: str | None = None
    cause: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds()

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class ExecutionView:
    name: str
    arn: str
    status: str
    started: datetime
    stopped: datetime | None
    input: Any
    output: Any
    states: list[StateRun] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None

    @property
    def failed_state(self) -> StateRun | None:
        return next((s for s in reversed(self.states) if s.failed), None)

    @property
    def seconds(self) -> float | None:
        return None if self.stopped is None else (self.stopped - self.started).total_seconds()


def _json(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _history(sfn: Any, execution_arn: str) -> list[dict]:
    events: list[dict] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=execution_arn):
        events.extend(page["events"])
    return events


_FAILURE_EVENTS = ("TaskFailed", "TaskTimedOut", "ExecutionFailed", "MapStateFailed", "LambdaFunctionFailed")


def states_from_history(events: list[dict]) -> list[StateRun]:
    """Turn Step Functions history events into per-state visits (top-level states and map iterations)."""
    runs: list[dict] = []
    open_runs: dict[str, dict] = {}
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            details = event.get("stateEnteredEventDetails", {})
            run = {"name": details.get("name"), "type": kind[: -len("StateEntered")], "entered": event["timestamp"]}
            runs.append(run)
            open_runs[run["name"]] = run
        elif kind.endswith("StateExited"):
            name = event.get("stateExitedEventDetails", {}).get("name")
            if name in open_runs:
                open_runs.pop(name)["exited"] = event["timestamp"]
        elif kind in _FAILURE_EVENTS or kind.endswith("Failed"):
            details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
            target = runs[-1] if runs else None
            if target is not None and "error" not in target:
                target["error"] = details.get("error", kind)
                target["cause"] = details.get("cause")
    return [
        StateRun(
            name=r["name"], type=r["type"], entered=r["entered"], exited=r.get("exited"),
            error=r.get("error"), cause=r.get("cause"),
        )
        for r in runs
    ]  # fmt: skip


def describe_execution(sfn: Any, execution_arn: str) -> ExecutionView:
    described = sfn.describe_execution(executionArn=execution_arn)
    return ExecutionView(
        name=described["name"],
        arn=execution_arn,
        status=described["status"],
        started=described["startDate"],
        stopped=described.get("stopDate"),
        input=_json(described.get("input")),
        output=_json(described.get("output")),
        states=states_from_history(_history(sfn, execution_arn)),
        error=described.get("error"),
        cause=described.get("cause"),
    )


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
    if dataset not in known_datasets:
        raise UnknownDataset(f"unknown dataset {dataset!r}; configured: {', '.join(known_datasets)}")
    partitions = validate_partitions(partitions)
    if raw_partition_exists is not None:
        missing = [p for p in partitions if not raw_partition_exists(dataset, p)]
        if missing:
            raise PartitionNotFound(f"no raw objects for {dataset} partition(s) {', '.join(missing)}")
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    name = f"rerun-{dataset}-{stamp}-{int(time.time() * 1000) % 1000:03d}"[:80]
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


def wait_for_execution(sfn: Any, execution_arn: str, timeout_s: float = 900, poll_s: float = 0.5) -> str:
    deadline = time.monotonic() + timeout_s
    while True:
        status = sfn.describe_execution(executionArn=execution_arn)["status"]
        if status != "RUNNING":
            return status
        if time.monotonic() > deadline:
            raise LakeError(f"execution {execution_arn} still RUNNING after {timeout_s:.0f} s")
        time.sleep(poll_s)
