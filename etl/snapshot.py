"""The published snapshot an incremental batch merges onto, file by file.

A batch competes with a published Parquet file only when the file holds a key of the batch or a row of an object the
batch re-reads (etl/batch.py). Those files are read and merged (their key columns ranked by etl/arrow_merge.py and
the files rewritten without the losers by Arrow, or by etl/transforms.merge_batch); every other file is carried into
the candidate folder as an object copy (S3 CopyObject in AWS: the bytes never pass through the job), because its
rows would come out of the merge unchanged. The files' footers decide which is which where their key ranges can
(`inspect_snapshot`), a scan of their key columns where they cannot; so a batch costs its own rows, the rows of the
files it touches, and the footers.

Where the batch's keys are spread over the whole partition (updates of orders of any earlier batch), every file is
touched and the partition is rewritten, as a copy-on-write table must; bench/incremental.py measures both cases.

Small batches leave small files, and every later batch copies each of them: after k batches a partition of
small files costs k COPY requests per run (k^2/2 a day) and Athena opens k files per query. So a run also
compacts (`plan_compaction`): at least COMPACT_FANIN untouched files of about the same size, up to a budget of
rows, are read and written as one file instead of being copied; their rows pass unchanged, provenance included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import reduce
from pathlib import PurePosixPath
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl import transforms as tf
from etl.footers import Footer, folder_footers, overlaps, read_footers, write_index
from etl.spec import DatasetSpec
from etl.storage import Storage, join_uri

IN_BATCH = "_in_batch"

@dataclass(frozen=True)
class PublishedFile:
    uri: str
    footer: Footer
    replaced_rows: int  # rows of objects the batch re-reads
    touched: bool  # holds a key of the batch or a replaced row: read and merged, not copied

    @property
    def rows(self) -> int:
        return self.footer.rows


@dataclass(frozen=True)
class Snapshot:
    """One partition's published snapshot as the batch sees it."""

    partition: str  # key=value
    location: str
    files: tuple[PublishedFile, ...]
    compacted: tuple[PublishedFile, ...] = ()  # untouched files rewritten as one file (`plan_compaction`), not copied

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def replaced_rows(self) -> int:
        return sum(f.replaced_rows for f in self.files)

    @property
    def touched(self) -> list[PublishedFile]:
        return [f for f in self.files if f.touched]

    @property
    def untouched(self) -> list[PublishedFile]:
        return [f for f in self.files if not f.touched and f.rows]

    @property
    def copied(self) -> list[PublishedFile]:
        compacted = {f.uri for f in self.compacted}
        return [f for f in self.untouched if f.uri not in compacted]

    @property
    def rewritten_rows(self) -> int:
        """Rows of touched files the merge reads (and writes, unless the batch replaces them)."""
        return sum(f.rows - f.replaced_rows for f in self.touched)


def ranged_columns(spec: DatasetSpec) -> list[str]:
    """The columns whose min/max per file the footer index keeps: the keys and the source object."""
    return [*spec.primary_key, tf.SOURCE_OBJECT]


def footer_index_uri(staging_uri: str, spec: DatasetSpec, partition: str, location: str) -> str:
    """Where the footer index of a curated folder lives (etl/footers.py): next to the run's other staging outputs,
    named after the folder's `run=` segment."""
    return join_uri(staging_uri, "footers", spec.name, partition, PurePosixPath(location.rstrip("/")).name,
                    "footers.json")  # fmt: skip


def index_written_folder(spark: SparkSession, storage: Storage, spec: DatasetSpec, folder: str, index_uri: str,
                         copied: dict[str, Footer]) -> dict[str, Footer]:  # fmt: skip
    """Read the footers of the files this run wrote into `folder`, check that the `copied` files are there, and
    write the folder's footer index; returns every file's footer. The footers count the rows written."""
    files = data_files(storage, folder)
    lost = sorted(set(copied) - set(files))
    if lost:
        raise RuntimeError(f"candidate folder {folder}: the copies {lost[:3]} of untouched published files are "
                           f"missing after the copy")  # fmt: skip
    written = [uri for uri in files if uri not in copied]
    ranged = ranged_columns(spec)
    footers = dict(zip(written, read_footers(spark, [storage.spark_path(uri) for uri in written], ranged), strict=True))
    footers.update(copied)
    write_index(storage, index_uri, folder, footers, ranged)
    return footers


