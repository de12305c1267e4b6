"""Burst benchmark: N raw files over T seconds across P partitions, through the real offline trigger path.

    python bench/burst.py [--files 600] [--seconds 60] [--partitions 10] [--quick]

put_raw -> rule -> queue -> batching window (the `local` stage: 2 s) -> one execution per batch -> the
synthesized state machine in the emulator -> the real crawler (DuckDB, tiny files) -> simulated Glue ETL and
DQ jobs (no Spark). `trigger.flush()` runs every 0.5 s, as `lake up` does. Afterwards a sample of the same
files is re-run the naive way (one execution per file: a Pipe batch of one record) to measure its
transitions per execution. Before the burst the real ETL and DQ jobs are measured on real Spark
(bench/job_model.py: fixed cost, seconds per batch row, seconds per published row a batch merges onto), so the
job durations of the cost model come from this machine, not from a constant. Prints what was measured offline,
then a monthly cost, batched vs naive, at 10,000 files/hour over 10 daily partitions with the dev stage's 60 s
window, with every run of a day priced as its partitions grow (extrapolated; assumptions named).

Not a test: nothing is asserted; the goals are printed with PASS/MISS.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import re
import shutil
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from bench.job_model import JobModel, calibrate  # noqa: E402
from etl import transforms as tf  # noqa: E402
from etl.footers import Footer  # noqa: E402
from etl.snapshot import COMPACT_BUDGET_ROWS, PublishedFile, Snapshot, plan_compaction  # noqa: E402
from etl.spec import load_dataset  # noqa: E402
from etl.storage import LocalStorage  # noqa: E402
from etl.vacuum import QUERY_GRACE, min_keep_days  # noqa: E402
from lake.executions import ExecutionResult  # noqa: E402
from lake.local import crawler as local_crawler  # noqa: E402
from lake.local.glue_runtime import SimulatedJob  # noqa: E402
from lake.local.runtime import LocalPipeline, synthesize  # noqa: E402
from lake.local.simulated import dq_result_writer  # noqa: E402
from lake.local.template import physical_resources  # noqa: E402
from lake.local.trigger import object_created_event, pipe_payload, sqs_record  # noqa: E402
from workflows.config import load_stage  # noqa: E402

WORK = ROOT / "build" / "bench" / "burst"
HEADER = "order_id,customer_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
FLUSH_EVERY_S = 0.5  # lake/up.py polls and flushes every 0.5 s

# -- public list prices, us-east-1 ----------------------------------------------------------------------------
# Taken 2026-11-24 from (not re-fetched in this offline run; re-check before quoting a figure):
#   https://aws.amazon.com/step-functions/pricing/   https://aws.amazon.com/glue/pricing/
#   https://aws.amazon.com/eventbridge/pricing/      https://aws.amazon.com/sqs/pricing/
#   https://aws.amazon.com/sns/pricing/              https://aws.amazon.com/cloudwatch/pricing/
SFN_STANDARD_PER_TRANSITION = 0.025 / 1_000  # Step Functions Standard, per state transition
GLUE_PER_DPU_HOUR = 0.44  # crawlers and Spark jobs alike
CRAWLER_MIN_BILLED_S = 600  # crawlers: billed per second, 10-minute minimum per crawl
CRAWLER_DPUS = 2  # ASSUMPTION: a crawler's DPUs are not published; the pricing page's example uses 2
JOB_MIN_BILLED_S = 60  # Glue 2.0+ Spark jobs: billed per second, 1-minute minimum
EVENTBRIDGE_AWS_SERVICE_EVENT = 0.0  # S3 -> default bus -> rule: AWS service events are free
PIPES_PER_REQUEST = 0.40 / 1_000_000  # each event entering the pipe, per 64 KB chunk
PIPES_CHUNK_BYTES = 64 * 1024
SQS_PER_REQUEST = 0.40 / 1_000_000  # standard queue, per API request per 64 KB chunk (after the free tier)
SQS_MAX_MESSAGES_PER_RECEIVE = 10  # ReceiveMessage / DeleteMessageBatch carry at most 10 messages
SNS_PER_PUBLISH = 0.50 / 1_000_000  # per publish (64 KB chunk), after the first million
SNS_PER_EMAIL = 2.00 / 100_000  # per email delivery
CLOUDWATCH_PER_PUT_METRIC_DATA = 0.01 / 1_000  # PutMetricData requests
SFN_MAX_INPUT_BYTES = 256 * 1024  # StartExecution input quota (the Pipe sends the whole batch as input)
#   https://aws.amazon.com/s3/pricing/ (S3 Standard, first 50 TB)
S3_PER_GB_MONTH = 0.023
S3_PER_PUT_COPY_REQUEST = 0.005 / 1_000  # PUT, COPY, POST and LIST requests
HOURS_PER_MONTH = 730

# -- the target and what AWS durations are assumed (not measurable offline) ----------------------------
TARGET_FILES_PER_HOUR = 10_000
TARGET_PARTITIONS = 10
# ASSUMPTION: daily partitions (ingest_date=YYYY-MM-DD), so each of the partitions is new once a day. The state
# machine crawls only for batches that hold a partition the raw table does not know yet.
NEW_PARTITIONS_PER_HOUR = TARGET_PARTITIONS / 24
ASSUMED_UPDATES = "recent"  # ASSUMPTION: the orders a batch updates are recent ones (bench/incremental.py feeds)
ASSUMED_AWS_CRAWL_S = 60  # ASSUMPTION: an incremental crawl of a few new folders on AWS
# ASSUMPTION: rows per landed file at the target rate (the burst's own files hold one row each). Job durations
# come from bench/job_model.py: the real ETL and DQ jobs measured in this process, scaled to the stage's workers.
ASSUMED_ROWS_PER_FILE = 1_000
DPUS_PER_WORKER = {"G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8}  # https://aws.amazon.com/glue/pricing/

# State names by how they scale (see workflows/pipeline.py).
PER_RECORD_STATES: set[str] = set()  # "Read object events" classifies a whole batch in one JSONata state
PER_PARTITION_STATES = {"Get partition", "Create partition", "Switch partition"}
CRAWL_LOOP_STATES = {"Start crawler", "Wait for crawl", "Get crawler", "Count poll", "Crawler READY?",
                     "Crawl already running", "Restart crawler"}  # fmt: skip
STATES_PER_POLL = 4  # Wait for crawl, Get crawler, Count poll, Crawler READY?


# -- simulated Glue jobs --------------------------------------------------------------------------------------


class CrawlerProbe:
    """Counts StartCrawler outcomes and crawl durations by wrapping the local crawler runtime's instance methods.

    The emulator's crawler re-reads every file of the dataset on every crawl (O(all files), ~25 ms per file with
    DuckDB, more under load), while the deployed crawler (RecrawlPolicy CRAWL_NEW_FOLDERS_ONLY) reads only new
    folders. `schema_cache`: "folder" infers a folder's columns once (what CRAWL_NEW_FOLDERS_ONLY does; the
    default), "file" once per unchanged file, "none" leaves the emulator as it is.
    """

    def __init__(self, pipeline: LocalPipeline, schema_cache: str) -> None:
        runtime = pipeline.cloud.crawler_runtime
        assert runtime is not None
        self.phase = "burst"
        self.starts: Counter[tuple[str, str]] = Counter()  # (phase, "started"|"busy")
        self.durations: dict[str, list[float]] = defaultdict(list)
        self._lock = threading.Lock()
        start, crawl_once = runtime.start, runtime.crawl_once

        def counted_start(crawler: Any) -> None:
            try:
                start(crawler)
            except Exception:
                with self._lock:
                    self.starts[(self.phase, "busy")] += 1
                raise
            with self._lock:
                self.starts[(self.phase, "started")] += 1

        def timed_crawl(crawler: Any) -> None:
            began = time.monotonic()
            try:
                crawl_once(crawler)
            finally:
                with self._lock:
                    self.durations[self.phase].append(time.monotonic() - began)

        runtime.start, runtime.crawl_once = counted_start, timed_crawl
        if schema_cache != "none":
            infer, cache = local_crawler.infer_columns, {}

            def cached(path: Path, classification: str) -> list[tuple[str, str]]:
                stat = path.stat()
                key: tuple = (str(path.parent), classification)
                if schema_cache == "file":
                    key = (str(path), stat.st_mtime_ns, stat.st_size, classification)
                if key not in cache:
                    cache[key] = infer(path, classification)
                return cache[key]

            local_crawler.infer_columns = cached  # looked up as a module global by the crawler


# -- driving the burst ----------------------------------------------------------------------------------------
def csv_file(index: int, partition: str) -> bytes:
    day = partition.split("=", 1)[1]
    row = f"o-{index:07d},c-{index % 997:05d},{day} 10:00:00,paid,EUR,{index % 500 + 1}.50,1,DE,{day} 10:00:00\n"
    return (HEADER + row).encode()


def land_burst(pipeline: LocalPipeline, files: int, seconds: float, partitions: list[str],
               ) -> tuple[dict[str, str], list[str], float]:  # fmt: skip
    """Land `files` objects evenly over `seconds`, flushing the trigger every 0.5 s; then let the last window
    close. Returns ({key: partition}, started execution ARNs, landing seconds)."""
    assert pipeline.trigger is not None
    rng = random.Random(20261124)
    landed: dict[str, str] = {}
    started: list[str] = []
    begin = time.monotonic()
    next_flush = begin + FLUSH_EVERY_S
    for index in range(files):
        due = begin + index * seconds / files
        while (now := time.monotonic()) < due or now >= next_flush:
            if now >= next_flush:
                started += pipeline.trigger.flush()
                next_flush += FLUSH_EVERY_S
                continue
            time.sleep(min(due, next_flush) - now)
        partition = partitions[rng.randrange(len(partitions))]
        key = pipeline.put_raw("orders", partition, f"burst-{index:06d}.csv", csv_file(index, partition))
        landed[key] = partition
    landing_s = time.monotonic() - begin
    while any(route.pending for route in pipeline.trigger.routes):
        time.sleep(max(0.0, next_flush - time.monotonic()))
        started += pipeline.trigger.flush()
        next_flush += FLUSH_EVERY_S
    return landed, started, landing_s


def wait_all(pipeline: LocalPipeline, arns: list[str], timeout: float) -> list[ExecutionResult]:
    deadline = time.monotonic() + timeout
    results = []
    for arn in arns:
        try:
            results.append(pipeline.wait(arn, timeout=max(1.0, deadline - time.monotonic())))
        except TimeoutError as error:
            results.append(ExecutionResult(arn=arn, status="STILL_RUNNING", error=str(error)))
    return results


def run_naive_sample(pipeline: LocalPipeline, landed: dict[str, str], sample: int) -> list[ExecutionResult]:
    """One execution per file, as a Pipe with BatchSize 1 would start it; sequential (no contention)."""
    assert pipeline.trigger is not None
    sfn = pipeline.cloud.client("stepfunctions")
    bucket = pipeline.bucket("StorageRaw")
    queue_arn = pipeline.trigger.routes[0].queue_arn
    keys = sorted(landed)
    chosen = [keys[i * len(keys) // sample] for i in range(sample)]
    results = []
    for key in chosen:
        size = len(LocalStorage(pipeline.root).local_path(f"s3://{bucket}/{key}").read_bytes())
        record = sqs_record(object_created_event(bucket, key, size), queue_arn)
        payload = pipe_payload([record], pipeline.trigger.routes[0].input_template)
        arn = sfn.start_execution(stateMachineArn=pipeline.state_machine_arn, input=payload)
        results.append(pipeline.wait(arn["executionArn"], timeout=120))
    return results


# -- measuring ------------------------------------------------------------------------------------------------
def job_runs(pipeline: LocalPipeline, job_name: str) -> list[dict]:
    glue = pipeline.cloud.client("glue")
    runs, kwargs = [], {"JobName": job_name}
    while True:
        page = glue.get_job_runs(**kwargs)
        runs += page["JobRuns"]
        if not page.get("NextToken"):
            return runs
        kwargs["NextToken"] = page["NextToken"]


def keys_of(result: ExecutionResult) -> list[str]:
    records = result.input if isinstance(result.input, list) else []
    return [r["key"] for r in records]


def state_profile(results: list[ExecutionResult]) -> dict[str, float]:
    """Mean states per execution by category, and per-record / per-partition rates."""
    per_record = per_partition = loop = fixed = polls = records = parts = 0
    for result in results:
        names = result.visited
        per_record += sum(n in PER_RECORD_STATES for n in names)
        per_partition += sum(n in PER_PARTITION_STATES for n in names)
        loop += sum(n in CRAWL_LOOP_STATES for n in names)
        polls += names.count("Get crawler")
        fixed += sum(n not in PER_RECORD_STATES | PER_PARTITION_STATES | CRAWL_LOOP_STATES for n in names)
        records += len(result.input) if isinstance(result.input, list) else 0
        parts += len({k.split("/")[1] for k in keys_of(result)})
    n = max(1, len(results))
    return {
        "executions": len(results), "transitions": sum(len(r.visited) for r in results),
        "fixed": fixed / n, "crawl_loop": loop / n, "polls": polls / n,
        "per_record": per_record / max(1, records), "per_partition": per_partition / max(1, parts),
        "records": records / n, "partitions": parts / n,
    }  # fmt: skip


def max_in_window(times: list[float], window_s: float) -> int:
    times, best, low = sorted(times), 0, 0
    for high, t in enumerate(times):
        while t - times[low] >= window_s:
            low += 1
        best = max(best, high - low + 1)
    return best


def analyse(pipeline: LocalPipeline, landed: dict[str, str], batched: list[ExecutionResult], etl_runs: list[dict],
            dq_runs: list[dict], window_s: float) -> dict[str, Any]:  # fmt: skip
    names = {r.name for r in batched}
    etl = [r for r in etl_runs if r["Arguments"].get("--run_id") in names]
    dq = [r for r in dq_runs if r["Arguments"].get("--run_id") in names]
    etl_by_execution = Counter(r["Arguments"]["--run_id"] for r in etl)
    etl_partitions = {r["Arguments"]["--run_id"]: json.loads(r["Arguments"]["--partitions"]) for r in etl}
    seen: Counter[str] = Counter()
    uncovered = 0
    for result in batched:
        if result.status != "SUCCEEDED":
            continue
        covered = set(etl_partitions.get(result.name, []))
        for key in keys_of(result):
            seen[key] += 1
            uncovered += landed.get(key) not in covered
    starts_by_partition: dict[str, list[float]] = defaultdict(list)
    for run in etl:
        for partition in json.loads(run["Arguments"]["--partitions"]):
            starts_by_partition[partition].append(run["StartedOn"].timestamp())
    input_bytes = [len(json.dumps(r.input)) for r in batched if isinstance(r.input, list) and r.input]
    records = [len(r.input) for r in batched if isinstance(r.input, list) and r.input]
    return {
        "failed": [r for r in batched if r.status != "SUCCEEDED"],
        "etl_runs": len(etl), "dq_runs": len(dq),
        "max_etl_per_execution": max(etl_by_execution.values(), default=0),
        "max_partition_repeats_in_run": max((Counter(p).most_common(1)[0][1] for p in etl_partitions.values()
                                             if p), default=0),
        "max_etl_per_partition_in_window": max((max_in_window(t, window_s) for t in starts_by_partition.values()),
                                               default=0),
        "etl_partition_runs": sum(len(p) for p in etl_partitions.values()),
        "once": sum(1 for k in landed if seen[k] == 1), "lost": sum(1 for k in landed if seen[k] == 0),
        "double": sum(1 for k in landed if seen[k] > 1), "uncovered": uncovered,
        "bytes_per_record": sum(input_bytes) / max(1, sum(records)), "max_input_bytes": max(input_bytes, default=0),
        "max_records": max(records, default=0),
    }  # fmt: skip


# -- cost model -----------------------------------------------------------------------------------------------
def vacuum_hour(stage: Any) -> float:
    """The UTC hour of day the stage's scheduled vacuum runs (a daily Glue cron, `vacuum_schedule`)."""
    daily = re.fullmatch(r"cron\((\d+) (\d+) \* \* \? \*\)", stage.vacuum_schedule or "")
    if not daily:
        raise SystemExit(f"bench/burst.py prices a daily vacuum; stage {stage.name} has vacuum_schedule "
                         f"{stage.vacuum_schedule!r}")  # fmt: skip
    return int(daily[2]) + int(daily[1]) / 60


