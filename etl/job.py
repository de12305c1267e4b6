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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from etl import arrow_merge, arrow_write, fast_csv, key_ranges
from etl import snapshot as snap
from etl import transforms as tf
from etl.batch import Batch, read_manifest
from etl.footers import Footer
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
        parallel = sum(o.size for o in all_objects) >= PARALLEL_INSPECTION_BYTES
        inspect_all = _inspect_in_tasks(spark, storage, spec) if parallel else None
        plan = tf.plan_sources(storage, all_objects, spec, inspect_all)
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
    folders = {p.split("=", 1)[1]: tf.curated_partition_uri(args["curated_uri"], spec, p, run_id) for p in partitions}
    fast_path: dict[str, Any] = {"unsupported": fast_csv.unsupported(spec)}
    cached: list[Any] = []
    staged = None
    try:
        if fast_path["unsupported"] is None:
            with clock.stage("parse_csv"):
                for folder in folders.values():  # the tasks write into them: a re-run replaces every file
                    delete_prefix(storage, folder)
                # Unique per write, as Spark's file names are: later runs copy these files into their folders.
                target = arrow_write.curated_target(spark, spec, folders, run_id, ingested_at,
                                                    f"{ARROW_FILE_PREFIX}{uuid.uuid4().hex}")  # fmt: skip
                staged = fast_csv.read_staged(spark, storage, plan, spec, stage_uri, target)
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
                                       args["staging_uri"], staged)  # fmt: skip
        cached += merged.cached
        duplicates = _duplicates(merged, staged)
        copied_while_writing: dict[str, dict[str, Footer]] = {}
        with clock.stage("write_candidate"):
            if staged is None:
                _write_candidate(merged.rows, batch_rows, snapshots, args, spec, partitions, storage, spark)
            else:
                copied_while_writing = _complete_fast_candidate(merged, staged, batch_rows, snapshots, args, spec,
                                                                partitions, storage, spark)  # fmt: skip
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
            if partition in copied_while_writing:
                copied = copied_while_writing[partition]
            else:
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
            "duplicates_removed": duplicates.get(value, 0),
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


@dataclass
class Merge:
    """A run's merge: the rows Spark writes (`rows`, None when Spark writes none), per partition value the rows
    that lost their key, the frames to unpersist after the write, and, when Arrow ranked the batch
    (etl/arrow_merge.py), where its losers are."""

    rows: Any
    duplicates: dict[str, int]
    cached: list[Any] = field(default_factory=list)
    losers: arrow_merge.Losers | None = None
    spark: tf.Merged | None = None  # when Spark merged


def _merge(valid: Any, counts: tf.RowCounts, batch: Batch, spec: DatasetSpec, storage: Storage, spark: Any,
           staging_uri: str, staged: fast_csv.Staged | None) -> tuple[Merge, dict[str, snap.Snapshot]]:  # fmt: skip
    """The batch's valid rows merged onto the published files they compete with (etl/snapshot.py), and each
    merged partition's snapshot: ranked by Arrow when the rows that may share a key are few enough
    (etl/arrow_merge.py), else by Spark. The merge's `cached` frames include the batch's key hashes."""
    from pyspark.sql import functions as F

    keys: dict[str, snap.BatchKeys] = {}
    hashes = None
    if spec.primary_key:
        hashed = tf.with_key_hash(valid, spec)
        if any(batch.published.values()):
            hashes = _KeyHashes(hashed, broadcast=counts.valid_rows() <= tf.BROADCAST_ROWS)
            for value, ranges in counts.key_ranges.items():
                keys[value] = snap.BatchKeys(counts.valid_rows(value), ranges, hashes)
        valid = hashed
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
    inspection = [hashes.counts] if hashes is not None and hashes.counts is not None else []
    if staged is not None:
        losers = _arrow_ranking(valid, staged, snapshots, batch, spec, storage)
        if losers is not None:
            rows = valid.where(F.col(tf.CURATED_FILE).isNull()) if staged.slow_lines else None
            if rows is not None and losers.slow:
                lost = spark.createDataFrame(losers.slow, f"`{tf.SOURCE_OBJECT}` STRING, `{tf.LINE}` BIGINT")
                rows = rows.join(F.broadcast(lost), [tf.SOURCE_OBJECT, tf.LINE], "left_anti")
            return Merge(rows, losers.duplicates, inspection, losers), snapshots
    carried = snap.touched_rows(spark, storage, spec, snapshots.values(), batch.replaced_sources)
    # Built already (the exact scan), or about to be read twice by the merge: shared, and unpersisted after the write.
    shared = hashes is not None and (hashes.counts is not None or carried is not None)
    batch_counts = hashes.hash_counts() if shared else None
    merged = tf.merge_batch(valid, carried, spec, batch_counts, counts.valid_rows())
    if batch_counts is not None:
        merged.cached.append(batch_counts)
    return Merge(merged.rows, merged.duplicates, merged.cached, None, merged), snapshots


