"""The `lake` command: run the pipeline offline, and operate it in AWS or locally with the same verbs.

    lake demo                                   the whole pipeline offline on sample data
    lake up                                     a long-running local cloud watching its raw folder
    lake put FILE --dataset D [--partition P]   land a raw file (raw bucket in AWS, or the local cloud)
    lake executions [--status FAILED]           recent executions
    lake show EXECUTION                         states, durations, the failing state
    lake rerun DATASET --partition P            new execution for partitions (after fixing their files)
    lake redrive EXECUTION                      resume a failed execution from its failed state (AWS)
    lake query SQL                              Athena in AWS, DuckDB over the local lake
    lake lineage DATASET                        OpenLineage events of the dataset's runs
    lake vacuum DATASET [--keep-days N]         delete run folders no partition publishes [--dry-run]

Operator commands target the deployed stack of `--stage` (AWS credentials from the usual chain), or the
local cloud started by `lake up` with `--local`.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from rich.console import Console

from lake.errors import LakeError, NotSupportedLocally
from workflows.config import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LOCAL_ROOT = Path(".lake") / "local"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lake", description=__doc__.split("\n")[0])
    parser.add_argument("--local", action="store_true", help="operate the local cloud started by `lake up`")
    parser.add_argument("--root", type=Path, default=None, help="local lake root (default .lake/local)")
    parser.add_argument("--stage", default=None, help="stage in cdk.json (default: its `stage` context)")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the whole pipeline offline on sample data")
    demo.add_argument("--demo-root", type=Path, default=Path(".lake") / "demo")
    commands.add_parser("up", help="run the local cloud and watch its raw folder (Ctrl-C stops)")
    put = commands.add_parser("put", help="land a raw file")
    put.add_argument("file", type=Path)
    put.add_argument("--dataset", required=True)
    put.add_argument("--partition", help="e.g. ingest_date=2026-11-24 (default: today's, in UTC)")
    executions = commands.add_parser("executions", help="list recent executions")
    executions.add_argument("--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
    executions.add_argument("--limit", type=int, default=20)
    show = commands.add_parser("show", help="show one execution")
    show.add_argument("execution")
    rerun = commands.add_parser("rerun", help="re-run partitions of a dataset")
    rerun.add_argument("dataset")
    rerun.add_argument("--partition", action="append", required=True)
    rerun.add_argument("--wait", action="store_true", help="wait for the execution and show it")
    redrive = commands.add_parser("redrive", help="redrive a failed execution")
    redrive.add_argument("execution")
    query = commands.add_parser("query", help="run SQL over the curated tables")
    query.add_argument("sql")
    lineage = commands.add_parser("lineage", help="show a dataset's lineage events")
    lineage.add_argument("dataset")
    vacuum = commands.add_parser("vacuum", help="delete the curated run folders no partition publishes")
    vacuum.add_argument("dataset")
    vacuum.add_argument("--keep-days", type=float, default=None,
                        help="keep unpublished folders younger than this, unless proven superseded more than 6 hours "
                             "ago; default and minimum: the 14-day redrive window plus the stage's longest "
                             "execution (15 days with a 240 min timeout)")  # fmt: skip
    vacuum.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    return parser


def _stage_config(stage: str | None):
    """The stage's validated configuration from cdk.json (`stage` None: its `stage` context)."""
    from workflows.config import load_stage

    context = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return load_stage(context, REPO_ROOT / "datasets", stage)


def _context(args: argparse.Namespace):
    from lake.context import aws_context, local_context

    if args.local:
        return local_context((args.root or DEFAULT_LOCAL_ROOT).resolve())
    config = _stage_config(args.stage)
    if config.name == "local":
        raise LakeError("stage 'local' only runs offline: add --local (with `lake up` running) or pick a stage")
    datasets = tuple(d.name for d in config.datasets)
    return aws_context(config.name, datasets, config.curated_database_name, config.athena_workgroup_name)


def _storage(ctx):
    from etl.storage import LocalStorage, S3Storage

    return LocalStorage(ctx.local_root / "lake") if ctx.is_local else S3Storage(ctx.client("s3"))


def cmd_executions(ctx, args, console: Console) -> int:
    from rich.table import Table

    from lake.ops import list_executions

    table = Table(title="executions", title_justify="left")
    for column in ("name", "status", "started", "stopped"):
        table.add_column(column)
    for execution in list_executions(ctx.client("stepfunctions"), ctx.resources.state_machine_arn, args.status,
                                     args.limit):  # fmt: skip
        table.add_row(execution["name"], execution["status"], str(execution["startDate"]),
                      str(execution.get("stopDate", "")))  # fmt: skip
    console.print(table)
    return 0


def cmd_show(ctx, args, console: Console) -> int:
    from etl.job import metrics_uri
    from etl.storage import read_json
    from lake import render
    from lake.executions import describe
    from lake.ops import find_execution
    from quality.job import result_uri

    sfn = ctx.client("stepfunctions")
    result = describe(sfn, find_execution(sfn, ctx.resources.state_machine_arn, args.execution))
    render.print_result(console, result)
    console.print(f"  input: {json.dumps(result.input)[:300]}")
    dataset = (result.input or {}).get("dataset") if isinstance(result.input, dict) else None
    storage = _storage(ctx)
    staging = f"s3://{ctx.resources.staging_bucket}"
    for name in [dataset] if dataset else list(ctx.resources.datasets):
        if storage.exists(etl_metrics := metrics_uri(staging, name, result.name)):
            render.print_etl_outcome(console, read_json(storage, etl_metrics))
        if storage.exists(dq_result := result_uri(staging, name, result.name)):
            render.print_dq_outcome(console, read_json(storage, dq_result))
    return 0