def recent_feed_file_runs(runs: int, rows_per_run: float, part_files: int) -> list[dict[str, float]]:
    """Per run of one partition fed by `recent` updates: the published files it COPYs, the files it writes and the
    rows it compacts. Each run writes its batch (`part_files` files), rewrites the previous run's batch files (they
    hold the orders it updates) and leaves the rest untouched, of which the real `etl.snapshot.plan_compaction`
    picks what to compact into one file; the rest is copied."""
    spec = load_dataset(ROOT / "datasets" / "orders")
    footer = lambda rows: Footer("", int(rows), None, {})  # noqa: E731
    published: list[PublishedFile] = []
    newest: list[PublishedFile] = []  # the previous run's batch files: the ones this run's updates touch
    out = []
    for k in range(runs):
        own = [PublishedFile(f"own-{k}-{i}", footer(rows_per_run / part_files), 0, False) for i in range(part_files)]
        if not published:
            out.append({"copies": 0, "puts": part_files, "compacted_rows": 0})
            published, newest = own, own
            continue
        touched = {f.uri for f in newest}
        # The budget is shared by a run's partitions; each partition is given all of it here (at the target all
        # 10 reach a tier's 8 files in the same run, and the run compacts 7 of them, the next run the other 3).
        snapshot_ = plan_compaction(Snapshot("p", "", tuple(replace(f, touched=f.uri in touched) for f in published)),
                                    COMPACT_BUDGET_ROWS, spec)  # fmt: skip
        compacted = sum(f.rows for f in snapshot_.compacted)
        merged = [PublishedFile(f"compacted-{k}", footer(compacted), 0, False)] if compacted else []
        rewritten = [PublishedFile(f"rewritten-{k}-{i}", f.footer, 0, False) for i, f in enumerate(newest)]
        out.append({"copies": len(snapshot_.copied), "puts": len(own) + len(rewritten) + len(merged),
                    "compacted_rows": compacted})  # fmt: skip
        published, newest = [*snapshot_.copied, *merged, *rewritten, *own], own
    return out


