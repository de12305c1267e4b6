"""Curated Parquet files written by Apache Arrow: the fast rows (etl/fast_csv.py) go straight from the Spark task that
parsed them into the run's candidate folders, and a file that turns out to hold a row that lost its key to another
version is rewritten without it (on the driver, or in Spark tasks for large rewrites: etl/job.py).

Why: on bench/etl_throughput.py's 1 GB, Spark's Parquet writer alone took about as long for the 12.67M typed rows as
plain Spark's whole CSV-to-Parquet run (25.9 s, of which 8.9 s was the scan), and staging the parsed rows first to
write them later cost a write and a read of every row more. The files carry the schema Spark writes into its own
files (`org.apache.spark.sql.parquet.row.metadata`), so etl/footers.py ranges their keys as it ranges Spark's, and
their timestamps as INT96, as Spark writes them (what Athena, the Glue crawler and every reader of the curated zone
already read).
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from etl.footers import SPARK_SCHEMA_KEY
from etl.spec import DatasetSpec
from etl.transforms import INGESTED_AT, RUN_ID, SOURCE_OBJECT, TARGET_ROWS_PER_FILE

# With Spark's version in a file's metadata (and no legacy-calendar key), Spark reads its dates and timestamps as
# written, in the proleptic Gregorian calendar Arrow uses too; without it, a date before 1582 (a timestamp before
# 1900) fails Spark's read (spark.sql.parquet.datetimeRebaseModeInRead, int96RebaseModeInRead).
SPARK_VERSION_KEY = "org.apache.spark.version"
READ_BATCH_ROWS = 256 * 1024  # a rewritten file is streamed, so memory stays bounded whatever its size
# Rows a curated file's row groups hold (all but its last): the blocks appended are buffered up to it. A block per
# row group made 1,000-row groups of 1,000-row objects, whose columns compress worse (400 such objects: 28.8 bytes
# a row, 13.8 buffered) and which readers open one by one. A task buffers at most PENDING_ROWS rows over its open
# files (one per partition value) before it writes the largest buffer out.
ROW_GROUP_ROWS = 128 * 1024
PENDING_ROWS = 4 * ROW_GROUP_ROWS
# A file's first rows judged by `dictionary_columns` (a row group's worth: Parquet keeps a dictionary per column of
# a row group), and the fewest it judges by.
DICTIONARY_SAMPLE_ROWS = ROW_GROUP_ROWS
DICTIONARY_MIN_SAMPLE_ROWS = 64


def dictionary_columns(rows: Any) -> list[str]:
    """The columns a Parquet file Arrow writes (curated, rewritten, staged) dictionary-encodes, judged from its first
    rows `rows`: those whose first DICTIONARY_SAMPLE_ROWS rows repeat their values (at most half as many distinct
    ones); with fewer than DICTIONARY_MIN_SAMPLE_ROWS rows to judge by, every column (the writer falls back to plain
    encoding by itself when a dictionary grows too large). Arrow's Parquet writer builds a dictionary for every
    column unless told which: for keys that are all distinct it is wasted, and it was half the write of a rewritten
    file (200k orders rows: 153 ms with every column, 84 ms without the mostly distinct ones). Judged on a few
    thousand rows instead of a row group, amounts and timestamps that repeat only over a whole row group lost their
    dictionaries, and the files grew by 44% (bench/job_model.py: 15.3 to 22.1 bytes a row)."""
    import pyarrow.compute as pc

    sample = rows.slice(0, DICTIONARY_SAMPLE_ROWS)
    if sample.num_rows < DICTIONARY_MIN_SAMPLE_ROWS:
        return list(sample.column_names)
    return [name for name, column in zip(sample.column_names, sample.columns, strict=True)
            if pc.count_distinct(column, mode="all").as_py() * 2 <= sample.num_rows]  # fmt: skip


def open_writer(path: str, schema: Any, first_rows: Any, dictionaries: list[str] | None = None) -> Any:
    """A Parquet writer of a curated file of `schema`, its dictionaries those named (`dictionaries`) or chosen from
    its `first_rows` (`dictionary_columns`), its timestamps INT96, as Spark writes them."""
    import pyarrow.parquet as pq

    chosen = dictionary_columns(first_rows) if dictionaries is None else dictionaries
    return pq.ParquetWriter(path, schema, use_dictionary=chosen, use_deprecated_int96_timestamps=True)


def written_dictionaries(metadata: Any) -> list[str] | None:
    """The columns a Parquet file's writer dictionary-encoded (a dictionary page in its first row group), None for a
    file without row groups. A rewrite keeps them: judging them again cost 40 ms of a 200k-row file's 170 ms."""
    if not metadata.num_row_groups:
        return None
    group = metadata.row_group(0)
    return [group.column(i).path_in_schema for i in range(group.num_columns) if group.column(i).has_dictionary_page]


