"""Parquet footers of published files: row counts, Spark schema and per-column min/max, without reading data.

Read through the parquet-mr library Spark itself writes and reads with (on the driver, through the JVM), so it
works wherever Spark's file systems do: a folder offline, S3 in Glue. A footer read is one or two small range
requests per file; they are issued in parallel because on S3 their latency, not their size, is what counts.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import types as T

SPARK_SCHEMA_KEY = "org.apache.spark.sql.parquet.row.metadata"  # where Spark keeps the schema it wrote
FOOTER_THREADS = 16
EPOCH = date(1970, 1, 1)
# Spark types whose Parquet min/max this module turns back into Python values comparable with Spark's `collect()`.
RANGED_TYPES = (T.StringType, T.IntegerType, T.LongType, T.ShortType, T.ByteType, T.DateType)


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
    blocks = list(footer.getBlocks())
    ranges: dict[str, tuple[Any, Any]] = {}
    for name in ranged:
        if not isinstance(kinds.get(name), RANGED_TYPES):
            continue
        bounds = [_bounds(block, name, kinds[name]) for block in blocks if block.getRowCount()]
        if bounds and all(b is not None for b in bounds):
            ranges[name] = (min(b[0] for b in bounds), max(b[1] for b in bounds))
        elif not bounds:
            ranges[name] = (None, None)  # no rows: overlaps nothing
    return Footer(path, sum(int(b.getRowCount()) for b in blocks), schema, ranges)


def _bounds(block: Any, name: str, kind: T.DataType) -> tuple[Any, Any] | None:
    for chunk in block.getColumns():
        if chunk.getPath().toDotString() != name:
            continue
        stats = chunk.getStatistics()
        if stats is None or stats.isEmpty() or not stats.hasNonNullValue():
            return None  # unknown (or only nulls, which no key equals)
        return _value(stats.genericGetMin(), kind), _value(stats.genericGetMax(), kind)
    return None


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
        if file_low is None or low is None or file_high < low or file_low > high:
            return False
    return True
