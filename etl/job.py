"""Glue ETL job: raw objects of some partitions -> candidate curated Parquet, rejects, metrics, lineage.

    python -m etl.job --dataset orders --partitions ingest_date=2026-11-24 --run_id R \
        --raw_uri s3://raw --curated_uri s3://curated --staging_uri s3://staging \
        --datasets_uri s3://artifacts/datasets [--manifest_uri s3://staging/manifests/...json | none]
        [--lake_root /tmp/lake] [--lineage_url http://...]

With a batch manifest only the batch's objects are read, and their rows are merged onto each partition's
published snapshot (etl/batch.py): the published files the batch competes with are rewritten, the others copied
into the candidate folder unchanged, or compacted into one file when they are many and small (etl/snapshot.py).
Without one every raw object of the partitions is reprocessed.

Outputs (see etl/transforms.py for the row-level rules):
- {curated_uri}/{dataset}/{partition}/run_id={run_id}/*.parquet   candidate data, replaced on re-run
- {staging_uri}/rejects/{dataset}/{partition}/run_id={run_id}/*.json  JSON lines: source_object,
  line_number, raw_record, reason, run_id
- {staging_uri}/runs/{dataset}/{run_id}/etl_metrics.json
- {staging_uri}/quarantine/{dataset}/{partition}/run_id={run_id}/objects.json   objects that could not be
  read (corrupt compression, wrong encoding, wrong format), with reasons; the objects stay in the raw zone
- {staging_uri}/lineage/{dataset}/{run_id}/<job>-<n>-<eventType>.json
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from etl import arrow_write, fast_csv
from etl import snapshot as snap
from etl import transforms as tf
from etl.batch import Batch, read_manifest
from etl.lineage import LineageDataset, LineageEmitter
from etl.readers import list_partition_objects, parse_partitions
from etl.spec import DatasetSpec, load_deployed_dataset
from etl.storage import Storage, delete_prefix, join_uri, write_json

REQUIRED_ARGS = ["dataset", "partitions", "run_id", "raw_uri", "curated_uri", "staging_uri", "datasets_uri"]
OPTIONAL_ARGS = ["lake_root", "lineage_url", "manifest_uri"]


class StageClock:
    """Wall-clock seconds per stage of a run, for `stage_seconds` in the metrics. Spark is lazy: a stage's time is
    that of the Spark jobs its actions run, including the evaluation of what earlier stages only planned."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)


def staged_uri(staging_uri: str, dataset: str, run_id: str) -> str:
    """Where a run stages the lines it parsed (etl/fast_csv.py); deleted after the run, and by the staging bucket's
    tmp/ lifecycle rule if the run dies first."""
    return join_uri(staging_uri, "tmp", "parsed", dataset, run_id)


def metrics_uri(staging_uri: str, dataset: str, run_id: str) -> str:
    return join_uri(staging_uri, "runs", dataset, run_id, "etl_metrics.json")


def run(args: dict[str, str], storage: Storage, spark: Any) -> dict[str, Any]:
    """Run the ETL for the given partitions; returns (and writes) the metrics document."""
    dataset, run_id = args["dataset"], args["run_id"]
    spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
    spec = load_deployed_dataset(storage, args["datasets_uri"], dataset)
    partitions = parse_partitions(args["partitions"], spec.partition_key)
    emitter = LineageEmitter(
        storage, args["staging_uri"], dataset, run_id, f"{dataset}-etl", url=args.get("lineage_url") or None
    )
    inputs = [LineageDataset(join_uri(args["raw_uri"], dataset, p)) for p in partitions]
    outputs = [
        LineageDataset(
            tf.curated_partition_uri(args["curated_uri"], spec, p, run_id), columns=tuple(tf.column_types(spec))
        )
        for p in partitions
    ]
    emitter.start(inputs, outputs)
    try:
        metrics = _run(args, spec, partitions, storage, spark)
    except BaseException as error:
        emitter.fail(error, inputs, outputs)
        raise
    merged_onto = [LineageDataset(p["merged_onto"]) for p in metrics["per_partition"].values() if p["merged_onto"]]
    emitter.complete(inputs + merged_onto, outputs)
    return metrics


