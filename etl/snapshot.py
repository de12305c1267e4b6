"""The published snapshot an incremental batch merges onto, file by file.

A batch competes with a published Parquet file only when the file holds a key of the batch or a row of an object
the batch re-reads (etl/batch.py). Those files are read and merged (etl/transforms.merge_batch); every other file
is carried into the candidate folder as an object copy (S3 CopyObject in AWS: the bytes never pass through the
job), because its rows would come out of the merge unchanged. One scan of the snapshot's key and source columns
decides which is which, so a batch costs its own rows, the rows of the files it touches, and that scan.

Where the batch's keys are spread over the whole partition (updates of orders of any earlier batch), every file is
touched and the partition is rewritten, as a copy-on-write table must; bench/incremental.py measures both cases.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce
from pathlib import PurePosixPath

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from etl import transforms as tf
from etl.spec import DatasetSpec
from etl.storage import Storage, join_uri

IN_BATCH = "_in_batch"

@dataclass(frozen=True)
class PublishedFile:
    uri: str
    rows: int
    replaced_rows: int  # rows of objects the batch re-reads
    touched: bool  # holds a key of the batch or a replaced row: read and merged, not copied


@dataclass(frozen=True)
class Snapshot:
    """One partition's published snapshot as the batch sees it."""

    partition: str  # key=value
    location: str
    files: tuple[PublishedFile, ...]

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
    def copied(self) -> list[PublishedFile]:
        return [f for f in self.files if not f.touched and f.rows]

    @property
    def rewritten_rows(self) -> int:
        """Rows of touched files the merge reads (and writes, unless the batch replaces them)."""
        return sum(f.rows - f.replaced_rows for f in self.touched)


def data_files(storage: Storage, location: str) -> list[str]:
    """The Parquet data files of a curated folder (Spark's `_SUCCESS` and hidden checksum files are not data)."""
    return [
        uri
        for uri in storage.list_keys(location)
        if not PurePosixPath(uri).name.startswith(("_", ".")) and uri.endswith(".parquet")
    ]


def inspect_snapshot(spark: SparkSession, storage: Storage, spec: DatasetSpec, partition: str, location: str,
                     replaced: Iterable[str], hashes: DataFrame | None) -> Snapshot:  # fmt: skip
    """Each published file's rows, its rows of re-read objects, and whether it holds a key of the batch (`hashes`,
    from `transforms.batch_key_hashes`; None for a dataset without a primary key): one scan of the key columns.
    A snapshot written with other columns than the spec's curated schema fails, naming both: carrying its files
    would mix two schemas in one partition."""
    files = data_files(storage, location)
    if not files:
        return Snapshot(partition, location, ())
    df = spark.read.parquet(*[storage.spark_path(uri) for uri in files])
    check_schema(df, spec, location)
    replaced = sorted(replaced)
    is_replaced = F.col(tf.SOURCE_OBJECT).isin(replaced) if replaced else F.lit(False)
    scan = df.select(F.col("_metadata.file_path").alias(tf.FILE), is_replaced.alias("_replaced"), *spec.primary_key)
    in_batch = F.lit(False)
    if hashes is not None and spec.primary_key:
        value = partition.split("=", 1)[1]
        keyed = tf.with_key_hash(scan.withColumn(spec.partition_key, F.lit(value)), spec)
        scan = keyed.join(hashes.withColumn(IN_BATCH, F.lit(True)), tf.KEY_HASH, "left")
        in_batch = F.col(IN_BATCH).isNotNull()
    per_file = scan.groupBy(tf.FILE).agg(
        F.count(F.lit(1)), F.count(F.when(F.col("_replaced"), 1)), F.max(in_batch | F.col("_replaced"))
    )
    by_path = {tf.spark_file_path(spark, storage.spark_path(uri)): uri for uri in files}
    counted: dict[str, PublishedFile] = {}
    for path, rows, replaced_rows, touched in per_file.collect():
        if path not in by_path:
            raise RuntimeError(f"published snapshot {location}: Spark read {path}, which is not one of its files")
        counted[by_path[path]] = PublishedFile(by_path[path], int(rows), int(replaced_rows), bool(touched))
    return Snapshot(partition, location, tuple(counted.get(uri, PublishedFile(uri, 0, 0, False)) for uri in files))


def check_schema(df: DataFrame, spec: DatasetSpec, location: str) -> None:
    found = [(f.name, f.dataType.simpleString()) for f in df.schema.fields]
    expected = tf.column_types(spec)
    if found != expected:
        raise ValueError(
            f"published snapshot {location} has columns {found}, but dataset {spec.name} now writes {expected}; "
            f"re-run the partition in full (`lake rerun`) instead of merging a batch onto it"
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


COPY_THREADS = 16  # CopyObject calls in flight: each takes tens of milliseconds on S3, however small the file


def copy_untouched(storage: Storage, snapshot: Snapshot, destination: str) -> list[str]:
    """Copy the files the batch does not touch into the candidate folder `destination`, in parallel; returns the
    new URIs. Called after Spark has written the folder (its overwrite would delete them). File names are kept:
    they are Spark's UUID-named part files, so they cannot collide with this run's."""
    copies = {f.uri: join_uri(destination, PurePosixPath(f.uri).name) for f in snapshot.copied}
    with ThreadPoolExecutor(max_workers=COPY_THREADS) as pool:
        list(pool.map(lambda item: storage.copy(*item), copies.items()))  # list(): re-raises a failed copy
    return list(copies.values())
