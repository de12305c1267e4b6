"""Parquet footers of published files: row counts, Spark schema and per-column min/max, without reading data.

Read through the parquet-mr library Spark itself writes and reads with (on the driver, through the JVM), so it
works wherever Spark's file systems do: a folder offline, S3 in Glue. A footer read is one or two small range
requests per file; they are issued in parallel because on S3 their latency, not their size, is what counts.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import PurePosixPath
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from etl.storage import Storage, read_json, write_json

SPARK_SCHEMA_KEY = "org.apache.spark.sql.parquet.row.metadata"  # where Spark keeps the schema it wrote
FOOTER_THREADS = 16
EPOCH = date(1970, 1, 1)
# Spark types whose Parquet min/max this module turns back into Python values comparable with Spark's `collect()`.
RANGED_TYPES = (T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.DateType)
INDEX_VERSION = 1  # of the footer index a run writes for each curated folder it writes (see `write_index`)


@dataclass(frozen=True)
class Footer:
    path: str  # as Spark reads it
    rows: int
    schema: T.StructType | None  # None: not written by Spark
    ranges: dict[str, tuple[Any, Any]]  # column -> (min, max) over the file's non-null values; absent: unknown


def read_footers(spark: SparkSession, paths: list[str], ranged: list[str]) -> list[Footer]:
    """The footer of each file (Spark paths), with the min/max of the `ranged` columns where the file's
    statistics give them for every row group (a row group without statistics leaves the column unknown)."""
    with ThreadPoolExecutor(max_workers=FOOTER_THREADS) as pool:
        return list(pool.map(lambda path: _read_footer(spark, path, ranged), paths))


def _read_footer(spark: SparkSession, path: str, ranged: list[str]) -> Footer:
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    source = jvm.org.apache.parquet.hadoop.util.HadoopInputFile.fromPath(jvm.org.apache.hadoop.fs.Path(path), conf)
    reader = jvm.org.apache.parquet.hadoop.ParquetFileReader.open(source)
    try:
        footer = reader.getFooter()
    finally:
        reader.close()
    written = footer.getFileMetaData().getKeyValueMetaData().get(SPARK_SCHEMA_KEY)
    schema = T.StructType.fromJson(json.loads(written)) if written else None
    kinds = {f.name: f.dataType for f in schema.fields} if schema else {}
    blocks = [block for block in footer.getBlocks() if block.getRowCount()]
    message = footer.getFileMetaData().getSchema()
    ranges: dict[str, tuple[Any, Any]] = {}
    for name in ranged:
        if not isinstance(kinds.get(name), RANGED_TYPES) or not blocks:
            continue
        index = _chunk_index(message, blocks[0], name)
        bounds = [_bounds(block.getColumns().get(index), kinds[name]) for block in blocks] if index >= 0 else []
        if bounds and all(b is not None for b in bounds):
            ranges[name] = (min(b[0] for b in bounds), max(b[1] for b in bounds))
    return Footer(path, sum(int(b.getRowCount()) for b in blocks), schema, ranges)


def _chunk_index(message: Any, block: Any, name: str) -> int:
    """Where the top-level column `name` sits among a row group's column chunks (-1: not found). In a flat schema
    it is the field's index; a nested column before it shifts the chunks, so the chunk's path is checked."""
    chunks = block.getColumns()
    index = message.getFieldIndex(name) if message.containsField(name) else -1
    if 0 <= index < chunks.size() and chunks.get(index).getPath().toDotString() == name:
        return index
    return next((i for i in range(chunks.size()) if chunks.get(i).getPath().toDotString() == name), -1)


def _bounds(chunk: Any, kind: T.DataType) -> tuple[Any, Any] | None:
    stats = chunk.getStatistics()
    if stats is None or stats.isEmpty() or not stats.hasNonNullValue():
        return None  # unknown (or only nulls, which no key equals)
    return _value(stats.genericGetMin(), kind), _value(stats.genericGetMax(), kind)


def _value(raw: Any, kind: T.DataType) -> Any:
    if isinstance(kind, T.StringType):
        return raw.toStringUsingUTF8()  # parquet-mr orders UTF-8 strings as unsigned bytes: code point order
    if isinstance(kind, T.DateType):
        return EPOCH + timedelta(days=int(raw))
    return int(raw)


def overlaps(footer: Footer, ranges: dict[str, tuple[Any, Any]]) -> bool:
    """Whether the file may hold a row whose every `ranges` column lies within the given (min, max): False only
    when the statistics prove that some column's values are all outside (or the file has no rows)."""
    if footer.rows == 0:
        return False
    for name, (low, high) in ranges.items():
        if name not in footer.ranges:
            continue
        file_low, file_high = footer.ranges[name]
        if low is None or file_high < low or file_low > high:
            return False
    return True