def _run(
    args: dict[str, str], spec: DatasetSpec, partitions: list[str], storage: Storage, spark: Any
) -> dict[str, Any]:
    from pyspark import StorageLevel

    run_id = args["run_id"]
    ingested_at = datetime.now(UTC).replace(microsecond=0)
    clock = StageClock()
    with clock.stage("list_objects"):
        listed = list_partition_objects(storage, args["raw_uri"], spec, partitions)
        batch = read_manifest(storage, args.get("manifest_uri") or "none", args["raw_uri"], spec.name, partitions,
                              listed)  # fmt: skip
    objects = batch.objects
    for partition, location in batch.published.items():
        output = tf.curated_partition_uri(args["curated_uri"], spec, partition, run_id)
        if location and location.rstrip("/") == output.rstrip("/"):
            raise ValueError(f"batch manifest {args['manifest_uri']}: {partition} would merge onto this run's own "
                             f"output {output}; start a new run instead of re-running this one")  # fmt: skip
    all_objects = [o for p in partitions for o in objects[p]]
    with clock.stage("plan_sources"):
        plan = tf.plan_sources(storage, all_objects, spec)
    for partition in partitions:
        write_json(storage, tf.quarantine_uri(args["staging_uri"], spec, partition, run_id),
                   [q for q in plan.quarantined if q["partition"] == partition])  # fmt: skip
    data_lines = dict(plan.data_lines)
    if spec.format == "parquet":
        data_lines.update(tf.parquet_rows(spark, storage, plan.readable))

    # Building a compressed in-memory cache cost more than parsing the objects (0.25 GB: 9 s vs 7 s);
    # uncompressed it costs 2 s. The cache holds typed rows without their raw lines (tf.for_cache).
    spark.conf.set("spark.sql.inMemoryColumnarStorage.compressed", "false")
    stage_uri = staged_uri(args["staging_uri"], spec.name, run_id)
    fast_path: dict[str, Any] = {"unsupported": fast_csv.unsupported(spec)}
    cached: list[Any] = []
    staged = None
    try:
        if fast_path["unsupported"] is None:
            with clock.stage("parse_csv"):
                staged = fast_csv.read_staged(spark, storage, plan, spec, stage_uri)
            parsed, cached = staged.rows, list(staged.cached)
            fast_path = {"fast_rows": staged.fast_rows, "slow_lines": staged.slow_lines}
        else:
            enforced = tf.enforce_schema(tf.read_records(spark, storage, plan, spec), spec)
            parsed = tf.for_cache(enforced).persist(StorageLevel.MEMORY_AND_DISK)
            cached = [parsed]
        # Stamped after the cache: constants cost nothing there, and a filter on lake_run_id folds to true or false.
        rows = tf.stamp_provenance(parsed, run_id, ingested_at)
        with clock.stage("parse_and_count"):  # the one pass over the raw objects (or the slow lines); fills the cache
            row_counts = staged.count_rows(spec) if staged else tf.count_rows(rows, spec)
        counts, reasons = row_counts.by_partition, row_counts.reasons
        with clock.stage("write_rejects"):
            _write_rejects(rows, counts, args, spec, partitions, storage, spark)
        batch_rows = row_counts.valid_rows()
        with clock.stage("merge"):
            merged, snapshots = _merge(tf.valid_rows(rows), row_counts, batch, spec, storage, spark,
                                       args["staging_uri"])  # fmt: skip
        cached += merged.cached
        with clock.stage("write_candidate"):
            arrow = staged is not None and staged.fast_rows >= ARROW_WRITE_MIN_ROWS
            direct = _contested_lines(merged, run_id) if arrow else None
            if direct is None:
                _write_candidate(merged.rows, batch_rows, snapshots, args, spec, partitions, storage, spark)
            else:
                # The uncontested fast rows are written by Arrow (etl/arrow_write.py), after Spark has replaced the
                # folders with the rest: the contested keys' winners, the slow lines' rows, the carried rows.
                uncontested = staged.fast_rows - sum(len(lines) for lines in direct.values())
                rest = merged.without(~_fast_batch_rows(run_id), spec)
                _write_candidate(rest, batch_rows - uncontested, snapshots, args, spec, partitions, storage, spark,
                                 keep_empty=not uncontested)  # fmt: skip
                folders = {p.split("=", 1)[1]: tf.curated_partition_uri(args["curated_uri"], spec, p, run_id)
                           for p in partitions}  # fmt: skip
                written = arrow_write.write_staged(spark, storage, staged, spec, direct, folders, run_id, ingested_at)
                if written != uncontested:
                    raise RuntimeError(f"the fast rows' writers wrote {written} rows, not the {uncontested} "
                                       f"uncontested fast rows")  # fmt: skip
    finally:
        for frame in cached:
            frame.unpersist()
        delete_prefix(storage, stage_uri)

    per_partition: dict[str, dict[str, Any]] = {}
    empty = {"parsed_rows": 0, "rejected_rows": 0}
    for partition in partitions:
        value = partition.split("=", 1)[1]
        output = tf.curated_partition_uri(args["curated_uri"], spec, partition, run_id)
        count = counts.get(value, empty)
        snapshot = snapshots.get(partition, snap.Snapshot(partition, "", ()))
        carried_rows = snapshot.rows - snapshot.replaced_rows
        with clock.stage("compact"):
            snap.compact(spark, storage, snapshot, output)
        with clock.stage("copy_untouched"):
            copied = snap.copy_untouched(storage, snapshot, output)
        index_uri = snap.footer_index_uri(args["staging_uri"], spec, partition, output)
        with clock.stage("index_footers"):
            footers = snap.index_written_folder(spark, storage, spec, output, index_uri, copied)
        output_rows = sum(f.rows for f in footers.values())
        readable = [o for o in plan.readable if o.partition == partition]
        per_partition[partition] = {
            "input_rows": sum(data_lines.get(o.uri, 0) for o in readable),
            "output_rows": output_rows,
            "rejected_rows": count["rejected_rows"],
            "duplicates_removed": merged.duplicates.get(value, 0),
            "carried_rows": carried_rows,
            "snapshot_rows": snapshot.rows,
            "replaced_rows": snapshot.replaced_rows,
            "copied_files": len(copied),
            "rewritten_files": len(snapshot.touched),
            "compacted_files": len(snapshot.compacted),
            "compacted_rows": sum(f.rows for f in snapshot.compacted),
            "merged_onto": batch.published.get(partition),
            "source_objects": len(objects[partition]),
            "quarantined_objects": sum(1 for q in plan.quarantined if q["partition"] == partition),
        }
        check_balance(partition, per_partition[partition], parsed_rows=count["parsed_rows"])
    metrics = {
        "dataset": spec.name,
        "run_id": run_id,
        "partitions": partitions,
        "ingested_at": ingested_at.isoformat(),
        "mode": "incremental" if batch.from_manifest else "full",
        "source_objects": len(all_objects),
        "missing_objects": batch.missing_objects,
        "empty_objects": sorted(plan.empty_objects),
        "extra_columns": sorted(plan.extra_columns),
        "missing_columns": sorted(plan.missing_columns),
        "quarantined_objects": plan.quarantined,
        "quarantined_count": len(plan.quarantined),
        "reject_reasons": reasons,
        "fast_path": fast_path,
        "per_partition": per_partition,
        "stage_seconds": clock.seconds,
    }
    totals = ("input_rows", "output_rows", "rejected_rows", "duplicates_removed", "carried_rows", "replaced_rows")
    for key in totals:
        metrics[key] = sum(p[key] for p in per_partition.values())
    write_json(storage, metrics_uri(args["staging_uri"], spec.name, run_id), metrics)
    return metrics