def data_files(storage: Storage, location: str) -> list[str]:
    """The Parquet data files of a curated folder (Spark's `_SUCCESS` and hidden checksum files are not data)."""
    return [
        uri
        for uri in storage.list_keys(location)
        if not PurePosixPath(uri).name.startswith(("_", ".")) and uri.endswith(".parquet")
    ]


@dataclass(frozen=True)
class BatchKeys:
    """What the snapshot inspection knows of one partition's batch keys: their valid rows, the (min, max) of each
    primary key column over them, and their `_key_hash` values as a join frame (built on first use)."""

    rows: int
    ranges: dict[str, tuple[Any, Any]]
    hashes: Callable[[], DataFrame]

    @staticmethod
    def none(spec: DatasetSpec) -> BatchKeys:
        """A partition the batch has no valid rows for: its ranges are empty, so no published file overlaps them."""
        return BatchKeys(0, {name: (None, None) for name in spec.primary_key}, lambda: None)


def inspect_snapshot(spark: SparkSession, storage: Storage, spec: DatasetSpec, partition: str, location: str,
                     replaced: Iterable[str], keys: BatchKeys | None, index_uri: str) -> Snapshot:  # fmt: skip
    """Each published file's rows, its rows of re-read objects, and whether it holds a key of the batch (`keys`;
    None for a dataset without a primary key).

    The files' footers come first (etl/footers.py, from the folder's footer index `index_uri`): their row counts,
    schemas and key ranges. A file whose key range misses the box of the batch's key ranges holds no key of the
    batch; with ids that grow over time that is every file but the most recent ones. The files left are only
    scanned (their keys joined with the batch's key hashes) when they hold more rows than the batch: rewriting
    fewer rows than the batch brings costs less than the scan and the broadcast of the hashes that would prove
    some of them untouched. Rows of re-read objects are counted by a scan of the files whose source-object range
    may hold them.
    A snapshot written with other columns than the spec's curated schema fails, naming both: carrying its files
    would mix two schemas in one partition."""
    if not storage.list_keys(location):  # a folder Spark wrote holds at least its _SUCCESS marker
        raise RuntimeError(f"published snapshot {location} holds no objects: it was deleted (by a vacuum, or by hand) "
                           f"after this execution looked it up, and merging onto nothing would drop its rows; re-run "
                           f"the partition in full (`lake rerun {spec.name} --partition {partition}`)")  # fmt: skip
    files = data_files(storage, location)
    footers = folder_footers(spark, storage, location, files, ranged_columns(spec), index_uri)
    if not files:
        return Snapshot(partition, location, ())
    paths = {uri: storage.spark_path(uri) for uri in files}
    for uri, footer in footers.items():
        check_schema(footer.schema or spark.read.parquet(paths[uri]).schema, spec, location, uri)
    replaced = sorted(replaced)
    may_replace = {uri for uri, f in footers.items() if any(overlaps(f, {tf.SOURCE_OBJECT: (v, v)}) for v in replaced)}
    candidates = {uri for uri, f in footers.items() if keys is not None and overlaps(f, keys.ranges)}
    exact = keys is not None and sum(footers[uri].rows for uri in candidates) > keys.rows
    scan = {uri: paths[uri] for uri in files if uri in may_replace or (exact and uri in candidates)}
    scanned = _scan(spark, spec, partition, scan, replaced, keys.hashes() if exact else None)
    published = []
    for uri in files:
        rows, replaced_rows, in_batch = scanned.get(uri, (footers[uri].rows, 0, None))
        if rows != footers[uri].rows:
            raise RuntimeError(f"published file {uri}: its footer counts {footers[uri].rows} rows, a scan {rows}")
        holds_key = uri in candidates and (in_batch if in_batch is not None else True)
        published.append(PublishedFile(uri, footers[uri], replaced_rows, holds_key or replaced_rows > 0))
    return Snapshot(partition, location, tuple(published))