def _duplicates(merge: Merge, staged: fast_csv.Staged | None) -> dict[str, int]:
    """Per partition value the rows that lost their key: in the merge, and (fast path) within the tasks' blocks."""
    duplicates = dict(merge.duplicates)
    for value, removed in (staged.duplicates if staged else {}).items():
        duplicates[value] = duplicates.get(value, 0) + removed
    return duplicates


def _arrow_ranking(valid: Any, staged: fast_csv.Staged, snapshots: dict[str, snap.Snapshot], batch: Batch,
                   spec: DatasetSpec, storage: Storage) -> arrow_merge.Losers | None:  # fmt: skip
    """The losers of the batch's merge as Arrow ranks them on the driver (etl/arrow_merge.py), or None when the rows
    that may share a key are more than it ranks. Those rows are the fast rows of blocks whose key ranges overlap
    another piece's (etl/key_ranges.py), the slow lines' rows, and the rows of the touched published files; read,
    they are narrowed down to the rows that may share a key (arrow_merge.narrowed, arrow_merge.published_rows)."""
    from concurrent.futures import ThreadPoolExecutor

    from pyspark.sql import functions as F

    touched = [(p.split("=", 1)[1], f) for p, s in snapshots.items() for f in s.touched]
    timestamps = any(c.type == "timestamp" for c in spec.columns)
    if timestamps and any(not f.uri.rsplit("/", 1)[1].startswith(ARROW_FILE_PREFIX) for _, f in touched):
        return None  # a file Spark wrote may hold timestamps pyarrow 17 misreads (arrow_write.rewrite_without)
    slow_ranges = staged.slow_counts.key_ranges if staged.slow_counts is not None else {}
    slow_values = [v for v, c in (staged.slow_counts.by_partition if staged.slow_counts else {}).items()
                   if c["parsed_rows"] > c["rejected_rows"]]  # fmt: skip
    suspects: list[int] = []
    if spec.primary_key:
        pieces = [key_ranges.Piece(value, ranges) for value, ranges, _, _ in staged.blocks]
        pieces += [key_ranges.Piece(v, slow_ranges.get(v, {})) for v in slow_values]
        pieces += [key_ranges.Piece(v, {c: f.footer.ranges[c] for c in spec.primary_key if c in f.footer.ranges})
                   for v, f in touched]  # fmt: skip
        suspects = sorted(i for i in key_ranges.overlapping(pieces, spec.primary_key[0]) if i < len(staged.blocks))
    slow_rows = sum(staged.slow_counts.valid_rows(v) for v in slow_values) if slow_values and spec.primary_key else 0
    block_rows = [sum(count for _, _, count in placed) for _, _, placed, _ in staged.blocks]
    fast_rows = sum(block_rows[i] for i in suspects)
    to_rank = fast_rows + slow_rows + sum(f.footer.rows for _, f in touched) if spec.primary_key else 0
    if to_rank > arrow_merge.MAX_ROWS or slow_rows > arrow_merge.MAX_COLLECTED_ROWS:
        return None
    in_file: dict[str, list[tuple[int, int, str, int]]] = {}  # keys file -> its blocks in the order written
    for i, (_, _, placed, uri) in enumerate(staged.blocks):
        in_file.setdefault(uri, []).append((i, block_rows[i], placed[0][0], placed[0][1]))
    suspect = set(suspects)
    keys: dict[str, set[int] | None] = {}  # a keys file whose every block is a suspect is read whole
    for uri, blocks in in_file.items():
        mine = {i for i, *_ in blocks if i in suspect}
        if mine:
            keys[uri] = None if len(mine) == len(blocks) else mine
    replaced = set(batch.replaced_sources)
    files = sorted(staged.files) + [f.uri for _, f in touched]
    columns = arrow_merge.published_columns(spec)
    with ThreadPoolExecutor(max_workers=snap.COPY_THREADS) as pool:  # Arrow's Parquet reader releases the GIL
        published = pool.map(lambda item: arrow_merge.read_parquet(storage, item[1].uri, columns), touched)
        # each keys file filtered in its thread: only its suspect rows are kept in memory together
        tables = list(pool.map(lambda uri: arrow_merge.fast_rows(arrow_merge.read_parquet(storage, uri), in_file[uri],
                                                                 keys[uri], files, spec), list(keys)))  # fmt: skip
        published = list(published)
    if slow_rows and spec.primary_key:
        ranked_names = arrow_merge.ranked_schema(spec).names
        narrow = valid.where(F.col(tf.CURATED_FILE).isNull()).select(
            spec.partition_key, *[c for c in ranked_names if c in valid.columns and c != spec.partition_key])
        tables.append(arrow_merge.slow_rows(narrow.collect(), spec))
    rows = arrow_merge.concat(tables, spec)
    if spec.primary_key:
        keyed = [(value, table) for (value, _), table in zip(touched, published, strict=True)]
        rows = arrow_merge.narrowed(rows, keyed, spec)

    def published_rows(n: int) -> tuple[Any, list[int]]:
        return arrow_merge.published_rows(published[n], touched[n][0], len(staged.files) + n, replaced, spec,
                                          rows if spec.primary_key else None)  # fmt: skip

    with ThreadPoolExecutor(max_workers=snap.COPY_THREADS) as pool:  # the semi joins release the GIL too
        ranked = list(pool.map(published_rows, range(len(touched))))
    tables = [rows] + [table for table, _ in ranked]
    gone = {file.uri: positions for (_, file), (_, positions) in zip(touched, ranked, strict=True)}
    losers = arrow_merge.Losers()
    if spec.primary_key:
        losers = arrow_merge.rank(arrow_merge.concat(tables, spec), spec, files, set(staged.files))
    for uri, positions in gone.items():
        losers.published[uri] = sorted(losers.published.get(uri, []) + positions)
    return losers


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