def _merge(valid: Any, counts: tf.RowCounts, batch: Batch, spec: DatasetSpec, storage: Storage, spark: Any,
           staging_uri: str) -> tuple[tf.Merged, dict[str, snap.Snapshot]]:  # fmt: skip
    """The batch's valid rows merged onto the published files they compete with (etl/snapshot.py), and each
    merged partition's snapshot. The merge's `cached` frames include the batch's key hashes."""
    keys: dict[str, snap.BatchKeys] = {}
    hashes = None
    if spec.primary_key:
        valid = tf.with_key_hash(valid, spec)
        if any(batch.published.values()):
            hashes = _KeyHashes(valid, broadcast=counts.valid_rows() <= tf.BROADCAST_ROWS)
            for value, ranges in counts.key_ranges.items():
                keys[value] = snap.BatchKeys(counts.valid_rows(value), ranges, hashes)
    snapshots: dict[str, snap.Snapshot] = {}
    budget = snap.COMPACT_BUDGET_ROWS  # shared by the run's partitions
    for p, location in batch.published.items():
        if not location:
            continue
        inspected = snap.inspect_snapshot(spark, storage, spec, p, location, batch.replaced_sources,
                                          keys.get(p.split("=", 1)[1], snap.BatchKeys.none(spec))
                                          if spec.primary_key else None,
                                          snap.footer_index_uri(staging_uri, spec, p, location))  # fmt: skip
        snapshots[p] = snap.plan_compaction(inspected, budget, spec)
        budget -= sum(f.rows for f in snapshots[p].compacted)
    carried = snap.touched_rows(spark, storage, spec, snapshots.values(), batch.replaced_sources)
    # Built already (the exact scan), or about to be read twice by the merge: shared, and unpersisted after the write.
    shared = hashes is not None and (hashes.counts is not None or carried is not None)
    batch_counts = hashes.hash_counts() if shared else None
    merged = tf.merge_batch(valid, carried, spec, batch_counts, counts.valid_rows())
    if batch_counts is not None:
        merged.cached.append(batch_counts)
    return merged, snapshots


