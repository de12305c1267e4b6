"""A run's fast rows (etl/fast_csv.py) written into its candidate folders by Spark tasks with pyarrow.

Why: on bench/etl_throughput.py's 1 GB, Spark's Parquet writer alone took about as long for the 12.67M typed rows as
plain Spark's whole CSV-to-Parquet run (25.9 s, of which 8.9 s was the scan). Arrow writes them in a fraction of
that, from the staged files the fast path already wrote, and the rows never cross into the JVM.

Only rows whose key is not contested are written this way: each task drops the batch rows Spark found contested
(named by source object and line number) from its staged file, stamps the provenance and writes a file per
partition value. Spark writes the rest as before (etl/job.py): the contested keys' winners, the slow lines' rows and
the rows carried from rewritten published files. The files carry the schema Spark writes into its own files
(`org.apache.spark.sql.parquet.row.metadata`), so etl/footers.py ranges their keys as it ranges Spark's, and their
timestamps as INT96, as Spark writes them (what Athena, the Glue crawler and every reader of the curated zone
already read).
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.footers import SPARK_SCHEMA_KEY
from etl.spec import DatasetSpec
from etl.transforms import INGESTED_AT, LINE, RUN_ID, SOURCE_OBJECT, TARGET_ROWS_PER_FILE

STAGED_BATCH_ROWS = 256 * 1024
# With Spark's version in a file's metadata (and no legacy-calendar key), Spark reads its dates and timestamps as
# written, in the proleptic Gregorian calendar Arrow uses too; without it, a date before 1582 (a timestamp before
# 1900) fails Spark's read (spark.sql.parquet.datetimeRebaseModeInRead, int96RebaseModeInRead).
SPARK_VERSION_KEY = "org.apache.spark.version"


@dataclass(frozen=True)
class FastFile:
    """A staged file of fast rows, the objects whose rows it holds, and the contested lines among them."""

    uri: str
    contested: dict[str, list[int]]  # source object -> line numbers of its contested rows


def write_fast_rows(storage: Any, staged: FastFile, spec: DatasetSpec, folders: dict[str, str], run_id: str,
                    ingested_at: datetime, spark_metadata: dict[str, str], name: str,
                    rows_per_file: int = TARGET_ROWS_PER_FILE) -> dict[str, int]:  # fmt: skip
    """A task: the staged file's uncontested rows, stamped, into `folders` (partition value -> candidate folder URI),
    in files named `name`-<value index>-<n> of at most `rows_per_file` rows (as Spark's `maxRecordsPerFile`). The
    staged file is read a batch at a time, so memory stays bounded whatever its size. Returns the rows written per
    partition value."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    written: dict[str, int] = {}
    open_files: dict[str, tuple[Any, str, int]] = {}  # value -> (writer, local path, rows in it)
    values = sorted(folders)
    with tempfile.TemporaryDirectory(prefix="lake-arrow-write-") as folder:

        files: dict[str, int] = {}  # value -> files written

        def close(value: str) -> None:
            writer, path, _ = open_files.pop(value)
            writer.close()
            number = files.get(value, 0)
            storage.put_file(path, f"{folders[value].rstrip('/')}/{name}-{values.index(value)}-{number}.parquet")
            files[value] = number + 1

        staged_file = pq.ParquetFile(storage.get_file(staged.uri, str(Path(folder) / "staged")))
        for batch in staged_file.iter_batches(batch_size=STAGED_BATCH_ROWS):
            table = _uncontested(pa.Table.from_batches([batch]), staged.contested)
            column = table.column(spec.partition_key)
            for value in sorted(pc.unique(column).to_pylist()):
                part = table if len(folders) == 1 else table.filter(pc.equal(column, value))
                offset = 0
                while offset < part.num_rows:
                    if value not in open_files:
                        path = str(Path(folder) / f"{values.index(value)}-{files.get(value, 0)}.parquet")
                        writer = pq.ParquetWriter(path, _curated_schema(part, spec, spark_metadata),
                                                  use_deprecated_int96_timestamps=True)  # as Spark writes timestamps
                        open_files[value] = (writer, path, 0)
                    writer, path, rows = open_files[value]
                    chunk = part.slice(offset, rows_per_file - rows)
                    writer.write_table(_stamped(chunk, spec, run_id, ingested_at, spark_metadata))
                    open_files[value] = (writer, path, rows + chunk.num_rows)
                    written[value] = written.get(value, 0) + chunk.num_rows
                    offset += chunk.num_rows
                    if rows + chunk.num_rows >= rows_per_file:
                        close(value)
        for value in list(open_files):
            close(value)
    return written


def _uncontested(table: Any, contested: dict[str, list[int]]) -> Any:
    """The rows of `table` that are not among the contested lines."""
    import pyarrow as pa
    import pyarrow.compute as pc

    drop = None
    for source, lines in contested.items():
        hit = pc.and_(pc.equal(table.column(SOURCE_OBJECT), source),
                      pc.is_in(table.column(LINE), value_set=pa.array(lines, pa.int64())))  # fmt: skip
        drop = hit if drop is None else pc.or_(drop, hit)
    return table if drop is None else table.filter(pc.invert(drop))


def _stamped(part: Any, spec: DatasetSpec, run_id: str, ingested_at: datetime, metadata: dict[str, str]) -> Any:
    """Staged rows as curated rows: the spec's columns, the source object, then this run's provenance."""
    import pyarrow as pa

    rows = part.num_rows
    columns = [part.column(c) for c in (*spec.column_names, SOURCE_OBJECT)] + [
        pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", tz="UTC")), rows),
        pa.repeat(pa.scalar(run_id, pa.string()), rows),
    ]
    table = pa.table(columns, names=[*spec.column_names, SOURCE_OBJECT, INGESTED_AT, RUN_ID])
    return table.replace_schema_metadata(metadata)


def _curated_schema(part: Any, spec: DatasetSpec, metadata: dict[str, str]) -> Any:
    return _stamped(part.slice(0, 0), spec, "", datetime(1970, 1, 1, tzinfo=UTC), metadata).schema


def write_staged(spark: Any, storage: Any, staged: Any, spec: DatasetSpec, contested: dict[str, list[int]],
                 folders: dict[str, str], run_id: str, ingested_at: datetime) -> int:  # fmt: skip
    """Write every staged fast file's uncontested rows (`write_fast_rows`, a Spark task per file) into `folders`
    (partition value -> candidate folder); `contested`: {source object: line numbers} of the batch rows Spark
    writes. Returns the rows written."""
    from etl import transforms as tf
    from etl.storage import for_tasks

    metadata = {SPARK_SCHEMA_KEY: spark.createDataFrame([], tf.curated_schema(spec)).schema.json(),
                SPARK_VERSION_KEY: spark.version}  # fmt: skip
    files = [FastFile(uri, {o: contested[o] for o in objects if o in contested}) for uri, objects in staged.fast_files]
    if not files:
        return 0
    task_storage = for_tasks(storage)
    # Unique per write, as Spark's file names are: later runs copy this file into their folders under its name.
    job = uuid.uuid4().hex

    def write(item: tuple[int, FastFile]) -> dict[str, int]:
        n, staged_file = item
        return write_fast_rows(task_storage, staged_file, spec, folders, run_id, ingested_at, metadata,
                               f"part-arrow-{n:05d}-{job}")  # fmt: skip

    results = spark.sparkContext.parallelize(list(enumerate(files)), len(files)).map(write).collect()
    return sum(rows for result in results for rows in result.values())