# Bytes of raw objects from which Spark tasks inspect them (one object a task) rather than the driver: a Spark job
# costs about 0.1 s, the driver's pass about 4.5 s a GB on one core (bench/etl_throughput.py).
PARALLEL_INSPECTION_BYTES = 64 * 1024 * 1024


def _inspect_in_tasks(spark: Any, storage: Storage, spec: DatasetSpec) -> Any:
    """`tf.plan_sources`'s `inspect_all`: each object's `etl.readers.inspect_object` in a Spark task of its own."""
    from etl.readers import inspect_object
    from etl.storage import for_tasks

    task_storage = for_tasks(storage)

    def inspect_all(uris: list[str]) -> list[Any]:
        rdd = spark.sparkContext.parallelize(uris, len(uris))
        return rdd.map(lambda uri: inspect_object(task_storage, uri, spec)).collect()

    return inspect_all


def _complete_fast_candidate(merge: Merge, staged: fast_csv.Staged, batch_rows: int,
                             snapshots: dict[str, snap.Snapshot], args: dict[str, str], spec: DatasetSpec,
                             partitions: list[str], storage: Storage,
                             spark: Any) -> dict[str, dict[str, Footer]]:  # fmt: skip
    """The fast rows are in their files already (etl/arrow_write.py). Spark adds the slow lines' rows that won (and,
    when Spark merged, the rows carried from the touched published files); the files that hold a row that lost its
    key are rewritten without it (and, when Arrow ranked, the touched published files are rewritten into the
    candidate folder without theirs). Meanwhile the untouched published files are copied in (Spark only appends
    here, so nothing deletes them); returns their footers per partition (`snap.copy_untouched`). A folder left
    without rows gets an empty file with the schema."""
    from concurrent.futures import ThreadPoolExecutor

    from pyspark.sql import functions as F

    folders = {p: tf.curated_partition_uri(args["curated_uri"], spec, p, args["run_id"]) for p in partitions}
    with ThreadPoolExecutor(max_workers=1) as copier:  # the copies wait on S3, the rewrites on the CPU
        copies = copier.submit(lambda: {p: snap.copy_untouched(storage, s, folders[p]) for p, s in snapshots.items()})
        if merge.losers is None:
            rest = merge.rows.where(F.col(tf.CURATED_FILE).isNull())
            _write_candidate(rest, batch_rows - staged.fast_rows, snapshots, args, spec, partitions, storage, spark,
                             append=True)  # fmt: skip
            _drop_fast_losers(merge.spark, staged, spec, storage, spark)
        else:
            if merge.rows is not None:
                slow_rows = staged.slow_counts.valid_rows() if staged.slow_counts else 0
                _write_candidate(merge.rows, slow_rows, {}, args, spec, partitions, storage, spark, append=True)
            _rewrite_without_losers(merge.losers, staged, snapshots, folders, storage, spark)
        copied = copies.result()
    for folder in folders.values():
        if not snap.data_files(storage, folder):
            tf.write_empty(spark, tf.curated_schema(spec), storage.spark_path(folder), "parquet")
    return copied