def cmd_rerun(ctx, args, console: Console) -> int:
    from etl.storage import join_uri
    from lake import render
    from lake.executions import wait_for_execution
    from lake.ops import rerun

    storage = _storage(ctx)
    raw = f"s3://{ctx.resources.raw_bucket}"
    sfn = ctx.client("stepfunctions")
    arn = rerun(sfn, ctx.resources.state_machine_arn, dataset=args.dataset, partitions=args.partition,
                known_datasets=list(ctx.resources.datasets),
                raw_partition_exists=lambda d, p: bool(storage.list_keys(join_uri(raw, d, p) + "/")))  # fmt: skip
    console.print(f"started {arn.rsplit(':', 1)[-1]}")
    if args.wait:
        render.print_result(console, wait_for_execution(sfn, arn, timeout=3600))
    return 0


def cmd_redrive(ctx, args, console: Console) -> int:
    from lake.ops import find_execution, redrive

    if ctx.is_local:
        raise NotSupportedLocally("moto 5.2.5 does not implement RedriveExecution; locally use `lake rerun`")
    sfn = ctx.client("stepfunctions")
    redrive(sfn, find_execution(sfn, ctx.resources.state_machine_arn, args.execution))
    console.print(f"redriven {args.execution}: it resumes at the state that failed")
    return 0


def cmd_query(ctx, args, console: Console) -> int:
    from lake import render
    from lake.query import query_athena, query_local

    if ctx.is_local:
        result = query_local(args.sql, glue=ctx.client("glue"), storage=_storage(ctx),
                             database=ctx.resources.curated_database)  # fmt: skip
    else:
        result = query_athena(args.sql, athena=ctx.client("athena"), workgroup=ctx.resources.athena_workgroup,
                              database=ctx.resources.curated_database)  # fmt: skip
    render.print_rows(console, result.columns, result.rows)
    return 0


def cmd_lineage(ctx, args, console: Console) -> int:
    from etl.storage import read_json
    from lake import render
    from lake.ops import require_known_dataset

    require_known_dataset(args.dataset, ctx.resources.datasets)
    storage = _storage(ctx)
    rows = []
    for uri in storage.list_keys(f"s3://{ctx.resources.staging_bucket}/lineage/{args.dataset}/"):
        event = read_json(storage, uri)
        rows.append((event.get("eventTime", "")[:19], event["job"]["name"], event["eventType"],
                     ", ".join(i["name"] for i in event.get("inputs", [])),
                     ", ".join(o["name"] for o in event.get("outputs", []))))  # fmt: skip
    render.print_rows(console, ["time", "job", "event", "inputs", "outputs"], sorted(rows), f"lineage {args.dataset}")
    return 0


def cmd_put(ctx, args, console: Console) -> int:
    if not args.file.is_file():
        raise LakeError(f"{args.file}: no such file")
    from lake.ops import require_known_dataset

    require_known_dataset(args.dataset, ctx.resources.datasets)
    from etl.spec import load_datasets
    from lake.ops import raw_object_key

    spec = load_datasets(REPO_ROOT / "datasets", [args.dataset])[0]
    key = raw_object_key(args.dataset, spec.partition_key, args.partition, args.file.name)
    if ctx.is_local:
        target = ctx.local_root / "lake" / ctx.resources.raw_bucket / key
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.file, target)
    else:
        ctx.client("s3").upload_file(str(args.file), ctx.resources.raw_bucket, key)
    console.print(f"put s3://{ctx.resources.raw_bucket}/{key}")
    return 0


def cmd_vacuum(ctx, args, console: Console) -> int:
    from datetime import UTC, datetime

    from etl.spec import load_datasets
    from etl.vacuum import VacuumError, describe, min_keep_days, vacuum
    from lake.ops import require_known_dataset

    require_known_dataset(args.dataset, ctx.resources.datasets)
    stage = _stage_config(args.stage or ("local" if ctx.is_local else None))
    spec = load_datasets(REPO_ROOT / "datasets", [args.dataset])[0]
    minimum = min_keep_days(stage.execution_timeout_minutes)
    keep_days = minimum if args.keep_days is None else args.keep_days
    try:
        plan = vacuum(_storage(ctx), ctx.client("glue"), ctx.resources.curated_database, spec,
                      f"s3://{ctx.resources.curated_bucket}", f"s3://{ctx.resources.staging_bucket}",
                      datetime.now(UTC), keep_days, minimum, dry_run=args.dry_run)  # fmt: skip
    except VacuumError as error:
        raise LakeError(str(error)) from error
    for line in describe(plan, args.dataset, keep_days, args.dry_run):
        console.print(line)
    return 0


COMMANDS = {
    "executions": cmd_executions, "show": cmd_show, "rerun": cmd_rerun, "redrive": cmd_redrive,
    "query": cmd_query, "lineage": cmd_lineage, "put": cmd_put, "vacuum": cmd_vacuum,
}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console()
    # moto logs every JSONPath probe the state machine makes (e.g. IsPresent on a missing field) as an error.
    logging.getLogger("moto").setLevel(logging.CRITICAL)
    try:
        if args.command == "demo":
            from lake.demo import run_demo

            return run_demo(args.demo_root.resolve(), console)
        if args.command == "up":
            from lake.up import run_up

            return run_up((args.root or DEFAULT_LOCAL_ROOT).resolve(), args.stage or "local", console)
        return COMMANDS[args.command](_context(args), args, console)
    except LakeError as error:
        console.print(f"[red]error:[/] {error}")
        return error.exit_code
    except ConfigError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
