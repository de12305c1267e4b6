"""`lake demo`: the whole pipeline offline on the sample dataset, shown the way an operator sees it.

1. synthesize the `local` stage and deploy it into the local cloud (moto + local Spark + folders);
2. land four days of orders (with some malformed rows and duplicates; the last day fails data quality) ->
   one execution crawls, transforms, checks, publishes the three good days and quarantines the bad one;
3. show the DQ report and the notifications;
4. fix the bad day's file and `lake rerun` it -> published;
5. query the curated table.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console

from etl.storage import read_json
from lake import render
from lake.executions import ExecutionResult
from lake.local.runtime import LocalPipeline, synthesize
from lake.ops import rerun
from lake.query import query_local
from lake.sample_data import generate
from quality.job import result_uri

DATASET = "orders"


def _land(pipeline: LocalPipeline, sample_root: Path, partitions: list[str], console: Console) -> int:
    files = sorted(p for part in partitions for p in (sample_root / DATASET / part).iterdir() if p.is_file())
    for path in files:
        pipeline.put_raw(DATASET, path.parent.name, path.name, path.read_bytes())
    console.print(f"  landed {len(files)} files in s3://{pipeline.bucket('StorageRaw')}/{DATASET}/ "
                  f"({', '.join(partitions)})")  # fmt: skip
    return len(files)


CUT_OFF_NAME = "orders-0003-upload-cut-off.csv.gz"


def _land_cut_off_upload(pipeline: LocalPipeline, sample_root: Path, partition: str, console: Console) -> None:
    """An upload that broke off: the first half of a gzip file. The ETL quarantines it; the day is published."""
    source = next((sample_root / DATASET / partition).glob("*.gz"))
    data = source.read_bytes()
    pipeline.put_raw(DATASET, partition, CUT_OFF_NAME, data[: len(data) // 2])
    console.print(f"  and {partition}/{CUT_OFF_NAME}: an upload cut off halfway")


def _show_etl(pipeline: LocalPipeline, result: ExecutionResult, console: Console) -> list[str]:
    """The ETL's row counts and quarantined objects; returns the names of the quarantined objects."""
    from etl.job import metrics_uri  # imports pyspark: only once the jobs have run

    uri = metrics_uri(f"s3://{pipeline.bucket('StorageStaging')}", DATASET, result.name)
    if not pipeline.storage.exists(uri):
        return []
    metrics = read_json(pipeline.storage, uri)
    render.print_etl_outcome(console, metrics)
    return [q["object"].rsplit("/", 1)[-1] for q in metrics["quarantined_objects"]]


def _run_batch(pipeline: LocalPipeline, console: Console) -> list[ExecutionResult]:
    with console.status("running the pipeline (Glue crawler, Spark ETL and DQ jobs)..."):
        results = pipeline.drain(timeout=900)
    for result in results:
        render.print_result(console, result)
    return results


def _show_dq(pipeline: LocalPipeline, result: ExecutionResult, console: Console) -> None:
    """The DQ report: every rule when the run failed, one line when it passed."""
    uri = result_uri(f"s3://{pipeline.bucket('StorageStaging')}", DATASET, result.name)
    if not pipeline.storage.exists(uri):
        return
    render.print_dq_outcome(console, read_json(pipeline.storage, uri))