# The names of the files the fast path writes (and of their rewrites, which keep the name's stem).
ARROW_FILE_PREFIX = "part-arrow-"
# Rows rewritten on the driver, in threads (Arrow's Parquet reader and writer release the GIL); above it, in Spark
# tasks. A Spark job of two tasks cost 0.5 s for two files of 200k rows (bench/incremental.py), the threads 0.2 s.
DRIVER_REWRITE_ROWS = 2_000_000


def _rewrite_without_losers(losers: arrow_merge.Losers, staged: fast_csv.Staged, snapshots: dict[str, snap.Snapshot],
                            folders: dict[str, str], storage: Storage, spark: Any) -> None:  # fmt: skip
    """Rewrite the fast rows' files that hold losers in place, and each touched published file into its partition's
    candidate folder without its losers (copied as it is when it has none): in driver threads up to
    DRIVER_REWRITE_ROWS rows, in Spark tasks above. Every file's rows are checked against its count less its
    losers."""
    from concurrent.futures import ThreadPoolExecutor

    from etl.storage import for_tasks

    suffix = uuid.uuid4().hex[:8]
    jobs, expected, copies = [], {}, []
    for uri, positions in losers.fast.items():
        jobs.append((uri, sorted(set(positions)), arrow_write.renamed(uri, uri.rsplit("/", 1)[0], suffix), True))
        expected[uri] = staged.files[uri] - len(set(positions))
    for partition, snapshot in snapshots.items():
        for published in snapshot.touched:
            positions = sorted(set(losers.published.get(published.uri, [])))
            if not positions:
                copies.append((published.uri, join_uri(folders[partition], published.uri.rsplit("/", 1)[1])))
                continue
            jobs.append((published.uri, positions, arrow_write.renamed(published.uri, folders[partition], suffix),
                         False))  # fmt: skip
            expected[published.uri] = published.footer.rows - len(positions)
    with ThreadPoolExecutor(max_workers=snap.COPY_THREADS) as pool:
        list(pool.map(lambda item: storage.copy(*item), copies))  # list(): re-raises a failed copy
    if not jobs:
        return
    if sum(expected.values()) <= DRIVER_REWRITE_ROWS:  # a Spark job's own cost is most of a small rewrite's
        with ThreadPoolExecutor(max_workers=spark.sparkContext.defaultParallelism) as pool:
            results = list(pool.map(lambda job: (job[0], arrow_write.rewrite_without(storage, *job)), jobs))
    else:
        task_storage = for_tasks(storage)

        def rewrite(job: tuple[str, list[int], str, bool]) -> tuple[str, int]:
            return job[0], arrow_write.rewrite_without(task_storage, *job)

        results = spark.sparkContext.parallelize(jobs, len(jobs)).map(rewrite).collect()
    _check_rewritten(dict(results), expected)