def superseded_current_days(hour: float, proven_after_h: float, vacuum_at: float) -> float:
    """Days a run folder written at `hour` (UTC, of its partition's day) stays a current object once superseded:
    the vacuum deletes it at its first daily run QUERY_GRACE after the manifests prove it superseded (etl/vacuum.py)."""
    releasable = hour + proven_after_h + QUERY_GRACE.total_seconds() / 3600
    return (vacuum_at + 24 * math.ceil((releasable - vacuum_at) / 24) - hour) / 24


def day_of_job_runs(model: JobModel, stage: Any, executions_per_hour: float, partitions_per_execution: int,
                    files_per_hour: float, partitions: int, merge: str) -> dict[str, Any]:  # fmt: skip
    """ETL and DQ seconds on AWS of every execution of one day, while its daily partitions grow from empty (at
    midnight) to a day's rows. `merge`: each run parses its batch and merges it onto the published snapshot
    (today's design), rewriting the published files that hold keys it updates: about one batch of rows when the
    updates are of recent orders (`recent`), every published row when they are spread over the day (`spread`);
    or (`full`) it re-reads every object of its partitions (before batch manifests)."""
    rows_per_partition_hour = files_per_hour / partitions * ASSUMED_ROWS_PER_FILE
    batch_rows = files_per_hour / executions_per_hour * ASSUMED_ROWS_PER_FILE
    executions = max(1, round(24 * executions_per_hour))
    cores = model.aws_cores(stage.etl_worker_type, stage.etl_number_of_workers)
    part_files = tf.write_tasks(round(batch_rows), cores)  # a part spans the run's partitions: files per folder
    etl, dq, requests, written, stored = [], [], 0.0, 0.0, 0.0
    # A partition's run folder is proven superseded once the manifest of the run after next is written (the one
    # before the day's last by the last one's lake_published_at); the day's last folder stays published.
    runs_per_partition = executions * partitions_per_execution / partitions
    proven_after_h = 2 / executions_per_hour * partitions / partitions_per_execution
    vacuum_at, keep_days = vacuum_hour(stage), min_keep_days(stage.execution_timeout_minutes)
    files = recent_feed_file_runs(math.ceil(runs_per_partition), batch_rows / partitions_per_execution, part_files)
    compacted_rows = 0.0
    for n in range(executions):
        published = n / executions_per_hour * rows_per_partition_hour * partitions_per_execution
        rewritten = {"recent": min(published, batch_rows), "spread": published, "full": 0}[merge]
        parsed, carried = (batch_rows + published, 0) if merge == "full" else (batch_rows, published)
        runs_before = n * partitions_per_execution / partitions
        recent = files[int(runs_before)]
        # Compaction rows priced like rewritten rows (read, merged, written), though they skip the merge.
        compacting = recent["compacted_rows"] * partitions_per_execution if merge == "recent" else 0.0
        compacted_rows += compacting
        local = model.etl_local_s(parsed, carried, rewritten + compacting)
        etl.append(model.on_aws(local, stage.etl_worker_type, stage.etl_number_of_workers))
        # Rows the DQ job scans: a compacted file is new to it (its statistics are kept per file).
        fresh = batch_rows + (published if merge == "full" else rewritten + compacting)
        dq.append(model.on_aws(model.dq_local_s(fresh, batch_rows + published - fresh), stage.dq_worker_type,
                               stage.dq_number_of_workers))  # fmt: skip
        # Curated S3 per partition of the run: every run writes a whole new folder (etl/snapshot.py). With recent
        # updates it writes its batch's files, the rewritten previous batch's and a compacted file now and then, and
        # COPYs every other published file (`recent_feed_file_runs`). Updates spread over the day rewrite every
        # file, and a full reprocessing writes all anew.
        if merge == "recent":
            copies, puts = recent["copies"], recent["puts"]
        else:
            copies, puts = 0.0, part_files * (2 if published and merge != "full" else 1)
        requests += (copies + puts) * partitions_per_execution
        folder_bytes = (published + batch_rows) * model.curated_bytes_per_row  # `published`: over its partitions
        written += folder_bytes
        position = (n + 1) * partitions_per_execution / partitions  # this run's folders are the partitions' k-th
        if position > runs_per_partition - 1:
            current_days = 0.0  # published, not superseded
        elif merge == "full":  # no manifest names a folder: the vacuum cannot tell superseded from failed candidates
            current_days = keep_days
        else:
            current_days = superseded_current_days(n / executions_per_hour, proven_after_h, vacuum_at)
        if current_days:  # byte-days a day's folders stay stored: the steady-state bytes they occupy
            stored += folder_bytes * (current_days + stage.curated_noncurrent_days)
    return {"etl_s": etl, "dq_s": dq, "batch_rows": batch_rows,
            "partition_rows_at_midnight": 24 * rows_per_partition_hour,
            "s3_requests_per_day": requests, "curated_bytes_written_per_day": written, "files_per_part": part_files,
            "superseded_bytes_stored": stored, "compacted_rows_per_day": compacted_rows,
            "max_files_copied": max(f["copies"] for f in files) if merge == "recent" else 0,
            "published_bytes_per_day": files_per_hour * 24 * ASSUMED_ROWS_PER_FILE * model.curated_bytes_per_row}


