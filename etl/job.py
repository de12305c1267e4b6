"""Glue ETL job: raw objects of some partitions -> candidate curated Parquet, rejects, metrics, lineage.

    python -m etl.job --dataset orders --partitions ingest_date=2026-11-24 --run_id R \
        --raw_uri s3://raw --curated_uri s3://curated --staging_uri s3://staging \
        --datasets_uri s3://artifacts/datasets [--lake_root /tmp/lake] [--lineage_url http://...]

Outputs (see etl/transforms.py for the row-level rules):
- {curated_uri}/{dataset}/{partition}/run_id={run_id}/*.parquet   candidate data, replaced on re-run
- {staging_uri}/rejects/{dataset}/{partition}/run_id={run_id}/*.json  JSON lines: source_object,
  line_number, raw_record, reason, run_id
- {staging_uri}/runs/{dataset}/{run_id}/etl_metrics.json
- {staging_uri}/lineage/{dataset}/{run_id}/<job>-<n>-<eventType>.json
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

from etl import transforms as tf
from etl.lineage import LineageDataset, LineageEmitter
from etl.readers import list_partition_objects, parse_partitions
from etl.spec import DatasetSpec, load_deployed_dataset
from etl.storage import Storage, join_uri, write_json

REQUIRED_ARGS = ["dataset", "partitions", "run_id", "raw_uri", "curated_uri", "staging_uri", "datasets_uri"]
OPTIONAL_ARGS = ["lake_root", "lineage_url"]


def metrics_uri(staging_uri: str, dataset: str, run_id: str) -> str:
    return join_uri(staging_uri, "runs", dataset, run_id, "etl_metrics.json")


def run(args: dict[str, str], storage: Storage, spark: Any) -> dict[str, Any]:
    """Run the ETL for the given partitions; returns (and writes) the metrics document."""
    dataset, run_id = args["dataset"], args["run_id"]
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    spec = load_deployed_dataset(storage, args["datasets_uri"], dataset)
    partitions = parse_partitions(args["partitions"], spec.partition_key)
    emitter = LineageEmitter(storage, args["staging_uri"], dataset, run_id, f"{dataset}-etl",
                             url=args.get("lineage_url") or None)
    inputs = [LineageDataset(join_uri(args["raw_uri"], dataset, p)) for p in partitions]
    outputs = [LineageDataset(tf.curated_partition_uri(args["curated_uri"], spec, p, run_id),
                              columns=tuple(tf.column_types(spec))) for p in partitions]
    emitter.start(inputs, outputs)
    try:
        metrics = _run(args, spec, partitions, storage, spark)
    except BaseException as error:
        emitter.fail(error, inputs, outputs)
        raise
    emitter.complete(inputs, outputs)
    return metrics


def _run(args: dict[str, str], spec: DatasetSpec, partitions: list[str], storage: Storage,
         spark: Any) -> dict[str, Any]:
    from pyspark import StorageLevel

    run_id = args["run_id"]
    ingested_at = datetime.now(UTC).replace(microsecond=0)
    objects = list_partition_objects(storage, args["raw_uri"], spec, partitions)
    all_objects = [o for p in partitions for o in objects[p]]
    plan = tf.plan_sources(storage, all_objects, spec)

    enforced = tf.enforce_schema(tf.read_records(spark, storage, plan, spec, args["raw_uri"]), spec)
    enforced = enforced.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        counts = tf.count_by_partition(enforced, spec)
        valid, rejected = tf.split_rejects(enforced)
        rejects = tf.reject_records(rejected, spec, run_id)
        total_rejected = sum(c["rejected_rows"] for c in counts.values())
        reasons = tf.reason_counts(rejects) if total_rejected else {}
        for partition in partitions:
            value = partition.split("=", 1)[1]
            if counts.get(value, {}).get("rejected_rows", 0):
                tf.write_rejects(rejects, storage, args["staging_uri"], spec, run_id, partition)
            else:
                schema = rejects.drop(spec.partition_key).schema
                path = storage.spark_path(tf.reject_partition_uri(args["staging_uri"], spec, partition, run_id))
                tf.write_empty(spark, schema, path, "json")

        total_valid = sum(c["input_rows"] - c["rejected_rows"] for c in counts.values())
        curated = tf.add_provenance(tf.deduplicate(valid, spec), spec, run_id, ingested_at)
        if total_valid:
            tf.write_curated(curated, storage, args["curated_uri"], spec, run_id, tf.file_count(total_valid))
    finally:
        enforced.unpersist()

    per_partition: dict[str, dict[str, int]] = {}
    for partition in partitions:
        value = partition.split("=", 1)[1]
        path = storage.spark_path(tf.curated_partition_uri(args["curated_uri"], spec, partition, run_id))
        input_rows = counts.get(value, {}).get("input_rows", 0)
        rejected_rows = counts.get(value, {}).get("rejected_rows", 0)
        if input_rows - rejected_rows == 0:
            tf.write_empty(spark, curated.drop(spec.partition_key).schema, path, "parquet")
            output_rows = 0
        else:
            output_rows = spark.read.parquet(path).count()  # Parquet footers only: cheap, checks the write
        per_partition[partition] = {
            "input_rows": input_rows,
            "output_rows": output_rows,
            "rejected_rows": rejected_rows,
            "duplicates_removed": input_rows - rejected_rows - output_rows,
            "source_objects": len(objects[partition]),
        }
    metrics = {
        "dataset": spec.name,
        "run_id": run_id,
        "partitions": partitions,
        "ingested_at": ingested_at.isoformat(),
        "source_objects": len(all_objects),
        "empty_objects": sorted(plan.empty_objects),
        "extra_columns": sorted(plan.extra_columns),
        "missing_columns": sorted(plan.missing_columns),
        "reject_reasons": dict(sorted(reasons.items())),
        "per_partition": per_partition,
    }
    for key in ("input_rows", "output_rows", "rejected_rows", "duplicates_removed"):
        metrics[key] = sum(p[key] for p in per_partition.values())
    if metrics["input_rows"] != metrics["output_rows"] + metrics["rejected_rows"] + metrics["duplicates_removed"]:
        raise RuntimeError(f"row accounting does not balance: {metrics}")
    write_json(storage, metrics_uri(args["staging_uri"], spec.name, run_id), metrics)
    return metrics


def main(argv: list[str] | None = None) -> int:
    from etl.session import build_spark, parse_job_args
    from etl.storage import storage_for

    args = parse_job_args(list(sys.argv[1:] if argv is None else argv), REQUIRED_ARGS, OPTIONAL_ARGS)
    storage = storage_for(args.get("lake_root"))
    spark = build_spark(f"{args['dataset']}-etl")
    metrics = run(args, storage, spark)
    print(f"{args['dataset']} run {args['run_id']}: {metrics['input_rows']} input, {metrics['output_rows']} "
          f"output, {metrics['rejected_rows']} rejected, {metrics['duplicates_removed']} duplicates removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