def _check_rewritten(written: dict[str, int], expected: dict[str, int]) -> None:
    """Each rewritten file's rows against its rows less those that lost their key."""
    for uri, rows in written.items():
        if rows != expected[uri]:
            raise RuntimeError(f"curated file {uri}: rewritten with {rows} rows, not the {expected[uri]} left after "
                               f"its rows that lost their key")  # fmt: skip


def _drop_fast_losers(merged: tf.Merged, staged: fast_csv.Staged, spec: DatasetSpec, storage: Storage,
                      spark: Any) -> None:  # fmt: skip
    """Rewrite the fast rows' files that hold a row that lost its key to a version in another block, object or
    published file (the tasks left out the older versions within each block), and check every file's count."""
    from pyspark.sql import functions as F

    losers = merged.losers(spec)
    if losers is None:
        return
    fast = losers.where(F.col(tf.CURATED_FILE).isNotNull()).select(tf.CURATED_FILE, tf.CURATED_ROW)
    dropped = dict(fast.groupBy(tf.CURATED_FILE).count().collect())
    if not dropped:
        return
    written = arrow_write.drop_rows(spark, storage, fast, tf.CURATED_FILE, tf.CURATED_ROW, uuid.uuid4().hex[:8])
    _check_rewritten(written, {uri: staged.files[uri] - rows for uri, rows in dropped.items()})


def _write_candidate(rows: Any, batch_rows: int, snapshots: dict[str, snap.Snapshot], args: dict[str, str],
                     spec: DatasetSpec, partitions: list[str], storage: Storage, spark: Any,
                     append: bool = False) -> None:  # fmt: skip
    """Replace each partition's candidate folder by the merged rows (add them to it with `append`): this run's rows in
    files of their own, the rows carried from rewritten published files in others. Keeping files apart by the run
    that ingested their rows is what lets a later batch that updates recent rows touch only recent files
    (etl/snapshot.py); mixed, every rewrite would pull the older rows along into the next one. Untouched published
    files are copied in afterwards (the caller). With `append` the folders hold the fast rows' files already and are
    added to."""
    from pyspark.sql import functions as F

    run_id = args["run_id"]
    if len(partitions) > 1 and not append:  # a partitioned write replaces only the folders it writes rows to
        for partition in partitions:
            output = tf.curated_partition_uri(args["curated_uri"], spec, partition, run_id)
            tf.write_empty(spark, tf.curated_schema(spec), storage.spark_path(output), "parquet")
    rewritten = sum(s.rewritten_rows for s in snapshots.values())
    curated = tf.add_provenance(rows, spec)
    # Each part skips the other's rows cheaply: the batch's `lake_run_id` is a constant stamped after the cache, so
    # the filter folds to true or false on that side (the carried part used to scan every cached row: 0.7 s of
    # 2.4 s), and the published files' Parquet row groups keep min/max statistics the filter is checked against.
    parts = []
    if batch_rows or (len(partitions) == 1 and not append):  # a single folder is always replaced (empty when
        parts.append((curated.where(F.col(tf.RUN_ID) == run_id), batch_rows))  # nothing is new)
    if rewritten:
        parts.append((curated.where(F.col(tf.RUN_ID) != run_id), rewritten))
    if parts:
        tf.write_curated(parts, storage, args["curated_uri"], spec, run_id, partitions, append=append)


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
    columns alone, independently of the de-duplication; the tasks' own de-duplication within a block checks its
    count against the key columns' count in the task); otherwise rows were lost and the run fails."""
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