def billed_dpu_hours(seconds: list[float], worker_type: str, workers: int) -> float:
    """Mean DPU-hours billed per run: per second, at least a minute."""
    dpus = DPUS_PER_WORKER[worker_type] * workers
    return sum(max(JOB_MIN_BILLED_S, s) for s in seconds) / len(seconds) * dpus / 3600


def monthly_cost(executions_per_hour: float, records_per_execution: float, partitions_per_execution: float,
                 profile: dict[str, float], poll_interval_s: float, pipe_batch: int, bytes_per_record: float,
                 runs: dict[str, Any], stage: Any) -> dict[str, float]:  # fmt: skip
    """USD per month for one design, from measured state counts and the day of job runs (`day_of_job_runs`)."""
    polls = math.ceil(ASSUMED_AWS_CRAWL_S / poll_interval_s)
    crawls_per_hour = min(executions_per_hour, NEW_PARTITIONS_PER_HOUR)
    crawl_share = crawls_per_hour / executions_per_hour
    transitions = (profile["fixed"] + profile["per_record"] * records_per_execution
                   + profile["per_partition"] * partitions_per_execution
                   + crawl_share * (1 + STATES_PER_POLL * polls))
    files = TARGET_FILES_PER_HOUR
    etl_run = billed_dpu_hours(runs["etl_s"], stage.etl_worker_type, stage.etl_number_of_workers) * GLUE_PER_DPU_HOUR
    dq_run = billed_dpu_hours(runs["dq_s"], stage.dq_worker_type, stage.dq_number_of_workers) * GLUE_PER_DPU_HOUR
    crawl = CRAWLER_DPUS * max(CRAWLER_MIN_BILLED_S, ASSUMED_AWS_CRAWL_S) / 3600 * GLUE_PER_DPU_HOUR
    # SendMessage per event (rule target) + the Pipe's ReceiveMessage and DeleteMessageBatch, <= 10 messages each
    # (a BatchSize-1 pipe takes one message per call); idle long polls of the Pipe are left out (same in both).
    sqs_requests = files + 2 * files / min(pipe_batch, SQS_MAX_MESSAGES_PER_RECEIVE)
    hourly = {
        "transitions_per_execution": transitions,
        "step_functions": executions_per_hour * transitions * SFN_STANDARD_PER_TRANSITION,
        "crawler": crawls_per_hour * crawl,
        "glue_etl": executions_per_hour * etl_run,
        "glue_dq": executions_per_hour * dq_run,
        "eventbridge_rule": files * EVENTBRIDGE_AWS_SERVICE_EVENT,
        "pipes": files * math.ceil(bytes_per_record / PIPES_CHUNK_BYTES) * PIPES_PER_REQUEST,
        "sqs": sqs_requests * SQS_PER_REQUEST,
        "sns_cloudwatch": executions_per_hour * (SNS_PER_PUBLISH + SNS_PER_EMAIL + CLOUDWATCH_PER_PUT_METRIC_DATA),
        "s3_curated_requests": runs["s3_requests_per_day"] / 24 * S3_PER_PUT_COPY_REQUEST,
        # Every folder a day writes is superseded within the day (but the last); the vacuum deletes it, and S3 keeps
        # it as a noncurrent version for curated_noncurrent_days more (`day_of_job_runs`).
        "s3_superseded_storage": runs["superseded_bytes_stored"] / 1e9 * S3_PER_GB_MONTH / HOURS_PER_MONTH,
    }
    monthly = {k: v * (1 if k == "transitions_per_execution" else HOURS_PER_MONTH) for k, v in hourly.items()}
    monthly["total"] = sum(v for k, v in monthly.items() if k != "transitions_per_execution")
    monthly["crawler_hours_per_hour"] = crawls_per_hour * ASSUMED_AWS_CRAWL_S / 3600
    return monthly