@dataclass(frozen=True)
class CuratedTarget:
    """Where and how a run's tasks write curated files: partition value -> candidate folder URI, the provenance
    they stamp, the Spark metadata they carry, and a name unique to the run's write (later runs copy the files into
    their own folders under their names)."""

    folders: dict[str, str]
    run_id: str
    ingested_at: datetime
    metadata: dict[str, str]
    name: str
    rows_per_file: int = TARGET_ROWS_PER_FILE  # as Spark's `maxRecordsPerFile`


def curated_target(spark: Any, spec: DatasetSpec, folders: dict[str, str], run_id: str, ingested_at: datetime,
                   name: str) -> CuratedTarget:  # fmt: skip
    from etl import transforms as tf

    metadata = {SPARK_SCHEMA_KEY: tf.empty_frame(spark, tf.curated_schema(spec)).schema.json(),
                SPARK_VERSION_KEY: spark.version}  # fmt: skip
    return CuratedTarget(folders, run_id, ingested_at, metadata, name)


@dataclass
class _OpenFile:
    """A curated file being written: its scratch path and URI, the rows placed in it, and those not written yet."""

    path: str
    uri: str
    rows: int = 0
    pending: list[Any] = field(default_factory=list)
    pending_rows: int = 0
    writer: Any = None  # opened at the first write, its dictionaries judged from the rows buffered by then

    def flush(self) -> None:
        import pyarrow as pa

        if not self.pending:
            return
        table = pa.concat_tables(self.pending)
        if self.writer is None:
            self.writer = open_writer(self.path, table.schema, table)
        self.writer.write_table(table)
        self.pending, self.pending_rows = [], 0


@dataclass
class CuratedWriter:
    """A task's curated files: rows appended per partition value into files of at most `rows_per_file` rows, named
    `<name>-<value index>-<n>.parquet`, in row groups of ROW_GROUP_ROWS, each file uploaded when full or at `close`.
    `files` counts the rows of every file uploaded."""

    storage: Any
    spec: DatasetSpec
    target: CuratedTarget
    folder: str  # local scratch folder
    files: dict[str, int] = field(default_factory=dict)
    _open: dict[str, _OpenFile] = field(default_factory=dict)  # partition value -> its file being written
    _numbers: dict[str, int] = field(default_factory=dict)

    def append(self, value: str, rows: Any) -> list[tuple[str, int, int]]:
        """Write `rows` (the spec's columns and the source object) of partition `value`; returns where they went:
        (file URI, row position of the first, count) per piece, in order."""
        placed, offset = [], 0
        while offset < rows.num_rows:
            if value not in self._open:
                index = sorted(self.target.folders).index(value)
                number = self._numbers.get(value, 0)
                self._numbers[value] = number + 1
                uri = f"{self.target.folders[value].rstrip('/')}/{self.target.name}-{index}-{number}.parquet"
                self._open[value] = _OpenFile(str(Path(self.folder) / f"{index}-{number}.parquet"), uri)
            file = self._open[value]
            piece = rows.slice(offset, self.target.rows_per_file - file.rows)
            file.pending.append(stamped(piece, self.spec, self.target))
            placed.append((file.uri, file.rows, piece.num_rows))
            file.rows += piece.num_rows
            file.pending_rows += piece.num_rows
            offset += piece.num_rows
            if file.pending_rows >= ROW_GROUP_ROWS:
                file.flush()
            if file.rows >= self.target.rows_per_file:
                self._upload(value)
        if sum(f.pending_rows for f in self._open.values()) > PENDING_ROWS:
            max(self._open.values(), key=lambda f: f.pending_rows).flush()
        return placed

    def close(self) -> None:
        for value in list(self._open):
            self._upload(value)

    def _upload(self, value: str) -> None:
        file = self._open.pop(value)
        file.flush()
        file.writer.close()
        self.storage.put_file(file.path, file.uri)
        self.files[file.uri] = file.rows


