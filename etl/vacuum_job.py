"""Glue job, run daily per dataset by the stack's scheduled trigger: delete the curated run folders no partition
publishes any more (etl/vacuum.py).

    python -m etl.vacuum_job --dataset orders --curated_uri s3://curated --staging_uri s3://staging \
        --datasets_uri s3://artifacts/datasets --curated_database lake_dev_curated --min_keep_days 15 \
        [--keep_days 15] [--dry_run true] [--lake_root /tmp/lake]

It starts no Spark session: listing, the catalog lookup and the deletes are S3 and Glue API calls. The summary
(what was deleted, kept and why) is printed to the job's log and written to
{staging_uri}/runs/{dataset}/vacuum/{JOB_RUN_ID}.json.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from etl.spec import load_deployed_dataset
from etl.storage import Storage, join_uri, write_json
from etl.vacuum import VacuumPlan, describe, folder_name, vacuum

REQUIRED_ARGS = ["dataset", "curated_uri", "staging_uri", "datasets_uri", "curated_database", "min_keep_days"]
OPTIONAL_ARGS = ["keep_days", "dry_run", "lake_root", "JOB_RUN_ID"]


def report_uri(staging_uri: str, dataset: str, job_run_id: str) -> str:
    return join_uri(staging_uri, "runs", dataset, "vacuum", f"{job_run_id}.json")


def summary(plan: VacuumPlan, keep_days: float, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "keep_days": keep_days,
        "deleted": [{"folder": folder_name(f), "objects": len(f.objects), "bytes": f.size,
                     "last_written": f.newest.isoformat()} for f in plan.delete],  # fmt: skip
        "superseded": [folder_name(f) for f in plan.superseded],
        "bytes_freed": plan.bytes_freed,
        "kept_published": len(plan.published),
        "kept_recent": len(plan.recent),
        "kept_merge_bases": [folder_name(f) for f in plan.merge_bases],
        "kept_in_grace": [folder_name(f) for f in plan.grace],
    }


def _number(args: dict[str, str], key: str) -> float:
    try:
        return float(args[key])
    except ValueError as error:
        raise ValueError(f"job argument --{key}: {args[key]!r} is not a number of days") from error


def run(args: dict[str, str], storage: Storage, glue: Any, now: datetime) -> tuple[VacuumPlan, dict[str, Any]]:
    """The vacuum's plan (carried out unless a dry run) and its report, also written to `report_uri`."""
    minimum = _number(args, "min_keep_days")
    keep_days = _number(args, "keep_days") if args.get("keep_days") else minimum
    dry_run = args.get("dry_run") or "false"
    if dry_run.lower() not in ("true", "false"):  # a typo must not turn a dry run into a real one
        raise ValueError(f"job argument --dry_run: {dry_run!r} is neither true nor false")
    dry_run = dry_run.lower() == "true"
    spec = load_deployed_dataset(storage, args["datasets_uri"], args["dataset"])
    plan = vacuum(storage, glue, args["curated_database"], spec, args["curated_uri"], args["staging_uri"], now,
                  keep_days, int(minimum), dry_run=dry_run)  # fmt: skip
    result = summary(plan, keep_days, dry_run)
    run_id = args.get("JOB_RUN_ID") or now.strftime("%Y%m%dT%H%M%S")
    write_json(storage, report_uri(args["staging_uri"], spec.name, run_id), result)
    return plan, result


def main(argv: list[str] | None = None) -> int:
    import boto3

    from etl.session import parse_job_args
    from etl.storage import storage_for

    args = parse_job_args(list(sys.argv[1:] if argv is None else argv), REQUIRED_ARGS, OPTIONAL_ARGS)
    plan, result = run(args, storage_for(args.get("lake_root")), boto3.client("glue"), datetime.now(UTC))
    for line in describe(plan, args["dataset"], result["keep_days"], result["dry_run"]):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