def folder_footers(spark: SparkSession, storage: Storage, folder: str, files: list[str], ranged: list[str],
                   index_uri: str) -> dict[str, Footer]:  # fmt: skip
    """{URI: footer} for the data `files` of a curated folder: from the folder's index (`index_uri`) where it
    holds them with the `ranged` columns, read from the files where it does not (a folder written before footer
    indexes existed, or an index deleted or damaged: the footers are the truth the index copies). One index read
    instead of one footer read per file is what keeps a batch's cost flat as the partition grows: each footer
    read is a request (38 ms here through py4j; tens of milliseconds on S3)."""
    indexed = read_index(storage, index_uri, folder, ranged)
    names = {PurePosixPath(uri).name: uri for uri in files}
    gone = sorted(set(indexed) - set(names))
    if gone:
        raise RuntimeError(f"published snapshot {folder}: its footer index {index_uri} lists {gone[:3]}, which "
                           f"the folder no longer holds; re-run the partition in full (`lake rerun`)")  # fmt: skip
    unread = [uri for name, uri in names.items() if name not in indexed]
    read = dict(zip(unread, read_footers(spark, [storage.spark_path(uri) for uri in unread], ranged), strict=True)
                if unread else [])  # fmt: skip
    return {uri: read[uri] if uri in read else replace(indexed[name], path=storage.spark_path(uri))
            for name, uri in names.items()}  # fmt: skip


def write_index(storage: Storage, index_uri: str, folder: str, footers: dict[str, Footer], ranged: list[str]) -> None:
    """Write the footer index of a curated folder's files ({URI: footer}, with the `ranged` columns' min/max).
    It lives in staging, not in the folder: Athena reads every object under a table location."""
    schemas = sorted({f.schema.json() for f in footers.values() if f.schema is not None})
    files = {
        PurePosixPath(uri).name: {
            "rows": f.rows,
            "schema": schemas.index(f.schema.json()) if f.schema is not None else None,
            "ranges": {name: list(bounds) for name, bounds in f.ranges.items() if name in ranged},
        }
        for uri, f in footers.items()
    }
    write_json(storage, index_uri, {"version": INDEX_VERSION, "folder": folder.rstrip("/"), "ranged": ranged,
                                    "schemas": schemas, "files": files})  # fmt: skip


def read_index(storage: Storage, index_uri: str, folder: str, ranged: list[str]) -> dict[str, Footer]:
    """{file name: footer} from a folder's footer index (paths left to the caller); empty without one, or when
    it was written by another version, for another folder, or without min/max of all the `ranged` columns, or
    when it is not an index at all (damaged)."""
    if not storage.exists(index_uri):
        return {}
    try:
        document = read_json(storage, index_uri)
    except ValueError:  # not JSON, or not UTF-8
        return {}
    if (not isinstance(document, dict) or document.get("version") != INDEX_VERSION
            or document.get("folder") != folder.rstrip("/") or not set(ranged) <= set(document["ranged"])):  # fmt: skip
        return {}
    schemas = [T.StructType.fromJson(json.loads(text)) for text in document["schemas"]]
    footers = {}
    for name, entry in document["files"].items():
        schema = schemas[entry["schema"]] if entry["schema"] is not None else None
        kinds = {f.name: f.dataType for f in schema.fields} if schema else {}
        ranges = {column: (_from_json(low, kinds[column]), _from_json(high, kinds[column]))
                  for column, (low, high) in entry["ranges"].items() if column in ranged}  # fmt: skip
        footers[name] = Footer(name, int(entry["rows"]), schema, ranges)
    return footers


def _from_json(value: Any, kind: T.DataType) -> Any:
    return date.fromisoformat(value) if isinstance(kind, T.DateType) else value