def _scan(spark: SparkSession, spec: DatasetSpec, partition: str, paths: dict[str, str], replaced: list[str],
          hashes: DataFrame | None) -> dict[str, tuple[int, int, bool | None]]:  # fmt: skip
    """{file URI: (rows, rows of `replaced` objects, holds a key of `hashes` (None without them))}: one scan of
    the files' key and source columns."""
    if not paths:
        return {}
    df = spark.read.parquet(*paths.values())
    is_replaced = F.col(tf.SOURCE_OBJECT).isin(replaced) if replaced else F.lit(False)
    scan = df.select(F.col("_metadata.file_path").alias(tf.FILE), is_replaced.alias("_replaced"), *spec.primary_key)
    in_batch = F.lit(None).cast("boolean")
    if hashes is not None:
        keyed = tf.with_key_hash(scan.withColumn(spec.partition_key, F.lit(partition.split("=", 1)[1])), spec)
        scan = keyed.join(hashes.withColumn(IN_BATCH, F.lit(True)), tf.KEY_HASH, "left")
        in_batch = F.col(IN_BATCH).isNotNull()
    per_file = scan.groupBy(tf.FILE).agg(F.count(F.lit(1)), F.count(F.when(F.col("_replaced"), 1)), F.max(in_batch))
    by_path = {tf.spark_file_path(spark, path): uri for uri, path in paths.items()}
    counted: dict[str, tuple[int, int, bool | None]] = {uri: (0, 0, False if hashes is not None else None)
                                                        for uri in paths}  # fmt: skip
    for path, rows, replaced_rows, holds_key in per_file.collect():
        if path not in by_path:
            raise RuntimeError(f"published snapshot: Spark read {path}, which is not one of the files it was given")
        counted[by_path[path]] = (int(rows), int(replaced_rows), holds_key)
    return counted


def check_schema(schema: T.StructType, spec: DatasetSpec, location: str, uri: str) -> None:
    found = [(f.name, f.dataType.simpleString()) for f in schema.fields]
    expected = tf.column_types(spec)
    if found != expected:
        raise ValueError(
            f"published snapshot {location} has columns {found} in {PurePosixPath(uri).name}, but dataset "
            f"{spec.name} now writes {expected}; re-run the partition in full (`lake rerun`) instead of merging a "
            f"batch onto it"
        )


def touched_rows(spark: SparkSession, storage: Storage, spec: DatasetSpec, snapshots: Iterable[Snapshot],
                 replaced: Iterable[str]) -> DataFrame | None:  # fmt: skip
    """The rows of the touched files in the shape of `transforms.valid_rows` (their original provenance kept, with
    `_key_hash` when the dataset has a primary key), without the rows of objects the batch re-reads."""
    frames: list[DataFrame] = []
    replaced = sorted(replaced)
    for snapshot in snapshots:
        if not snapshot.touched:
            continue
        df = spark.read.parquet(*[storage.spark_path(f.uri) for f in snapshot.touched])
        kept = df.where(~F.col(tf.SOURCE_OBJECT).isin(replaced)) if replaced else df
        rows = kept.select(
            tf.SOURCE_OBJECT,
            F.lit(snapshot.partition.split("=", 1)[1]).alias(spec.partition_key),
            F.lit(None).cast("long").alias(tf.LINE),
            *spec.column_names,
            tf.INGESTED_AT,
            tf.RUN_ID,
            F.lit(None).cast("long").alias(tf.ROW_HASH),
        )
        frames.append(tf.with_key_hash(rows, spec) if spec.primary_key else rows)
    return reduce(DataFrame.unionByName, frames) if frames else None


