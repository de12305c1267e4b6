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
from datetime import datetime
from pathlib import Path
from typing import Any

from etl.fast_csv import LINE, SOURCE_OBJECT
from etl.footers import SPARK_SCHEMA_KEY
from etl.spec import DatasetSpec

INGESTED_AT, RUN_ID = "lake_ingested_at", "lake_run_id"
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
                    ingested_at: datetime, spark_metadata: dict[str, str], name: str) -> dict[str, int]:  # fmt: skip
    """A task: the staged file's uncontested rows, stamped, as one file per partition value in `folders` (value ->
    candidate folder URI), named `name`. Returns the rows written per partition value."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    written: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="lake-arrow-write-") as folder:
        table = pq.read_table(storage.get_file(staged.uri, str(Path(folder) / "staged")))
        drop = None
        for source, lines in staged.contested.items():
            hit = pc.and_(pc.equal(table.column(SOURCE_OBJECT), source),
                          pc.is_in(table.column(LINE), value_set=pa.array(lines, pa.int64())))  # fmt: skip
            drop = hit if drop is None else pc.or_(drop, hit)
        if drop is not None:
            table = table.filter(pc.invert(drop))
        values = table.column(spec.partition_key)
        for value in sorted(pc.unique(values).to_pylist()):
            part = table if len(folders) == 1 else table.filter(pc.equal(values, value))
            rows = part.num_rows
            columns = [part.column(c) for c in (*spec.column_names, SOURCE_OBJECT)] + [
                pa.repeat(pa.scalar(ingested_at, pa.timestamp("us", tz="UTC")), rows),
                pa.repeat(pa.scalar(run_id, pa.string()), rows),
            ]
            curated = pa.table(columns, names=[*spec.column_names, SOURCE_OBJECT, INGESTED_AT, RUN_ID])
            curated = curated.replace_schema_metadata(spark_metadata)
            path = Path(folder) / "curated.parquet"
            pq.write_table(curated, path, use_deprecated_int96_timestamps=True)  # as Spark writes timestamps
            storage.put_file(str(path), f"{folders[value].rstrip('/')}/{name}.parquet")
            written[value] = rows
    return written


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