class _KeyHashes:
    """The batch's key hashes (`tf.hash_counts`), built and persisted on first use: by the snapshot inspection's
    exact scan (most batches never need it: the footers of the published files decide, see etl/snapshot.py) or
    by the merge, which reuses them rather than hashing the batch again."""

    def __init__(self, valid: Any, broadcast: bool) -> None:
        self.valid, self.broadcast = valid, broadcast
        self.counts: Any = None

    def hash_counts(self) -> Any:
        from pyspark import StorageLevel

        if self.counts is None:
            self.counts = tf.hash_counts(self.valid).persist(StorageLevel.MEMORY_AND_DISK)
        return self.counts

    def __call__(self) -> Any:
        """The distinct hashes as a join frame."""
        from pyspark.sql import functions as F

        hashes = self.hash_counts().select(tf.KEY_HASH)
        return F.broadcast(hashes) if self.broadcast else hashes


# Fast rows from which Arrow writes them (etl/arrow_write.py). Below it Spark does: a few hundred thousand rows
# take it about a second, which is what the extra Python stage costs, and the contested keys' winners would be a
# small file of their own in every batch, which every later batch copies (bench/incremental.py, bench/burst.py).
ARROW_WRITE_MIN_ROWS = 1_000_000
# Contested fast rows the driver collects to tell the Arrow writers which rows to leave to Spark; above it, Spark
# writes every row (a batch that updates millions of published keys).
DIRECT_CONTESTED_MAX = 2_000_000


def _fast_batch_rows(run_id: str) -> Any:
    """Selects this run's fast rows: theirs is the only batch row without a row hash (etl/fast_csv.py); carried rows
    have another run's id."""
    from pyspark.sql import functions as F

    return (F.col(tf.RUN_ID) == run_id) & F.col(tf.ROW_HASH).isNull()


def _contested_lines(merged: tf.Merged, run_id: str) -> dict[str, list[int]] | None:
    """{source object: line numbers} of the batch's contested fast rows, or None when they are too many to collect."""
    if merged.contested is None:
        return {}
    batch = merged.contested.where(_fast_batch_rows(run_id)).select(tf.SOURCE_OBJECT, tf.LINE)
    if batch.count() > DIRECT_CONTESTED_MAX:
        return None
    lines: dict[str, list[int]] = {}
    for source, line in batch.collect():
        lines.setdefault(source, []).append(line)
    return lines