# -- report ---------------------------------------------------------------------------------------------------
def goal(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_report(cfg: dict[str, Any], m: dict[str, Any], crawls: CrawlerProbe, batched: list[ExecutionResult],
                 naive: list[ExecutionResult], batched_profile: dict[str, float], naive_profile: dict[str, float],
                 ) -> None:  # fmt: skip
    files, windows = cfg["files"], len(batched)
    started = crawls.starts[("burst", "started")]
    busy = crawls.starts[("burst", "busy")]
    durations = crawls.durations["burst"]
    naive_per_execution = naive_profile["transitions"] / max(1, len(naive))
    naive_total = naive_per_execution * files
    print(f"\n=== MEASURED offline (stage local: {cfg['window_s']:g} s batching window, {cfg['poll_s']:g} s crawler "
          f"polls; real crawler, schema cache per {cfg['cache']}; simulated Glue jobs "
          f"ETL {cfg['etl_s']:g} s / DQ {cfg['dq_s']:g} s) ===")  # fmt: skip
    print(f"files landed                    {files} over {cfg['landing_s']:.1f} s (asked {cfg['seconds']:g} s) "
          f"across {cfg['partitions']} partitions of orders")
    print(f"executions started              {windows} (one per batching window / batch; largest batch "
          f"{m['max_records']} records)")
    print(f"failed executions               {len(m['failed'])}"
          + "".join(f"\n    {r.name}: {r.status} {r.error or ''} at {r.visited[-1:] or '-'}" for r in m["failed"]))
    print(f"crawler runs                    {started} (StartCrawler calls that started a crawl; {busy} more "
          f"answered CrawlerRunningException and waited)")
    if durations:
        print(f"crawl duration (emulator)       mean {sum(durations) / len(durations):.2f} s, "
              f"max {max(durations):.2f} s")
    print(f"ETL job runs                    {m['etl_runs']}  ({m['etl_partition_runs']} partition-runs, "
          f"{m['etl_partition_runs'] / max(1, cfg['partitions']):.1f} per partition for "
          f"{files / max(1, cfg['partitions']):.0f} files per partition)")
    print(f"DQ job runs                     {m['dq_runs']}")
    print(f"state transitions (all execs)   {batched_profile['transitions']} "
          f"({batched_profile['transitions'] / max(1, windows):.1f} per execution, "
          f"{batched_profile['transitions'] / files:.2f} per file)")
    print(f"files processed exactly once    {m['once']} / {files}  (lost {m['lost']}, in two executions "
          f"{m['double']}, partition missing from its ETL run {m['uncovered']})")
    print(f"execution input                 {m['bytes_per_record']:.0f} B per record; largest "
          f"{m['max_input_bytes'] / 1024:.1f} KiB; the 256 KiB StartExecution quota holds "
          f"{int(SFN_MAX_INPUT_BYTES // max(1, m['bytes_per_record']))} records")
    print(f"naive sample (measured)         {len(naive)} executions, one file each: "
          f"{naive_per_execution:.1f} transitions per execution, failed "
          f"{sum(r.status != 'SUCCEEDED' for r in naive)}")
    print("\n=== EXTRAPOLATED from the measurements above: naive = one execution per file for the same burst ===")
    print(f"naive executions                {files}  vs batched {windows}  (ratio batched/naive "
          f"{windows / files:.3f})")
    print(f"crawls                          batched {started} for {cfg['partitions']} new partitions (naive: the same; "
          "both designs crawl only for partitions the raw table does not know)")
    print(f"naive ETL runs                  {files}  vs batched {m['etl_runs']}  (ratio {m['etl_runs'] / files:.3f})")
    print(f"naive state transitions         {naive_total:.0f}  vs batched {batched_profile['transitions']}  "
          f"(ratio batched/naive {batched_profile['transitions'] / max(1, naive_total):.3f})")

    print("\n=== GOALS (printed, not asserted) ===")
    print(f"[{goal(not m['failed'])}] 0 failed executions: {len(m['failed'])}")
    print(f"[{goal(m['lost'] == 0 and m['double'] == 0 and m['uncovered'] == 0)}] 0 lost or double-processed "
          f"files: lost {m['lost']}, double {m['double']}")
    per_window_ok = started <= windows and m["max_etl_per_execution"] <= 1 and m["max_partition_repeats_in_run"] <= 1
    print(f"[{goal(per_window_ok)}] <= 1 crawl and <= 1 ETL run per partition per batching window: "
          f"crawls/window {started / max(1, windows):.2f}, ETL runs per window {m['max_etl_per_execution']} max, "
          f"a partition at most {m['max_partition_repeats_in_run']}x in one ETL run")
    print(f"       wall clock: at most {m['max_etl_per_partition_in_window']} ETL runs of one partition started "
          f"within any {cfg['window_s']:g} s (>1 means executions queued behind the crawler)")
    print_costs(cfg, m, batched_profile, naive_profile)


def print_costs(cfg: dict[str, Any], m: dict[str, Any], batched_profile: dict[str, float],
                naive_profile: dict[str, float]) -> None:
    dev, model = cfg["dev"], cfg["model"]
    window = dev.batch_window_seconds
    windows_per_hour = 3600 / window
    records = TARGET_FILES_PER_HOUR / windows_per_hour
    dev_poll = dev.crawler_poll_interval_seconds
    batched_day = partial(day_of_job_runs, model, dev, windows_per_hour, TARGET_PARTITIONS, TARGET_FILES_PER_HOUR,
                          TARGET_PARTITIONS)  # fmt: skip
    day = {"batched": batched_day(merge=ASSUMED_UPDATES),
           "batched, updates spread": batched_day(merge="spread"),
           "batched, full reprocessing": batched_day(merge="full"),
           "naive": day_of_job_runs(model, dev, TARGET_FILES_PER_HOUR, 1, TARGET_FILES_PER_HOUR, TARGET_PARTITIONS,
                                    merge=ASSUMED_UPDATES)}  # fmt: skip
    batched = monthly_cost(windows_per_hour, records, TARGET_PARTITIONS, batched_profile, dev_poll,
                           dev.batch_size, m["bytes_per_record"], day["batched"], dev)  # fmt: skip
    spread = monthly_cost(windows_per_hour, records, TARGET_PARTITIONS, batched_profile, dev_poll,
                          dev.batch_size, m["bytes_per_record"], day["batched, updates spread"], dev)  # fmt: skip
    full = monthly_cost(windows_per_hour, records, TARGET_PARTITIONS, batched_profile, dev_poll,
                        dev.batch_size, m["bytes_per_record"], day["batched, full reprocessing"], dev)  # fmt: skip
    naive = monthly_cost(TARGET_FILES_PER_HOUR, 1, 1, naive_profile, dev_poll, 1, m["bytes_per_record"],
                         day["naive"], dev)  # fmt: skip
    print(f"\n=== EXTRAPOLATED monthly cost, us-east-1 list prices: {TARGET_FILES_PER_HOUR:,} files/hour over "
          f"{TARGET_PARTITIONS} partitions, {HOURS_PER_MONTH} h/month ===")
    print(f"batched: dev stage, {window} s window -> {windows_per_hour:.0f} executions/hour, {records:.0f} records "
          f"and {TARGET_PARTITIONS} partitions each, 1 ETL + 1 DQ run each (the measured per-window behaviour); "
          f"a crawl only for new partitions: {NEW_PARTITIONS_PER_HOUR:.2f} per hour (ASSUMED daily partitions)")
    print(f"naive:   {TARGET_FILES_PER_HOUR:,} executions/hour, 1 record, 1 partition, 1 ETL + 1 DQ run each, "
          "crawls as above")
    print(f"state counts per execution: measured offline on SUCCEEDED executions (fixed part, "
          f"{batched_profile['per_record']:.2f} per record, {batched_profile['per_partition']:.2f} per partition); "
          f"crawl loop re-modelled for the dev stage: 1 + {STATES_PER_POLL} x ceil({ASSUMED_AWS_CRAWL_S} s "
          f"assumed crawl / {dev_poll} s poll)")
    print(f"job durations: the real jobs measured in this process (bench/job_model.py): {model.describe()}")
    print(f"  calibration: {json.dumps(model.measured)}")
    print(f"  ASSUMED {ASSUMED_ROWS_PER_FILE:,} rows per file; the {TARGET_PARTITIONS} daily partitions start empty "
          f"at midnight and grow to {day['batched']['partition_rows_at_midnight']:,.0f} rows each; ETL "
          f"{dev.etl_worker_type} x {dev.etl_number_of_workers}, DQ {dev.dq_worker_type} x "
          f"{dev.dq_number_of_workers} (the dev stage), billed per second, >= 1 min; ASSUMED the orders a batch "
          f"updates are {ASSUMED_UPDATES} ones: a run rewrites about one batch of published rows")
    print(f"  crawl ASSUMED {ASSUMED_AWS_CRAWL_S} s on {CRAWLER_DPUS} DPU (billed >= {CRAWLER_MIN_BILLED_S // 60} min)")
    for name, runs in day.items():
        etl, dq = runs["etl_s"], runs["dq_s"]
        behind = (f" - ETL LONGER THAN THE {window} s WINDOW: runs of a partition overlap, and the later one re-runs "
                  "the partition in full at publish (not priced here)") if name != "naive" and etl[-1] > window else ""
        print(f"  {name:27} ETL run on AWS: first of the day {etl[0]:.0f} s, last {etl[-1]:.0f} s "
              f"({etl[-1] / etl[0]:.2f}x); DQ {dq[0]:.0f} s -> {dq[-1]:.0f} s{behind}")
    rows = [("transitions per execution", "transitions_per_execution", "{:>14.0f}"),
            ("Step Functions", "step_functions", "${:>13,.2f}"), ("Glue crawler", "crawler", "${:>13,.2f}"),
            ("Glue ETL job", "glue_etl", "${:>13,.2f}"), ("Glue DQ job", "glue_dq", "${:>13,.2f}"),
            ("EventBridge rule (AWS events)", "eventbridge_rule", "${:>13,.2f}"), ("EventBridge Pipes", "pipes",
            "${:>13,.2f}"), ("SQS", "sqs", "${:>13,.2f}"), ("SNS + CloudWatch metrics", "sns_cloudwatch",
            "${:>13,.2f}"), ("S3 curated PUT + COPY", "s3_curated_requests", "${:>13,.2f}"),
            ("S3 superseded folders", "s3_superseded_storage", "${:>13,.2f}"),
            ("TOTAL per month", "total", "${:>13,.2f}")]  # fmt: skip
    print(f"{'':32}{'batched':>14}  {'full reproc.':>14}  {'naive':>14}  naive/batched")
    for label, key, fmt in rows:
        ratio = naive[key] / batched[key] if batched[key] else float("nan")
        print(f"{label:32}{fmt.format(batched[key])}  {fmt.format(full[key])}  {fmt.format(naive[key])}  "
              f"{ratio:>10.1f}x")
    print("full reproc. = batched, but every run re-reads every object of its partitions (no batch manifest)")
    print(f"batched with the updates spread over the whole day (every run rewrites its partitions): "
          f"${spread['total']:,.2f} per month, Glue ETL ${spread['glue_etl']:,.2f}")
    keep, vacuum_at = min_keep_days(dev.execution_timeout_minutes), vacuum_hour(dev)
    runs = day["batched"]
    cores, part_files = model.aws_cores(dev.etl_worker_type, dev.etl_number_of_workers), runs["files_per_part"]
    print(f"curated S3, batched: {runs['s3_requests_per_day'] / 1e6:.1f}M PUT + COPY requests a day (a run copies "
          f"every published file it does not rewrite or compact: at most {runs['max_files_copied']} per partition; "
          f"{runs['compacted_rows_per_day'] / 1e6:.0f}M rows compacted a day, priced as rewritten rows; "
          f"{part_files} file per folder and written part: "
          f"{runs['batch_rows']:,.0f} rows a batch over its partitions, tf.write_tasks on {cores} "
          f"executor cores), {runs['curated_bytes_written_per_day'] / 1e12:.2f} TB "
          f"of run folders written a day ({model.curated_bytes_per_row:.1f} bytes per row, measured). Superseded, "
          f"they stay current until the daily vacuum at {vacuum_at // 1:02.0f}:{vacuum_at % 1 * 60:02.0f} UTC after "
          f"{QUERY_GRACE.total_seconds() / 3600:g} h of grace (with full reprocessing, which writes no manifests: "
          f"{keep} days, the keep), then {dev.curated_noncurrent_days} days as noncurrent versions: "
          f"{runs['superseded_bytes_stored'] / 1e12:.2f} TB stored at any time, "
          f"{runs['superseded_bytes_stored'] / runs['curated_bytes_written_per_day']:.1f} days of writes; without the "
          f"vacuum they would pile up: each month would cost "
          f"${runs['curated_bytes_written_per_day'] / 1e9 * 30.4 * S3_PER_GB_MONTH:,.0f} more than the one before. "
          f"The published data itself: {runs['published_bytes_per_day'] / 1e9:.1f} GB a day "
          f"(${runs['published_bytes_per_day'] / 1e9 * 30.4 * S3_PER_GB_MONTH:,.2f} more per month for each month "
          f"kept), the same in every design")  # fmt: skip
    print(f"batched, by batch window (COPY requests grow with the square of the runs a day, stored run folders with "
          f"their number; a batch holds at most batch_size {dev.batch_size} files, so at least "
          f"{TARGET_FILES_PER_HOUR / dev.batch_size:.0f} executions an hour whatever the window):")
    for seconds in (60, 120, 300):  # 300 s: the most EventBridge Pipes batches
        per_hour = max(3600 / seconds, TARGET_FILES_PER_HOUR / dev.batch_size)
        runs_w = day_of_job_runs(model, dev, per_hour, TARGET_PARTITIONS, TARGET_FILES_PER_HOUR, TARGET_PARTITIONS,
                                 merge=ASSUMED_UPDATES)  # fmt: skip
        cost = monthly_cost(per_hour, TARGET_FILES_PER_HOUR / per_hour, TARGET_PARTITIONS, batched_profile, dev_poll,
                            dev.batch_size, m["bytes_per_record"], runs_w, dev)  # fmt: skip
        print(f"  {seconds:>3} s window, {per_hour:.0f} executions/hour: ${cost['total']:>10,.2f} per month "
              f"(Glue ETL + DQ "
              f"${cost['glue_etl'] + cost['glue_dq']:,.2f}, S3 PUT + COPY ${cost['s3_curated_requests']:,.2f}, "
              f"superseded folders ${cost['s3_superseded_storage']:,.2f}); last ETL run of the day "
              f"{runs_w['etl_s'][-1]:.0f} s")  # fmt: skip
    print(f"crawler busy time needed: {batched['crawler_hours_per_hour']:.3f} h per hour (crawls only for new "
          "partitions; batches of known partitions go straight to the ETL job)")
    over = records * m["bytes_per_record"] > SFN_MAX_INPUT_BYTES
    print(f"execution input per dev window: {records * m['bytes_per_record'] / 1024:.0f} KiB of the 256 KiB "
          f"StartExecution quota{' - EXCEEDED' if over else ''}; a burst above "
          f"{int(SFN_MAX_INPUT_BYTES // max(1, m['bytes_per_record']))} files in one window (batch_size "
          f"{dev.batch_size}) would exceed it")


# -- main -----------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=600)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--naive-sample", type=int, default=8, help="files re-run one execution each")
    parser.add_argument("--etl-seconds", type=float, default=0.5, help="simulated ETL job duration")
    parser.add_argument("--dq-seconds", type=float, default=0.3, help="simulated DQ job duration")
    parser.add_argument("--schema-cache", choices=("folder", "file", "none"), default="folder",
                        help="emulator crawler: infer columns once per folder (like CRAWL_NEW_FOLDERS_ONLY), once "
                        "per file, or re-read every file on every crawl")
    parser.add_argument("--calibration-rows", type=int, default=100_000,
                        help="batch rows of the job calibration (bench/job_model.py)")
    parser.add_argument("--calibration-snapshot-rows", type=int, default=1_000_000,
                        help="published rows the calibration batch is merged onto")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 files over 6 s, 3 partitions")
    args = parser.parse_args(argv)
    # The interpreter logs (and then handles) a NoSuchJsonPathError for `IsPresent: $.dataset` on every batch input.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    if args.quick:
        args.files, args.seconds, args.partitions, args.naive_sample = 30, 6.0, 3, 2
        args.calibration_rows, args.calibration_snapshot_rows = 20_000, 100_000
    partitions = [f"ingest_date=2026-11-{day:02d}" for day in range(1, args.partitions + 1)]

    shutil.rmtree(WORK, ignore_errors=True)
    began = time.monotonic()
    print("measuring the real ETL and DQ jobs for the cost model (bench/job_model.py) ...", flush=True)
    model = calibrate(WORK / "job-model", args.calibration_rows, args.calibration_snapshot_rows)
    print(f"  {model.describe()} ({time.monotonic() - began:.0f} s)", flush=True)
    stack = synthesize("local", WORK / "cdk.out")
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    dev = load_stage(context, ROOT / "datasets", "dev")
    physical = physical_resources(stack.template)
    etl_job = next(p.ref for lid, p in physical.items() if lid.startswith("JobsEtlJob"))
    dq_job = next(p.ref for lid, p in physical.items() if lid.startswith("JobsDataQualityJob"))
    jobs = {etl_job: SimulatedJob(duration_s=args.etl_seconds),
            dq_job: SimulatedJob(duration_s=args.dq_seconds, writes=dq_result_writer())}  # fmt: skip
    print(f"synthesized stage local in {time.monotonic() - began:.1f} s; landing {args.files} files over "
          f"{args.seconds:g} s across {args.partitions} partitions ...", flush=True)
    with LocalPipeline(WORK / "lake", stack, simulated_jobs=jobs) as pipeline:
        probe = CrawlerProbe(pipeline, args.schema_cache)
        landed, arns, landing_s = land_burst(pipeline, args.files, args.seconds, partitions)
        batched = wait_all(pipeline, arns, timeout=300)
        print(f"burst done after {time.monotonic() - began:.1f} s; naive sample of {args.naive_sample} ...",
              flush=True)
        probe.phase = "naive"
        naive = run_naive_sample(pipeline, landed, args.naive_sample)
        etl_runs, dq_runs = job_runs(pipeline, etl_job), job_runs(pipeline, dq_job)
        window_s = pipeline.trigger.routes[0].batch_window_seconds if pipeline.trigger else 0.0
        measured = analyse(pipeline, landed, batched, etl_runs, dq_runs, window_s)
    cfg = {"files": args.files, "seconds": args.seconds, "partitions": args.partitions, "landing_s": landing_s,
           "window_s": window_s, "poll_s": stack.config.crawler_poll_interval_seconds, "etl_s": args.etl_seconds,
           "dq_s": args.dq_seconds, "cache": args.schema_cache, "dev": dev, "model": model}  # fmt: skip
    succeeded = [r for r in batched if r.status == "SUCCEEDED"]
    profile = state_profile(batched)
    if succeeded:  # per-execution state counts for the cost model: executions that ran the whole path
        profile.update({k: v for k, v in state_profile(succeeded).items() if k not in ("executions", "transitions")})
    print_report(cfg, measured, probe, batched, naive, profile, state_profile(naive))
    print(f"\nwall time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