# Compaction: files merge COMPACT_FANIN at a time, while COMPACT_FANIN of them fit the run's COMPACT_BUDGET_ROWS.
# So files over COMPACT_BUDGET_ROWS / COMPACT_FANIN rows (125k) are never compacted and can pile up (about 180 a
# day per partition at bench/burst.py's target, from 1,440 batch files of 16,667 rows); smaller ones are.
COMPACT_FANIN = 8
# Rows a run compacts at most, over all its partitions: a few seconds of Spark whatever the batch (a partition's
# compaction is written by one task).
COMPACT_BUDGET_ROWS = 1_000_000


def size_tier(rows: int, target_rows: int = tf.TARGET_ROWS_PER_FILE) -> int:
    """How many times COMPACT_FANIN files of `rows` rows could merge before reaching `target_rows`: 0 for a file
    that needs no compaction (over target / COMPACT_FANIN rows), 1 up to that, 2 up to target / COMPACT_FANIN^2..."""
    tier = 0
    while 0 < rows * COMPACT_FANIN ** (tier + 1) <= target_rows:  # an empty file is never copied, nor compacted
        tier += 1
    return tier


def plan_compaction(snapshot: Snapshot, budget: int, spec: DatasetSpec,
                    target_rows: int = tf.TARGET_ROWS_PER_FILE) -> Snapshot:  # fmt: skip
    """The snapshot with the files this run compacts: of the smallest size tier that holds at least COMPACT_FANIN
    untouched files within `budget` rows, as many as fit, neighbours in primary-key order so the compacted file's
    key range stays narrow for the footer checks of later batches. Unchanged when no tier qualifies."""
    tiers: dict[int, list[PublishedFile]] = {}
    for f in snapshot.untouched:
        if (tier := size_tier(f.rows, target_rows)) > 0:
            tiers.setdefault(tier, []).append(f)
    first_key = spec.primary_key[0] if spec.primary_key else None

    def key_order(f: PublishedFile) -> tuple[int, Any]:
        bounds = f.footer.ranges.get(first_key) if first_key else None
        return (0, bounds[0]) if bounds else (1, f.uri)

    for tier in sorted(tiers, reverse=True):
        chosen, rows = [], 0
        for f in sorted(tiers[tier], key=key_order):
            if rows + f.rows > budget:
                break
            chosen.append(f)
            rows += f.rows
        if len(chosen) >= COMPACT_FANIN:
            return replace(snapshot, compacted=tuple(chosen))
    return snapshot


def compact(spark: SparkSession, storage: Storage, snapshot: Snapshot, destination: str,
            target_rows: int = tf.TARGET_ROWS_PER_FILE) -> None:  # fmt: skip
    """Write the rows of the snapshot's compacted files, unchanged, as one file (more above `target_rows`) added to
    the candidate folder `destination`. Called after Spark has written the folder (its overwrite would delete it)."""
    if not snapshot.compacted:
        return
    rows = spark.read.parquet(*[storage.spark_path(f.uri) for f in snapshot.compacted])
    writer = rows.coalesce(1).write.mode("append").option("maxRecordsPerFile", target_rows)
    writer.parquet(storage.spark_path(destination))


COPY_THREADS = 16  # CopyObject calls in flight: each takes tens of milliseconds on S3, however small the file


def copy_untouched(storage: Storage, snapshot: Snapshot, destination: str) -> dict[str, Footer]:
    """Copy the files the batch does not touch into the candidate folder `destination`, in parallel; returns the
    copies' footers by URI (a copy has the bytes, so the footer, of its original). Called after Spark has written
    the folder (its overwrite would delete them). File names are kept: they are Spark's UUID-named part files, so
    they cannot collide with this run's."""
    copies = {f.uri: join_uri(destination, PurePosixPath(f.uri).name) for f in snapshot.copied}
    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        list(pool.map(lambda item: storage.copy(*item), copies.items()))  # list(): re-raises a failed copy
    return {copies[f.uri]: replace(f.footer, path=storage.spark_path(copies[f.uri])) for f in snapshot.copied}