def _write_candidate(rows: Any, batch_rows: int, snapshots: dict[str, snap.Snapshot], args: dict[str, str],
                     spec: DatasetSpec, partitions: list[str], storage: Storage, spark: Any,
                     keep_empty: bool = True) -> None:  # fmt: skip
    """Replace each partition's candidate folder by the merged rows: this run's rows in files of their own, the
    rows carried from rewritten published files in others. Keeping files apart by the run that ingested their
    rows is what lets a later batch that updates recent rows touch only recent files (etl/snapshot.py); mixed,
    every rewrite would pull the older rows along into the next one. Untouched published files are copied in
    afterwards (the caller)."""
    from pyspark.sql import functions as F

    run_id = args["run_id"]
    if len(partitions) > 1:  # a partitioned write replaces only the folders it writes rows to
        for partition in partitions:
            output = tf.curated_partition_uri(args["curated_uri"], spec, partition, run_id)
            tf.write_empty(spark, tf.curated_schema(spec), storage.spark_path(output), "parquet")
    rewritten = sum(s.rewritten_rows for s in snapshots.values())
    curated = tf.add_provenance(rows, spec)
    # Each part skips the other's rows cheaply: the batch's `lake_run_id` is a constant stamped after the cache, so
    # the filter folds to true or false on that side (the carried part used to scan every cached row: 0.7 s of
    # 2.4 s), and the published files' Parquet row groups keep min/max statistics the filter is checked against.
    parts = []
    if batch_rows or (len(partitions) == 1 and keep_empty):  # a single folder is always replaced (empty when nothing
        parts.append((curated.where(F.col(tf.RUN_ID) == run_id), batch_rows))  # is new and no one else writes to it)
    if rewritten:
        parts.append((curated.where(F.col(tf.RUN_ID) != run_id), rewritten))
    if parts:
        tf.write_curated(parts, storage, args["curated_uri"], spec, run_id, partitions)
    elif len(partitions) == 1:  # nothing for Spark to write: the folder is emptied for the rows written after this
        delete_prefix(storage, tf.curated_partition_uri(args["curated_uri"], spec, partitions[0], run_id))


def _write_rejects(rows: Any, counts: dict[str, dict[str, int]], args: dict[str, str], spec: DatasetSpec,
                   partitions: list[str], storage: Storage, spark: Any) -> None:  # fmt: skip
    """Each partition's rejects (an empty folder when it has none)."""
    from pyspark.sql import functions as F

    rejects = tf.reject_records(rows.where(F.col(tf.REASON).isNotNull()), spec, args["run_id"])
    for partition in partitions:
        if counts.get(partition.split("=", 1)[1], {}).get("rejected_rows", 0):
            tf.write_rejects(rejects, storage, args["staging_uri"], spec, args["run_id"], partition)
        else:
            path = tf.reject_partition_uri(args["staging_uri"], spec, partition, args["run_id"])
            tf.write_empty(spark, rejects.drop(spec.partition_key).schema, storage.spark_path(path), "json")


def check_balance(partition: str, counts: dict[str, int], parsed_rows: int) -> None:
    """Every data line of the partition's readable objects (counted on the driver, independently of the Spark
    parser) and every row carried from the published snapshot (counted on the snapshot) must end up written
    (counted from the written files), rejected, or removed as an older version of its key (counted from the key
    columns alone, independently of the de-duplication); otherwise rows were lost and the run fails."""
    accounted = counts["output_rows"] + counts["rejected_rows"] + counts["duplicates_removed"]
    if counts["input_rows"] + counts["carried_rows"] != accounted:
        raise RuntimeError(
            f"row accounting does not balance for {partition}: its objects hold {counts['input_rows']} data lines "
            f"and Spark parsed {parsed_rows} rows, {counts['carried_rows']} rows were carried from the published "
            f"snapshot {counts['merged_onto']}, but {counts['output_rows']} were written + "
            f"{counts['rejected_rows']} rejected + {counts['duplicates_removed']} duplicates = {accounted}"
        )


def main(argv: list[str] | None = None) -> int:
    from etl.session import build_spark, parse_job_args
    from etl.storage import storage_for

    args = parse_job_args(list(sys.argv[1:] if argv is None else argv), REQUIRED_ARGS, OPTIONAL_ARGS)
    storage = storage_for(args.get("lake_root"))
    spark = build_spark(f"{args['dataset']}-etl")
    metrics = run(args, storage, spark)
    print(
        f"{args['dataset']} run {args['run_id']}: {metrics['input_rows']} input, {metrics['output_rows']} "
        f"output, {metrics['rejected_rows']} rejected, {metrics['duplicates_removed']} duplicates removed"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