def stamped(rows: Any, spec: DatasetSpec, target: CuratedTarget) -> Any:
    """Parsed rows as curated rows: the spec's columns, the source object, then the run's provenance."""
    import pyarrow as pa

    count = rows.num_rows
    columns = [rows.column(c) for c in (*spec.column_names, SOURCE_OBJECT)] + [
        pa.repeat(pa.scalar(target.ingested_at, pa.timestamp("us", tz="UTC")), count),
        pa.repeat(pa.scalar(target.run_id, pa.string()), count),
    ]
    table = pa.table(columns, names=[*spec.column_names, SOURCE_OBJECT, INGESTED_AT, RUN_ID])
    return table.replace_schema_metadata(target.metadata)


def renamed(uri: str, folder: str, suffix: str) -> str:
    """The URI in `folder` of a rewrite of the file `uri`: its name with `suffix` in place of an earlier rewrite's
    (names stay unique, as later runs copy files under their names, and do not grow with every rewrite)."""
    stem = re.sub(r"-r[0-9a-f]{8}$", "", PurePosixPath(uri).name.removesuffix(".parquet"))
    return f"{folder.rstrip('/')}/{stem}-r{suffix}.parquet"


def rewrite_without(storage: Any, uri: str, positions: list[int], new_uri: str, delete_source: bool = True) -> int:
    """The curated file `uri` without the rows at `positions` (0-based), written as `new_uri` (its schema and metadata
    as they were), and `uri` deleted unless `delete_source` is False (a published file, which stays for the readers
    of its snapshot). Returns the rows written. Run again after it deleted `uri` (a retried task), it returns the
    rows of `new_uri`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    if delete_source and not storage.exists(uri) and storage.exists(new_uri):  # a retry after the delete: done
        with tempfile.TemporaryDirectory(prefix="lake-arrow-rewrite-") as folder:
            return pq.ParquetFile(storage.get_file(new_uri, str(Path(folder) / "new"))).metadata.num_rows
    drop = np.unique(np.asarray(positions, dtype=np.int64))
    written, start = 0, 0
    with tempfile.TemporaryDirectory(prefix="lake-arrow-rewrite-") as folder:
        # pyarrow 17 reads INT96 timestamps right only from 1677-09-22 to 2262-04-11 (at nanoseconds; at microseconds
        # it is wrong for any time of day before 1970): only files whose timestamps are known to lie there are
        # rewritten here (the fast path's own files, see fast_csv.ISO_SHAPES; etl/job.py::_arrow_ranking).
        source = pq.ParquetFile(storage.get_file(uri, str(Path(folder) / "source")))
        if drop.size and (drop[0] < 0 or drop[-1] >= source.metadata.num_rows):
            raise ValueError(f"curated file {uri}: rows to drop {drop.tolist()[:5]} are outside its "
                             f"{source.metadata.num_rows} rows")  # fmt: skip
        writer = None
        try:
            for batch in source.iter_batches(batch_size=READ_BATCH_ROWS):
                end = start + batch.num_rows
                mine = drop[(drop >= start) & (drop < end)] - start
                keep = np.ones(batch.num_rows, dtype=bool)
                keep[mine] = False
                kept = pa.Table.from_batches([batch]).filter(pa.array(keep))
                if writer is None:  # its schema, metadata and dictionaries as they were
                    writer = open_writer(str(Path(folder) / "new"), source.schema_arrow, kept,
                                         written_dictionaries(source.metadata))  # fmt: skip
                writer.write_table(kept)
                written += kept.num_rows
                start = end
            if writer is None:  # a file without rows stays one with its schema
                writer = open_writer(str(Path(folder) / "new"), source.schema_arrow, source.schema_arrow.empty_table())
        finally:
            if writer is not None:
                writer.close()
        storage.put_file(str(Path(folder) / "new"), new_uri)
    if delete_source:
        storage.delete([uri])
    return written


def drop_rows(spark: Any, storage: Any, losers: Any, file_column: str, row_column: str, name: str) -> dict[str, int]:
    """Rewrite each curated file named in `losers` (a frame of `file_column`, `row_column`: a file's URI and a row
    position in it) without those rows, a Spark task per file (`rewrite_without`); the new files are named after the
    old with the suffix `name` (`renamed`). Returns {old file: rows written}; the new file replaces it in the folder."""
    from pyspark.sql import functions as F

    from etl.storage import for_tasks

    task_storage = for_tasks(storage)

    def rewrite(row: Any) -> tuple[str, int]:
        old = row[0]
        return old, rewrite_without(task_storage, old, list(row[1]), renamed(old, old.rsplit("/", 1)[0], name))

    grouped = losers.groupBy(file_column).agg(F.collect_list(row_column))
    return dict(grouped.rdd.map(rewrite).collect())
