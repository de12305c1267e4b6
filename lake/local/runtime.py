"""The whole pipeline offline: synthesize the stack, deploy it into the local cloud, and wire the trigger
(rule -> queue -> pipe) and the execution-status rules, which moto does not deliver itself.

The status rules belong to the local cloud, as EventBridge belongs to the account: a background watcher
delivers the status-change event of every execution that ends in a status a rule listens for, whoever
started it (the pipe, `lake --local rerun` from another terminal, a test). `wait()` delivers it at once.

    with LocalPipeline.synthesize(root, stage="local") as pipeline:
        pipeline.put_raw("orders", "ingest_date=2026-11-24", "a.csv", data)
        results = pipeline.drain()
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.storage import LocalStorage
from lake.context import StackResources
from lake.executions import ExecutionResult
from lake.local.cloud import LocalCloud
from lake.local.glue_runtime import SimulatedJob
from lake.local.template import resolved_properties
from lake.local.trigger import (
    LocalTrigger,
    execution_status_event,
    matches_pattern,
    object_created_event,
    render_input_transformer,
    routes_from_template,
)
from workflows.config import StageConfig


@dataclass(frozen=True)
class SynthesizedStack:
    template_path: Path
    assets_manifest: Path
    config: StageConfig

    @property
    def template(self) -> dict:
        return json.loads(self.template_path.read_text())


def synthesize(stage: str, outdir: Path) -> SynthesizedStack:
    """`cdk synth` of one stage into `outdir` (no AWS credentials needed)."""
    from app import build_app

    app, stack, config = build_app({"stage": stage}, outdir=str(outdir), nag=False)
    assembly = app.synth()
    artifact = assembly.get_stack_by_name(stack.stack_name)
    template_path = Path(assembly.directory) / artifact.template_file
    return SynthesizedStack(template_path, Path(assembly.directory) / f"{stack.stack_name}.assets.json", config)


class LocalPipeline:
    """LocalCloud + the offline trigger + the failure-notification rule, for one synthesized stack."""

    def __init__(
        self,
        root: Path,
        stack: SynthesizedStack,
        *,
        simulated_jobs: dict[str, SimulatedJob] | None = None,
        crawl_min_duration_s: float = 0.0,
        status_poll_s: float = 0.5,
    ) -> None:
        self.root = Path(root)
        self.stack = stack
        self.cloud = LocalCloud(
            self.root,
            stack.template_path,
            assets_manifest=stack.assets_manifest,
            simulated_jobs=simulated_jobs,
            crawl_min_duration_s=crawl_min_duration_s,
        )
        self.storage = LocalStorage(self.root)
        self.trigger: LocalTrigger | None = None
        self.status_poll_s = status_poll_s
        self._reported: set[str] = set()
        self._report_lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self.on_execution_ended: Any = None  # optional callback(execution_arn), called once per delivered event

    def __enter__(self) -> LocalPipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=10)
        self.cloud.stop()

    def start(self) -> LocalPipeline:
        self.cloud.start()
        resources = {
            logical_id: {"Type": r["Type"], "Properties": resolved_properties(self.cloud.resolver, logical_id)}
            for logical_id, r in self.cloud.template["Resources"].items()
            if r["Type"] in ("AWS::Events::Rule", "AWS::Pipes::Pipe")
        }
        self._rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
        self.trigger = LocalTrigger(routes_from_template(resources), self._start_from_pipe)
        self._watcher = threading.Thread(target=self._watch_executions, name="status-rules", daemon=True)
        self._watcher.start()
        return self

    # -- names -----------------------------------------------------------------------------------------
    def bucket(self, logical_prefix: str) -> str:
        return self.cloud.physical_name(logical_prefix, "AWS::S3::Bucket")

    @property
    def state_machine_arn(self) -> str:
        return self.cloud.state_machine_arn("PipelineStateMachine")

    def job_name(self, logical_prefix: str) -> str:
        return self.cloud.physical_name(logical_prefix, "AWS::Glue::Job")

    def resources(self) -> StackResources:
        config = self.stack.config
        return StackResources(
            state_machine_arn=self.state_machine_arn,
            datasets=tuple(d.name for d in config.datasets),
            curated_database=config.curated_database_name,
            staging_bucket=self.bucket("StorageStaging"),
            raw_bucket=self.bucket("StorageRaw"),
            curated_bucket=self.bucket("StorageCurated"),
            athena_workgroup=config.athena_workgroup_name,
        )

    # -- inputs ----------------------------------------------------------------------------------------
    def put_raw(self, dataset: str, partition: str | None, name: str, data: bytes) -> str:
        """Land a raw object (folder + emulated S3) and deliver its `Object Created` event to the trigger."""
        key = "/".join(p for p in (dataset, partition, name) if p)
        bucket = self.bucket("StorageRaw")
        self.cloud.put_object(f"s3://{bucket}/{key}", data)
        self.publish(object_created_event(bucket, key, len(data)))
        return key

    def publish(self, event: dict) -> bool:
        assert self.trigger is not None, "start() first"
        return self.trigger.publish(event)

    def _start_from_pipe(self, state_machine_arn: str, payload: str) -> str:
        return self.cloud.client("stepfunctions").start_execution(stateMachineArn=state_machine_arn, input=payload)[
            "executionArn"
        ]

    def start_manual(self, dataset: str, partitions: list[str], name: str | None = None) -> str:
        return self.cloud.start_execution({"dataset": dataset, "partitions": partitions}, "PipelineStateMachine", name)

    # -- running ---------------------------------------------------------------------------------------
    def wait(self, execution_arn: str, timeout: float = 600) -> ExecutionResult:
        """Wait for an execution; its status-change event goes through the status rules, as EventBridge would."""
        result = self.cloud.wait(execution_arn, timeout=timeout)
        self._deliver_status_change(execution_arn)
        return result

    def drain(self, timeout: float = 600) -> list[ExecutionResult]:
        """Flush every pending batch now and wait for the executions it starts."""
        assert self.trigger is not None, "start() first"
        started = self.trigger.flush(force=True)
        deadline = time.monotonic() + timeout
        return [self.wait(arn, timeout=max(1.0, deadline - time.monotonic())) for arn in started]

    def fire_scheduled_triggers(self) -> list[tuple[str, str]]:
        """What Glue does when a SCHEDULED trigger's time comes (the emulator has no clock-driven scheduler): start
        each action's job with the action's arguments over the job's defaults. Returns (job name, run id) pairs."""
        glue = self.cloud.client("glue")
        started = []
        for logical_id, resource in self.cloud.template["Resources"].items():
            if resource["Type"] != "AWS::Glue::Trigger" or not self.cloud.resolver.resource_enabled(logical_id):
                continue
            trigger = resolved_properties(self.cloud.resolver, logical_id)
            if trigger["Type"] != "SCHEDULED":
                continue
            for action in trigger["Actions"]:
                run = glue.start_job_run(JobName=action["JobName"], Arguments=action.get("Arguments", {}))
                started.append((action["JobName"], run["JobRunId"]))
        return started

    def wait_job_run(self, job_name: str, run_id: str, timeout: float = 300) -> dict[str, Any]:
        """The job run once it has ended (SUCCEEDED, FAILED, TIMEOUT, ...)."""
        glue = self.cloud.client("glue")
        deadline = time.monotonic() + timeout
        while True:
            run = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
            if run["JobRunState"] not in ("STARTING", "RUNNING", "WAITING", "STOPPING"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"Glue job run {job_name}/{run_id} still {run['JobRunState']} after {timeout} s")
            time.sleep(0.2)

    # -- execution-status rules ------------------------------------------------------------------------
    def _watched_statuses(self) -> list[str]:
        """The statuses the stack's status-change rules match (only those need watching)."""
        statuses = {
            status
            for rule in self._rules
            if "Step Functions Execution Status Change" in rule["EventPattern"].get("detail-type", [])
            for status in rule["EventPattern"].get("detail", {}).get("status", [])
        }
        return sorted(statuses)

    def _watch_executions(self) -> None:
        while not self._stopping.wait(self.status_poll_s):
            try:
                self.deliver_status_changes()
            except Exception:  # the emulator is stopping or busy; the next poll retries
                continue

    def deliver_status_changes(self) -> list[str]:
        """Deliver the events of executions that ended since the last call; returns their ARNs."""
        sfn = self.cloud.client("stepfunctions")
        delivered = []
        for status in self._watched_statuses():
            pages = sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn, statusFilter=status
            )
            for page in pages:
                for execution in page["executions"]:
                    if self._deliver_status_change(execution["executionArn"]):
                        delivered.append(execution["executionArn"])
        return delivered

    def _deliver_status_change(self, execution_arn: str) -> bool:
        with self._report_lock:
            if execution_arn in self._reported:
                return False
            sfn = self.cloud.client("stepfunctions")
            described = sfn.describe_execution(executionArn=execution_arn)
            if described["status"] == "RUNNING":
                return False
            self._reported.add(execution_arn)
            event = execution_status_event(described, self.state_machine_arn)
            sns = self.cloud.client("sns")
            for rule in self._rules:
                if not matches_pattern(rule["EventPattern"], event):
                    continue
                for target in rule.get("Targets", []):
                    message = render_input_transformer(target["InputTransformer"], event)
                    sns.publish(TopicArn=target["Arn"], Message=message, Subject="[lake] execution failed")
        if self.on_execution_ended is not None:
            self.on_execution_ended(execution_arn)
        return True

    def outbox(self) -> list[dict[str, Any]]:
        return self.cloud.outbox()
