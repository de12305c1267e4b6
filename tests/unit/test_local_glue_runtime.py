"""lake.local.glue_runtime: moto's StartJobRun runs a real local script (or a simulated policy)."""

from __future__ import annotations

import json
import textwrap

import pytest

from lake.local import moto_compat
from lake.local.emulator import Emulator
from lake.local.glue_runtime import GlueRuntime, SimulatedJob, _last_exception_line

SCRIPT = textwrap.dedent(
    """
    import sys, json, time
    from etl.session import parse_job_args
    from etl.storage import LocalStorage
    from pathlib import Path
    import boto3
    args = parse_job_args(sys.argv[1:], ["lake_root", "JOB_NAME", "JOB_RUN_ID"], ["mode", "fixed"])
    if args.get("mode") == "fail":
        raise ValueError("bad input file s3://raw/x.csv")
    if args.get("mode") == "sleep":
        time.sleep(30)
    buckets = [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    LocalStorage(Path(args["lake_root"])).write_text(
        f"s3://staging/runs/{args['JOB_RUN_ID']}/result.json", json.dumps({"args": args, "buckets": buckets})
    )
    """
)


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def glue(emu, tmp_path):
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "job.py").write_text(SCRIPT)
    emu.client("s3").create_bucket(Bucket="staging")
    runtime = GlueRuntime(
        tmp_path,
        emu.endpoint_url,
        simulated={
            "sim-ok": SimulatedJob(0.2),
            "sim-busy": SimulatedJob(0.0, reject_starts=1),
            "sim-fail": SimulatedJob(0.0, "FAILED", "RuntimeError: boom"),
        },
        minute_s=1.0,
    ).install()
    client = emu.client("glue")
    yield client, runtime
    runtime.join()
    runtime.uninstall()
    for job in client.get_jobs()["Jobs"]:
        client.delete_job(JobName=job["Name"])


def _create(client, name, **extra):
    client.create_job(
        Name=name,
        Role="r",
        Command={"Name": "glueetl", "ScriptLocation": "s3://assets/job.py"},
        DefaultArguments={"--mode": "ok", "--fixed": "default"},
        **extra,
    )


def _wait(client, name, run_id, timeout=60):
    def done():
        return client.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"] not in (
            "RUNNING",
            "STARTING",
        )

    assert moto_compat.wait_until(done, timeout=timeout, interval=0.1)
    return client.get_job_run(JobName=name, RunId=run_id)["JobRun"]


def test_start_job_run__runs_script_with_merged_arguments(glue, emu, tmp_path):
    client, _ = glue
    _create(client, "real")
    run_id = client.start_job_run(JobName="real", Arguments={"--fixed": "override"})["JobRunId"]
    assert client.get_job_run(JobName="real", RunId=run_id)["JobRun"]["JobRunState"] == "RUNNING"
    run = _wait(client, "real", run_id)
    assert run["JobRunState"] == "SUCCEEDED", (
        tmp_path / "_logs" / "glue" / "real" / f"{run_id}.log"
    ).read_text()
    assert run["CompletedOn"] >= run["StartedOn"]
    assert run["ExecutionTime"] >= 0
    written = json.loads((tmp_path / "staging" / "runs" / run_id / "result.json").read_text())
    assert written["args"] == {
        "lake_root": str(tmp_path),
        "JOB_NAME": "real",
        "JOB_RUN_ID": run_id,
        "mode": "ok",
        "fixed": "override",
    }
    assert "staging" in written["buckets"]  # the job's boto3 reached the emulator
    mirrored = emu.client("s3").get_object(Bucket="staging", Key=f"runs/{run_id}/result.json")["Body"].read()
    assert json.loads(mirrored) == written


def test_start_job_run__failure_reports_last_exception_line(glue, tmp_path):
    client, _ = glue
    _create(client, "failing")
    run_id = client.start_job_run(JobName="failing", Arguments={"--mode": "fail"})["JobRunId"]
    run = _wait(client, "failing", run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: bad input file s3://raw/x.csv"
    assert "Traceback" in (tmp_path / "_logs" / "glue" / "failing" / f"{run_id}.log").read_text()


def test_start_job_run__timeout_kills_the_run(glue):
    client, _ = glue
    _create(client, "slow", Timeout=1)  # minute_s=1.0: one "minute" is one second
    run_id = client.start_job_run(JobName="slow", Arguments={"--mode": "sleep"})["JobRunId"]
    assert _wait(client, "slow", run_id)["JobRunState"] == "TIMEOUT"


def test_start_job_run__max_concurrent_runs_enforced(glue):
    client, _ = glue
    _create(client, "sim-ok", ExecutionProperty={"MaxConcurrentRuns": 1})
    first = client.start_job_run(JobName="sim-ok")["JobRunId"]
    with pytest.raises(client.exceptions.ConcurrentRunsExceededException):
        client.start_job_run(JobName="sim-ok")
    assert _wait(client, "sim-ok", first)["JobRunState"] == "SUCCEEDED"
    second = client.start_job_run(JobName="sim-ok")["JobRunId"]
    assert _wait(client, "sim-ok", second)["JobRunState"] == "SUCCEEDED"


def test_start_job_run__simulated_rejection_then_failure(glue):
    client, _ = glue
    _create(client, "sim-busy")
    _create(client, "sim-fail")
    with pytest.raises(client.exceptions.ConcurrentRunsExceededException):
        client.start_job_run(JobName="sim-busy")
    run_id = client.start_job_run(JobName="sim-busy")["JobRunId"]
    assert _wait(client, "sim-busy", run_id)["JobRunState"] == "SUCCEEDED"
    failed = _wait(client, "sim-fail", client.start_job_run(JobName="sim-fail")["JobRunId"])
    assert (failed["JobRunState"], failed["ErrorMessage"]) == ("FAILED", "RuntimeError: boom")


def test_glue_start_job_run_sync__failed_run_fails_task_with_cause(glue, emu):
    client, _ = glue
    _create(client, "sim-fail")
    from lake.executions import run_definition

    definition = {
        "StartAt": "Run",
        "States": {
            "Run": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": "sim-fail"},
                "End": True,
            }
        },
    }
    result = run_definition(emu.client("stepfunctions"), definition, timeout=30)
    assert result.status == "FAILED"
    assert result.error == "States.TaskFailed"
    assert json.loads(result.cause)["ErrorMessage"] == "RuntimeError: boom"
    assert result.states[0].error == "States.TaskFailed"


def test_last_exception_line__picks_last_traceback():
    text = "log\nTraceback (most recent call last):\n  File x\nKeyError: 'a'\nmore\n"
    assert _last_exception_line(text) == "KeyError: 'a'"
    assert _last_exception_line("just a line\n") == "just a line"