def run_demo(root: Path, console: Console) -> int:
    """Run the demo under `root` (replaced); returns the exit code (0 when every step behaved)."""
    started = time.monotonic()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    console.rule("[bold]1. Synthesize and deploy locally")
    stack = synthesize("local", root / "cdk.out")
    resources = len(stack.template["Resources"])
    console.print(f"  cdk synth: stack DataLake-local, {resources} resources -> {stack.template_path}")
    sample_root = Path(tempfile.mkdtemp(prefix="lake-sample-"))
    sample = generate(sample_root, days=3, bad_partition=True)
    good = sorted(p for p in sample["partitions"] if p != sample["bad_partition"])
    bad = sample["bad_partition"]
    ok = True
    with LocalPipeline(root / "lake", stack) as pipeline:
        console.print(f"  local cloud at {pipeline.cloud.endpoint_url}; buckets are folders under {root / 'lake'}")

        console.rule("[bold]2. New files arrive: four days of orders, the last one bad")
        _land(pipeline, sample_root, [*good, bad], console)
        _land_cut_off_upload(pipeline, sample_root, good[0], console)
        (first,) = _run_batch(pipeline, console)
        ok &= first.status == "FAILED" and first.error == "DataQualityFailed"
        ok &= _show_etl(pipeline, first, console) == [CUT_OFF_NAME]
        _show_dq(pipeline, first, console)

        console.rule("[bold]3. Notifications (SNS)")
        render.print_notifications(console, pipeline.outbox())

        console.rule(f"[bold]4. Fix {bad} and re-run it")
        fixed = generate(sample_root / "fixed", days=4)
        assert bad in fixed["partitions"], "the fixed sample covers the bad day"
        raw = pipeline.bucket("StorageRaw")
        for old in (root / "lake" / raw / DATASET / bad).iterdir():
            old.unlink()
        for path in sorted((sample_root / "fixed" / DATASET / bad).iterdir()):
            # Written without an S3 event, to show the manual re-run (a re-upload would also trigger a run).
            pipeline.cloud.put_object(f"s3://{raw}/{DATASET}/{bad}/{path.name}", path.read_bytes())
        console.print(f"  replaced the files of {bad}")
        console.print(f"  $ lake rerun {DATASET} --partition {bad}")
        sfn = pipeline.cloud.client("stepfunctions")
        arn = rerun(sfn, pipeline.state_machine_arn, dataset=DATASET, partitions=[bad], known_datasets=[DATASET])
        with console.status("re-running the partition..."):
            rerun_result = pipeline.wait(arn, timeout=900)
        render.print_result(console, rerun_result)
        ok &= rerun_result.status == "SUCCEEDED"

        console.rule("[bold]5. Query the curated table (DuckDB over the published partitions)")
        sql = (f"select ingest_date, count(*) as orders, sum(amount) as revenue, count(distinct lake_run_id) as runs "
               f"from {DATASET} group by ingest_date order by ingest_date")  # fmt: skip
        console.print(f"  $ lake query \"{sql}\"")
        result = query_local(sql, glue=pipeline.cloud.client("glue"), storage=pipeline.storage,
                             database=pipeline.resources().curated_database)  # fmt: skip
        render.print_rows(console, result.columns, result.rows)
        ok &= len(result.rows) == len(good) + 1

        staging = pipeline.bucket("StorageStaging")
        console.rule("[bold]Where to look next")
        console.print(
            f"  lake root (buckets as folders): {root / 'lake'}\n"
            f"  rejected rows with reasons:     {root / 'lake' / staging / 'rejects' / DATASET}\n"
            f"  unreadable objects, reasons:    {root / 'lake' / staging / 'quarantine' / DATASET}\n"
            f"  DQ reports and run metrics:     {root / 'lake' / staging / 'runs' / DATASET}\n"
            f"  OpenLineage events:             {root / 'lake' / staging / 'lineage' / DATASET}\n"
            f"  Glue job logs:                  {root / 'lake' / '_logs' / 'glue'}\n"
            f"  notifications:                  {root / 'lake' / '_outbox' / 'sns.jsonl'}\n"
            "  keep it running and operate it:  .venv/bin/lake up   (then .venv/bin/lake --local put / executions /"
            " show / rerun / query)\n"
            "  deploy to AWS:                   npx aws-cdk@2 deploy -c stage=dev"
        )
    shutil.rmtree(sample_root, ignore_errors=True)
    verdict = "[green]demo finished[/]" if ok else "[red]demo finished with unexpected results[/]"
    console.print(f"\n{verdict} in {time.monotonic() - started:.0f} s")
    return 0 if ok else 1
