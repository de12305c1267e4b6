"""ETL transforms: raw objects of some partitions -> typed, de-duplicated, provenance-stamped rows + rejects.

Pipeline (each step a function, unit-testable on local Spark):

    plan = plan_sources(storage, objects, spec)            # driver: headers, empty files, schema drift
    parsed = etl.fast_csv.read_staged(...).rows            # CSV: Arrow in tasks (rows written, keys read back),
                                                           # other lines through the next two
    # or, for JSON lines, Parquet and CSV the fast path cannot read:
    lines = read_records(spark, storage, plan, spec)       # one string column per spec column + problem
    enforced = enforce_schema(lines, spec)                  # typed columns + `_reject_reason`
    parsed = for_cache(enforced).persist()                  # parsed once
    rows = stamp_provenance(parsed, run_id, ingested_at)
    counts = count_rows(rows, spec)                         # parsed and rejected rows, reasons, key ranges
    batch = with_key_hash(valid_rows(rows), spec)
    snapshot = etl.snapshot.inspect_snapshot(...)           # which published files the batch competes with
    carried = etl.snapshot.touched_rows(...)                # their rows (fast path: etl/arrow_merge.py ranks
    merged = merge_batch(batch, carried, spec)              # the keys that may repeat, Arrow rewrites the files)
    curated = add_provenance(merged.rows, spec)

Why it is shaped like this (bench/etl_throughput.py): the raw objects are parsed once and the parsed rows kept
in memory without their raw lines; the source object comes from `_metadata.file_path` by a broadcast lookup;
de-duplication shuffles and ranks only the rows of keys that occur more than once (found by a shuffle of a 64-bit
hash of the keys alone), so the published rows of the files a batch touches pass through unless the batch has their
key; published files it does not touch at all are carried as object copies (etl/snapshot.py).

Row accounting (every row ends up in exactly one place, nothing is silently lost):
    input_rows + carried_rows = output_rows + rejected_rows + duplicates_removed
`carried_rows` are the published snapshot's rows the batch merges onto (etl/batch.py), minus the rows of
objects the batch re-reads (counted on the snapshot); `duplicates_removed` (older versions of a key, including
ones replaced by this batch) is counted from the key columns alone, and `output_rows` from the written files'
footers,
so each term is measured at a different place and a row lost anywhere breaks the equation.
An input row is a non-blank data line of a CSV/JSON-lines object (header lines and blank lines are not
rows), or a row of a Parquet object.

Decisions:
- CSV is read as lines, so each reject keeps the exact original line. Quoted fields spanning several lines are not
  supported (each physical line is a record). Most lines are parsed and typed by Apache Arrow in Spark tasks
  (etl/fast_csv.py: the plain lines whose values pass a strict check); every other line, and every line of a
  dataset the fast path cannot read, is parsed here with `from_csv` and `enforce_schema`, which give every reason.
- Columns are matched by normalised header name, per object (objects may order columns differently).
  Extra columns are dropped and listed in the metrics. A missing nullable column is filled with nulls; a
  missing non-nullable column rejects every row of that object with `missing required column <name>`.
- Values are cast strictly: `12.5` is not an int, `1.234` is not decimal(12,2) (no silent rounding),
  dates/timestamps must match the column's `format`. A failed cast rejects the row with
  `column <name>: '<value>' is not <type>`; a null in a non-nullable column: `column <name>: is null`.
- An object with bytes that are not valid in the declared `reader.encoding` is quarantined whole by the
  driver's strict decoding pass (etl/readers.py), so Spark never sees undecodable text.
- Deduplication is on (partition, primary key): the winner has the latest `deduplicate_by` value, then the
  greatest source object URI, then the greatest line number, then the greatest hash of the raw line
  (deterministic: the same line always wins, wherever and with whatever it is read).
- A CSV line read by the fast path's tasks keeps its physical line number (1-based, header and blank lines
  counted), in rejects too. Lines read by Spark's text reader (JSON lines, and CSV datasets the fast path cannot
  read) have none: Spark reads large files in parallel chunks, and `line_number` in their rejects is null.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import reduce
from typing import Any

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from etl.readers import BOM, ObjectCheck, RawObject, check_parquet, inspect_object, split_header
from etl.spec import DECIMAL_TYPE, Column, DatasetSpec, normalise_column_name
from etl.storage import Storage, join_uri

SOURCE_OBJECT = "lake_source_object"
INGESTED_AT = "lake_ingested_at"
RUN_ID = "lake_run_id"
PROVENANCE_COLUMNS = (SOURCE_OBJECT, INGESTED_AT, RUN_ID)
RAW = "_raw_record"
LINE = "_line_number"
PROBLEM = "_problem"
REASON = "_reject_reason"
CORRUPT = "_corrupt_record"
FILE = "_file"  # the file Spark read a row from (`_metadata.file_path`)
# Where a fast row (etl/fast_csv.py) was written: its curated file's URI and its position in it; null on other rows.
CURATED_FILE, CURATED_ROW = "_curated_file", "_curated_row"
ROW_HASH = "_row_hash"
VERSIONS = "_versions"
KEY_HASH = "_key_hash"
RUN_FOLDER = "run_id"  # curated folders: {dataset}/{partition}/run_id={run_id}/
REJECT_FIELDS = ("source_object", "line_number", "raw_record", "reason", "run_id")
BROADCAST_ROWS = 2_000_000  # keys joined by broadcast up to this many (~100 MB on the driver)
TARGET_ROWS_PER_FILE = 2_000_000  # ~100-130 MB of Parquet for an orders-like row
# A part of a run's output this small is written by one task, as one file per folder. Above it, by at least as many
# tasks as the cluster has cores (see `write_curated`). Every later batch copies each file of a partition it does
# not rewrite (etl/snapshot.py), so at 50+ small batches an hour a file per core per batch multiplies the COPY
# requests, and Athena's reads, by the core count (bench/burst.py prices them).
SMALL_PART_ROWS = 200_000


@dataclass
class SourcePlan:
    """What the driver learnt about the raw objects before reading them with Spark."""

    objects: list[RawObject]
    headers: dict[str, list[RawObject]] = field(default_factory=dict)  # header line -> objects (CSV)
    empty_objects: list[str] = field(default_factory=list)
    extra_columns: set[str] = field(default_factory=set)
    missing_columns: set[str] = field(default_factory=set)
    quarantined: list[dict[str, str]] = field(default_factory=list)  # {object, partition, reason}
    data_lines: dict[str, int] = field(default_factory=dict)  # object URI -> data lines (CSV, JSON lines)

    @property
    def readable(self) -> list[RawObject]:
        skipped = set(self.empty_objects) | {q["object"] for q in self.quarantined}
        return [o for o in self.objects if o.uri not in skipped]


def plan_sources(storage: Storage, objects: list[RawObject], spec: DatasetSpec,
                 inspect_all: Callable[[list[str]], list[ObjectCheck]] | None = None) -> SourcePlan:  # fmt: skip
    """Inspect every object once (see etl/readers.py): quarantine the unreadable ones with their reason, count
    data lines, read CSV headers, and find empty objects and schema drift. The CSV and JSON-lines objects are
    inspected on the driver, or by `inspect_all` (their URIs -> their checks, in order: in Spark tasks)."""
    plan = SourcePlan(objects=list(objects))
    text = [o.uri for o in objects if spec.format != "parquet" and not _misnamed_gzip(o, spec)]
    checks = dict(zip(text, inspect_all(text) if inspect_all and text else
                      [inspect_object(storage, uri, spec) for uri in text], strict=True))  # fmt: skip
    for obj in objects:
        if _misnamed_gzip(obj, spec):
            plan.quarantined.append(_quarantine(obj, "the dataset's compression is gzip but the object name does "
                                                     "not end in .gz"))  # fmt: skip
            continue
        if spec.format == "parquet":
            if problem := check_parquet(storage, obj.uri):
                plan.quarantined.append(_quarantine(obj, problem))
            continue
        check = checks[obj.uri]
        if check.problem:
            plan.quarantined.append(_quarantine(obj, check.problem))
            continue
        if check.first_line is None:
            plan.empty_objects.append(obj.uri)
            continue
        plan.data_lines[obj.uri] = check.data_lines
        if spec.format != "csv":
            continue
        line = check.first_line if _header_enabled(spec) else None
        if line is None:
            plan.headers.setdefault("", []).append(obj)
            continue
        plan.headers.setdefault(line, []).append(obj)
        names = split_header(line, spec)
        plan.extra_columns.update(n for n in names if n not in spec.column_names)
        plan.missing_columns.update(c for c in spec.column_names if c not in names)
    return plan


def _misnamed_gzip(obj: RawObject, spec: DatasetSpec) -> bool:
    """A gzip dataset's object not named .gz: quarantined without a read."""
    return spec.compression == "gzip" and not obj.uri.lower().endswith((".gz", ".gzip"))


def _quarantine(obj: RawObject, reason: str) -> dict[str, str]:
    return {"object": obj.uri, "partition": obj.partition, "reason": reason}


def _header_enabled(spec: DatasetSpec) -> bool:
    return (spec.reader_option("header", "true") or "true").lower() == "true"


def spark_file_path(spark: SparkSession, path: str) -> str:
    """The string Spark reports as `_metadata.file_path` for a file it was given as `path`: the Hadoop path's
    URL-encoded URI (what Spark's SparkPath does), with a local file's empty authority dropped (`file:/x`, the
    form Spark's file listing gives)."""
    jvm = spark._jvm
    encoded = str(jvm.org.apache.spark.paths.SparkPath.fromPath(jvm.org.apache.hadoop.fs.Path(path)).urlEncoded())
    return "file:/" + encoded[len("file:///") :] if encoded.startswith("file:///") else encoded


def with_source(
    spark: SparkSession, storage: Storage, frame: DataFrame, objects: Iterable[RawObject], spec: DatasetSpec
) -> DataFrame:
    """Replace the `_file` column (`_metadata.file_path`) of `frame` by `lake_source_object` (the object's
    s3:// URI) and the partition value. One broadcast lookup per row: parsing and URL-decoding the path of
    every row cost more than the CSV parse itself. A row of a file that is not one of `objects` fails the job
    naming the file, instead of getting a null source."""
    files = {spark_file_path(spark, storage.spark_path(o.uri)): o for o in objects}
    lookup = spark.createDataFrame(
        [(path, o.uri, o.partition_value) for path, o in files.items()],
        f"`{FILE}` STRING, `{SOURCE_OBJECT}` STRING, `{spec.partition_key}` STRING",
    )
    joined = frame.join(F.broadcast(lookup), FILE, "left")
    unknown = F.raise_error(F.concat(F.lit("read a file that is not one of the run's objects: "), F.col(FILE)))
    source = F.coalesce(F.col(SOURCE_OBJECT), unknown.cast("string")).alias(SOURCE_OBJECT)
    others = [c for c in frame.columns if c != FILE]
    return joined.select(source, F.col(spec.partition_key), *others)


def _text_lines(
    spark: SparkSession, storage: Storage, objects: Iterable[RawObject], spec: DatasetSpec
) -> DataFrame:
    """Non-blank lines of text objects: source object, partition value, line (BOM stripped, decoded)."""
    objects = list(objects)
    paths = [storage.spark_path(o.uri) for o in objects]
    raw = spark.read.text(paths).select(F.col("_metadata.file_path").alias(FILE), F.col("value"))
    lines = with_source(spark, storage, raw, objects, spec)
    encoding = (spec.reader_option("encoding", "UTF-8") or "UTF-8").upper()
    value = F.col("value")
    if encoding not in ("UTF-8", "UTF8"):
        value = F.decode(value.cast("binary"), encoding)
    value = F.when(value.startswith(BOM), F.expr("substring(value, 2)")).otherwise(value)
    return lines.withColumn("value", value).where(F.trim(F.col("value")) != "")


def _csv_options(spec: DatasetSpec) -> dict[str, str]:
    return {
        "sep": spec.reader_option("delimiter", ",") or ",",
        "quote": spec.reader_option("quote", '"') or '"',
        "escape": spec.reader_option("escape", "\\") or "\\",
        "mode": "PERMISSIVE",
        "columnNameOfCorruptRecord": CORRUPT,
    }


def _java_quote(text: str) -> str:
    return "\\Q" + text + "\\E"


def _malformed_reason(value: SparkColumn, expected: int, spec: DatasetSpec) -> SparkColumn:
    options = _csv_options(spec)
    quote, sep = options["quote"], options["sep"]
    quotes = F.size(F.split(value, _java_quote(quote))) - 1
    outside_quotes = _java_quote(sep) + f"(?=(?:[^{quote}]*{quote}[^{quote}]*{quote})*[^{quote}]*$)"
    fields = F.size(F.split(value, outside_quotes))
    return F.when(quotes % 2 == 1, F.lit("malformed CSV row: unclosed quote")).otherwise(
        F.concat(F.lit(f"malformed CSV row: expected {expected} fields, got "), fields.cast("string"))
    )


def _header_hint(names: list[str], header: str, spec: DatasetSpec) -> str:
    delimiter = _csv_options(spec)["sep"]
    if len(names) == 1:
        for other in (";", "\t", "|", ","):
            if other != delimiter and other in header:
                return f"wrong delimiter? header has 1 field and contains {other!r}, expected {delimiter!r}; "
    return ""


def read_csv(
    spark: SparkSession, storage: Storage, plan: SourcePlan, spec: DatasetSpec
) -> DataFrame | None:
    """CSV objects -> one string column per spec column, `_raw_record`, `_line_number`, `_problem`."""
    frames: list[DataFrame] = []
    for header, objects in plan.headers.items():
        lines = _text_lines(spark, storage, objects, spec).withColumn(LINE, F.lit(None).cast("long"))
        frames.append(parse_csv_lines(lines, header, spec))
    return _union(frames)


def parse_csv_lines(lines: DataFrame, header: str, spec: DatasetSpec) -> DataFrame:
    """Lines of objects that share `header` ("" when the dataset has none): source object, partition value, `value`
    (the line) and `_line_number` -> one string column per spec column, `_raw_record`, `_line_number`, `_problem`.
    Lines equal to the header are dropped (files concatenated with their headers)."""
    options = _csv_options(spec)
    names = split_header(header, spec) if header else list(spec.column_names)
    schema = ", ".join(f"`c{i}` STRING" for i in range(len(names))) + f", `{CORRUPT}` STRING"
    if header:
        lines = lines.where(F.col("value") != F.lit(header))
    parsed = lines.withColumn("p", F.from_csv(F.col("value"), schema, options))
    fields = {name: F.col(f"p.c{i}") for i, name in enumerate(names)}
    missing = [c.name for c in spec.columns if c.name not in fields and not c.nullable]
    if missing:
        text = _header_hint(names, header, spec) + "; ".join(f"missing required column {m}" for m in missing)
        problem = F.lit(text)
    else:
        problem = F.when(F.col(f"p.{CORRUPT}").isNotNull(), _malformed_reason(F.col("value"), len(names), spec))
    return parsed.select(
        SOURCE_OBJECT,
        spec.partition_key,
        *[fields.get(c.name, F.lit(None).cast("string")).alias(c.name) for c in spec.columns],
        F.col("value").alias(RAW),
        F.col(LINE),
        problem.alias(PROBLEM),
    )


def read_json_lines(
    spark: SparkSession, storage: Storage, plan: SourcePlan, spec: DatasetSpec
) -> DataFrame | None:
    """JSON-lines objects (one object per line); keys matched by normalised name."""
    if not plan.readable:
        return None
    lines = _text_lines(spark, storage, plan.readable, spec)
    parsed = lines.withColumn("m", F.from_json(F.col("value"), "map<string,string>"))
    keys = [r[0] for r in parsed.select(F.explode(F.map_keys("m"))).distinct().collect()]
    by_name: dict[str, list[str]] = {}
    for key in sorted(keys):
        by_name.setdefault(normalise_column_name(key), []).append(key)
    plan.extra_columns.update(n for n in by_name if n not in spec.column_names)
    plan.missing_columns.update(c for c in spec.column_names if c not in by_name)

    def value(name: str) -> SparkColumn:
        candidates = [F.col("m").getItem(k) for k in by_name.get(name, [])]
        if not candidates:
            return F.lit(None).cast("string")
        return candidates[0] if len(candidates) == 1 else F.coalesce(*candidates)

    columns = {c.name: value(c.name) for c in spec.columns}
    problem = F.when(F.col("m").isNull(), F.lit("malformed JSON line"))
    return parsed.select(
        SOURCE_OBJECT,
        spec.partition_key,
        *[v.alias(k) for k, v in columns.items()],
        F.col("value").alias(RAW),
        F.lit(None).cast("long").alias(LINE),
        problem.alias(PROBLEM),
    )


def read_parquet(
    spark: SparkSession, storage: Storage, plan: SourcePlan, spec: DatasetSpec
) -> DataFrame | None:
    """Parquet objects; typed values are turned back to text in the spec's format, then enforced."""
    if not plan.readable:
        return None
    df = spark.read.option("mergeSchema", "true").parquet(*[storage.spark_path(o.uri) for o in plan.readable])
    located = with_source(spark, storage, df.select("*", F.col("_metadata.file_path").alias(FILE)), plan.readable,
                          spec)  # fmt: skip
    renamed = {f.name: normalise_column_name(f.name) for f in df.schema.fields}
    plan.extra_columns.update(n for n in renamed.values() if n not in spec.column_names)
    plan.missing_columns.update(c for c in spec.column_names if c not in renamed.values())
    source = {new: (old, df.schema[old].dataType) for old, new in renamed.items()}

    def as_text(column: Column) -> SparkColumn:
        if column.name not in source:
            return F.lit(None).cast("string")
        old, dtype = source[column.name]
        if isinstance(dtype, T.TimestampType | T.DateType) and column.format:
            return F.date_format(F.col(f"`{old}`"), column.format)
        return F.col(f"`{old}`").cast("string")

    missing = [c.name for c in spec.columns if c.name not in source and not c.nullable]
    problem = F.lit("; ".join(f"missing required column {m}" for m in missing) or None).cast("string")
    return located.select(
        SOURCE_OBJECT,
        spec.partition_key,
        *[as_text(c).alias(c.name) for c in spec.columns],
        F.to_json(F.struct(*[F.col(f"`{n}`") for n in df.columns])).alias(RAW),
        F.lit(None).cast("long").alias(LINE),
        problem.alias(PROBLEM),
    )


def read_records(spark: SparkSession, storage: Storage, plan: SourcePlan, spec: DatasetSpec) -> DataFrame:
    """Dispatch on the spec's format. Always returns a DataFrame (empty when there is nothing to read)."""
    reader = {"csv": read_csv, "json": read_json_lines, "parquet": read_parquet}[spec.format]
    df = reader(spark, storage, plan, spec)
    return df if df is not None else empty_frame(spark, raw_schema(spec))


def raw_schema(spec: DatasetSpec) -> T.StructType:
    fields = [T.StructField(SOURCE_OBJECT, T.StringType()), T.StructField(spec.partition_key, T.StringType())]
    fields += [T.StructField(c.name, T.StringType()) for c in spec.columns]
    fields += [
        T.StructField(RAW, T.StringType()),
        T.StructField(LINE, T.LongType()),
        T.StructField(PROBLEM, T.StringType()),
    ]
    return T.StructType(fields)


def _union(frames: list[DataFrame]) -> DataFrame | None:
    if not frames:
        return None
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


# ISO formats whose strings Spark's own cast parses exactly as to_timestamp/to_date would (calendar-checked:
# 2026-02-30 and 25:00:00 are null), at a fraction of the cost of a formatter per row; the shape check keeps the
# cast from accepting the other forms it knows (2026-11-24T10:00, a bare date for a timestamp, ...).
ISO_FORMATS = {
    "yyyy-MM-dd": r"^\d{4}-\d{2}-\d{2}$",
    "yyyy-MM-dd HH:mm:ss": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
    "yyyy-MM-dd'T'HH:mm:ss": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$",
}


def cast_column(raw: SparkColumn, column: Column) -> SparkColumn:
    """Strict cast of a string column to the spec type; null when the value does not fit."""
    kind = column.type
    text = F.trim(raw)
    if kind == "string":
        return raw
    if kind in ("int", "bigint"):
        return F.when(text.rlike(r"^[+-]?\d+$"), text.cast(kind))
    if match := DECIMAL_TYPE.match(kind):
        scale = int(match[2])
        fraction = rf"(\.\d{{0,{scale}}})?" if scale else r"\.?"
        return F.when(text.rlike(rf"^[+-]?(\d+{fraction}|\.\d{{1,{max(scale, 1)}}})$"), text.cast(kind))
    if kind in ("date", "timestamp") and (shape := ISO_FORMATS.get(column.format or "")):
        return F.when(text.rlike(shape), text.cast(kind))
    if kind == "date":
        return F.to_date(text, column.format) if column.format else text.cast("date")
    if kind == "timestamp":
        return F.to_timestamp(text, column.format) if column.format else text.cast("timestamp")
    return text.cast(kind)  # double, float, boolean


def _describe(column: Column) -> str:
    return f"{column.type} ({column.format})" if column.format else column.type


def enforce_schema(df: DataFrame, spec: DatasetSpec) -> DataFrame:
    """String columns -> spec types, plus `_reject_reason` (null for a good row) naming column and value.

    Two projections: the casts first, then the checks on their results. Written as one, every cast appears
    in its value, its check and its reason, and the generated code outgrows what Spark compiles (whole-stage
    code generation falls back to interpreting each row: 20.8 s instead of 6.5 s on 0.25 GB)."""
    text = {c.name: f"_text_{c.name}" for c in spec.columns}
    others = [c for c in df.columns if c not in text and c != PROBLEM]
    cast = df.select(*others, F.col(PROBLEM), *[F.col(c.name).alias(text[c.name]) for c in spec.columns],
                     *[cast_column(F.col(c.name), c).alias(c.name) for c in spec.columns])  # fmt: skip
    reasons: list[SparkColumn] = []
    failures: list[SparkColumn] = []
    for column in spec.columns:
        raw, value = F.col(text[column.name]), F.col(column.name)
        failed = raw.isNotNull() & value.isNull()
        failures.append(failed)
        shown = F.substring(raw, 1, 200)
        reasons.append(
            F.when(failed, F.concat(F.lit(f"column {column.name}: '"), shown, F.lit(f"' is not {_describe(column)}")))
        )
        if not column.nullable:
            failures.append(raw.isNull())
            reasons.append(F.when(raw.isNull(), F.lit(f"column {column.name}: is null")))
    # The reason text is built only for a failing row: a good row costs one boolean per check.
    any_failed = reduce(lambda a, b: a | b, failures) if failures else F.lit(False)
    reason = F.coalesce(F.col(PROBLEM), F.when(any_failed, F.concat_ws("; ", *reasons)))
    return cast.select(*others, *spec.column_names, reason.alias(REASON))


def deduplicate(df: DataFrame, spec: DatasetSpec, repeated: DataFrame | None = None) -> DataFrame:
    """Keep one row per (partition, primary key); see the module docstring for the winner's order.

    With `repeated` (the `_key_hash` values that occur more than once, from `repeated_hashes`; `df` has the
    column, see `with_key_hash`) only the rows of those hashes are shuffled and ranked, by their real keys; the
    others pass straight through. Without `repeated` every row is ranked."""
    if not spec.primary_key:
        return df
    if repeated is not None:
        alone = df.join(repeated, KEY_HASH, "left_anti")
        return alone.unionByName(deduplicate(df.join(repeated, KEY_HASH, "left_semi"), spec))
    return _ranked(df, spec).where(F.col("_rank") == 1).drop("_rank")


def _ranked(df: DataFrame, spec: DatasetSpec) -> DataFrame:
    """`df` with `_rank`, each row's place among the versions of its (partition, primary key): 1 wins."""
    order: list[SparkColumn] = []
    if spec.deduplicate_by:
        order.append(F.col(spec.deduplicate_by).desc_nulls_last())
    order += [F.col(SOURCE_OBJECT).desc(), F.col(LINE).desc_nulls_last(), F.col(ROW_HASH).desc_nulls_last()]
    window = Window.partitionBy(spec.partition_key, *spec.primary_key).orderBy(*order)
    return df.withColumn("_rank", F.row_number().over(window))


def with_key_hash(df: DataFrame, spec: DatasetSpec) -> DataFrame:
    """`df` with `_key_hash`, a 64-bit hash of (partition, primary key): the shuffles and joins that find and
    split contested keys move one long per row instead of the key strings (0.25 GB: 2.5 s instead of 3.6 s)."""
    return df.withColumn(KEY_HASH, F.xxhash64(spec.partition_key, *spec.primary_key))


def hash_counts(hashed: DataFrame) -> DataFrame:
    """`_key_hash` -> rows with it (`_versions`): one shuffle of one long per row."""
    return hashed.groupBy(KEY_HASH).agg(F.count(F.lit(1)).alias(VERSIONS))


def repeated_hashes(batch_counts: DataFrame, carried: DataFrame | None = None, broadcast: bool = True) -> DataFrame:
    """The `_key_hash` values that occur more than once among the batch's rows (`batch_counts`, from
    `hash_counts`) and the published rows `carried` with it. Every key that occurs more than once is among them,
    and so is a key that occurs once but shares its hash with another key (rare with 64 bits, and harmless: it is
    ranked alone and wins, and `duplicate_counts` counts real keys).

    The published rows hold each key once (every snapshot is written de-duplicated), so one of theirs repeats
    only when the batch has its hash: they are matched against the batch's hashes (broadcast when `broadcast`),
    without a shuffle of the published side, which is often much larger than the batch."""
    repeated = batch_counts.where(F.col(VERSIONS) > 1).select(KEY_HASH)
    if carried is None:
        return repeated
    hashes = batch_counts.select(KEY_HASH)
    updated = carried.select(KEY_HASH).join(F.broadcast(hashes) if broadcast else hashes, KEY_HASH, "left_semi")
    return repeated.unionByName(updated).distinct()


def duplicate_counts(contested: DataFrame, spec: DatasetSpec) -> dict[str, int]:
    """{partition value: rows de-duplication removes} from the rows of repeated hashes: versions - 1 per real
    (partition, primary key), counted from the key columns alone, independently of the ranking."""
    per_key = contested.groupBy(spec.partition_key, *spec.primary_key).agg(F.count(F.lit(1)).alias(VERSIONS))
    rows = per_key.groupBy(spec.partition_key).agg(F.sum(VERSIONS), F.count(F.lit(1))).collect()
    return {r[0]: int(r[1]) - int(r[2]) for r in rows}


def for_cache(df: DataFrame) -> DataFrame:
    """Stamped rows as the run keeps them in memory: the raw line only where a reject needs it, and a hash of it
    as the last tie-breaker of de-duplication (keeping every line would double the cached size and spill)."""
    return df.withColumn(ROW_HASH, F.when(F.col(RAW).isNotNull(), F.xxhash64(RAW))).withColumn(
        RAW, F.when(F.col(REASON).isNotNull(), F.col(RAW))
    )


def valid_rows(df: DataFrame) -> DataFrame:
    """Rows without a reject reason, in the shape the published rows are carried in."""
    return df.where(F.col(REASON).isNull()).drop(REASON, RAW)


def stamp_provenance(df: DataFrame, run_id: str, ingested_at: datetime) -> DataFrame:
    """This run's rows: when and by which run they were ingested."""
    return df.select(
        "*",
        F.lit(ingested_at).cast("timestamp").alias(INGESTED_AT),
        F.lit(run_id).alias(RUN_ID),
    )


@dataclass
class Merged:
    """The partitions after the batch (one row per key), and per partition value the rows that lost to a newer
    version of their key; `cached` frames are the caller's to unpersist after the write."""

    rows: DataFrame
    duplicates: dict[str, int]
    cached: list[DataFrame] = field(default_factory=list)
    contested: DataFrame | None = None  # the rows merged whose key hash repeats (cached)

    def losers(self, spec: DatasetSpec) -> DataFrame | None:
        """The contested rows that lose their key to another version (None without a primary key)."""
        if self.contested is None:
            return None
        return _ranked(self.contested, spec).where(F.col("_rank") > 1).drop("_rank")


def merge_batch(
    batch: DataFrame,
    carried: DataFrame | None,
    spec: DatasetSpec,
    batch_counts: DataFrame | None = None,
    batch_rows: int | None = None,
) -> Merged:
    """This run's valid rows merged onto the published rows they may update (the rows of the published files the
    batch touches, etl/snapshot.py), de-duplicated. Only keys that occur more than once are shuffled in full;
    every other row passes straight through (`repeated_hashes`: the search for them shuffles the batch's hashes
    alone). With a primary key, `batch` and `carried` have `_key_hash` (`with_key_hash`); `batch_counts` is
    `hash_counts(batch)` when the caller has already built it (it stays the caller's to unpersist).

    `batch_rows`, the batch's row count when the caller knows it, bounds both hash sets the merge broadcasts (the
    batch's distinct hashes, and the repeated ones, which are among them), so they need no count of their own:
    two Spark jobs less per batch."""
    if carried is not None:  # carried rows were written: they are where they are read from, not in a fast file
        carried = carried.select("*", *[F.lit(None).cast(kind).alias(name) for name, kind in
                                        ((CURATED_FILE, "string"), (CURATED_ROW, "bigint"))
                                        if name in batch.columns and name not in carried.columns])  # fmt: skip
    candidates = batch if carried is None else batch.unionByName(carried)
    if not spec.primary_key:
        return Merged(candidates, {})
    from pyspark import StorageLevel

    cached: list[DataFrame] = []
    if batch_counts is None:
        batch_counts = hash_counts(batch)
        if carried is not None:  # read twice below (repeats, and the hashes the published rows are matched to)
            batch_counts = batch_counts.persist(StorageLevel.MEMORY_AND_DISK)
            cached.append(batch_counts)
    small = batch_rows is not None and batch_rows <= BROADCAST_ROWS
    broadcast = carried is not None and (small or batch_counts.count() <= BROADCAST_ROWS)
    repeated = repeated_hashes(batch_counts, carried, broadcast).persist(StorageLevel.MEMORY_AND_DISK)
    join_keys = F.broadcast(repeated) if small or repeated.count() <= BROADCAST_ROWS else repeated
    contested = candidates.join(join_keys, KEY_HASH, "left_semi").persist(StorageLevel.MEMORY_AND_DISK)
    duplicates = duplicate_counts(contested, spec)
    rows = deduplicate(candidates, spec, join_keys)  # its semi-join is `contested`'s plan: Spark reads the cache
    return Merged(rows, duplicates, cached + [repeated, contested], contested)


def add_provenance(df: DataFrame, spec: DatasetSpec) -> DataFrame:
    """Curated columns: the spec's columns, provenance, and the partition column (for the folder only)."""
    return df.select(*spec.column_names, SOURCE_OBJECT, INGESTED_AT, RUN_ID, F.col(spec.partition_key))


def reject_records(df: DataFrame, spec: DatasetSpec, run_id: str) -> DataFrame:
    """Rejected rows in the reject file format (+ the partition column, for routing)."""
    return df.select(
        F.col(SOURCE_OBJECT).alias("source_object"),
        F.col(LINE).alias("line_number"),
        F.col(RAW).alias("raw_record"),
        F.col(REASON).alias("reason"),
        F.lit(run_id).alias("run_id"),
        F.col(spec.partition_key),
    )


def file_count(rows: int, rows_per_file: int = TARGET_ROWS_PER_FILE) -> int:
    """Output files for a run: one per ~rows_per_file rows, at least one."""
    return max(1, math.ceil(rows / rows_per_file))


def write_tasks(rows: int, parallelism: int, rows_per_file: int = TARGET_ROWS_PER_FILE) -> int:
    """Tasks that write a part of `rows` rows (each writes a file per folder it has rows for): one for a small part,
    else never fewer than the cluster's cores (`parallelism`): coalescing below that would run the whole merge (the
    cached rows, the snapshot scan, the joins) in that many tasks, since no shuffle separates them from the write."""
    if rows <= SMALL_PART_ROWS:
        return 1
    return max(file_count(rows, rows_per_file), parallelism)


def curated_partition_uri(curated_uri: str, spec: DatasetSpec, partition: str, run_id: str) -> str:
    return join_uri(curated_uri, spec.name, partition, f"{RUN_FOLDER}={run_id}")


def reject_partition_uri(staging_uri: str, spec: DatasetSpec, partition: str, run_id: str) -> str:
    return join_uri(staging_uri, "rejects", spec.name, partition, f"{RUN_FOLDER}={run_id}")


def write_curated(
    parts: list[tuple[DataFrame, int]],
    storage: Storage,
    curated_uri: str,
    spec: DatasetSpec,
    run_id: str,
    partitions: list[str],
    rows_per_file: int = TARGET_ROWS_PER_FILE,
    append: bool = False,
) -> None:
    """Write Parquet to {curated}/{dataset}/{key}={value}/run_id={run_id}/, replacing only those folders (adding to
    them with `append`: they hold the fast rows' files, etl/arrow_write.py). Each part
    (frame, its row count) goes to files of its own (`write_tasks`): the parts are coalesced apart and then unioned,
    so no task mixes rows of two parts, and one job writes them all (evaluating their shared plan, such as a
    broadcast, once)."""
    parallelism = parts[0][0].sparkSession.sparkContext.defaultParallelism
    if len(partitions) == 1:
        # One partition (an execution's usual batch): straight into its folder. partitionBy makes Spark sort
        # every task's rows by the partition columns first (0.25 GB: 4.6 s instead of 2.9 s for the write).
        shape, folders = (lambda df: df.drop(spec.partition_key)), []
        path = curated_partition_uri(curated_uri, spec, partitions[0], run_id)
    else:
        shape, folders = (lambda df: df.withColumn(RUN_FOLDER, F.lit(run_id))), [spec.partition_key, RUN_FOLDER]
        path = join_uri(curated_uri, spec.name)
    frame = reduce(DataFrame.union, [shape(df).coalesce(write_tasks(rows, parallelism, rows_per_file))
                                     for df, rows in parts])  # fmt: skip
    if append and folders:
        # Each folder its own append: a static append under the dataset's root would stage in its `_temporary`,
        # which concurrent runs share (one run's commit would clean up another's output).
        for partition in partitions:
            value = partition.split("=", 1)[1]
            rows = frame.where(F.col(spec.partition_key) == value).drop(spec.partition_key, RUN_FOLDER)
            rows.write.mode("append").option("maxRecordsPerFile", rows_per_file).parquet(
                storage.spark_path(curated_partition_uri(curated_uri, spec, partition, run_id)))
        return
    writer = frame.write.mode("append" if append else "overwrite").option("maxRecordsPerFile", rows_per_file)
    if folders:
        writer = writer.option("partitionOverwriteMode", "dynamic").partitionBy(*folders)
    writer.parquet(storage.spark_path(path))


def empty_frame(spark: SparkSession, schema: T.StructType | str) -> DataFrame:
    """A frame without rows. Built on an RDD without partitions: `createDataFrame([])` parallelizes an empty Python
    list, whose tasks start Python workers (writing an empty folder took 0.5-0.6 s that way, 0.2 s this way)."""
    return spark.createDataFrame(spark.sparkContext.emptyRDD(), schema)


def write_empty(spark: SparkSession, schema: T.StructType | str, path: str, fmt: str) -> None:
    """Replace a folder with an empty dataset (a re-run that produced no rows must not keep old rows): one file
    with the schema and no rows."""
    empty_frame(spark, schema).coalesce(1).write.mode("overwrite").format(fmt).save(path)


def write_rejects(
    df: DataFrame, storage: Storage, staging_uri: str, spec: DatasetSpec, run_id: str, partition: str
) -> None:
    """JSON lines of one partition's rejects (one file), replacing the folder. `repartition`, not `coalesce`: only
    the rejected rows move to one task, while the scan of all rows stays parallel (coalesce ran it in one task)."""
    value = partition.split("=", 1)[1]
    (
        df.where(F.col(spec.partition_key) == value)
        .drop(spec.partition_key)
        .repartition(1)
        .write.mode("overwrite")
        .option("ignoreNullFields", "false")
        .json(storage.spark_path(reject_partition_uri(staging_uri, spec, partition, run_id)))
    )


def curated_schema(spec: DatasetSpec) -> str:
    """The curated files' schema as DDL (what a partition without rows is written with)."""
    return ", ".join(f"`{name}` {kind}" for name, kind in column_types(spec))


def column_types(spec: DatasetSpec) -> list[tuple[str, str]]:
    """(name, type) of the curated files' columns, for lineage and the catalog."""
    return [(c.name, c.type) for c in spec.columns] + [
        (SOURCE_OBJECT, "string"),
        (INGESTED_AT, "timestamp"),
        (RUN_ID, "string"),
    ]


@dataclass(frozen=True)
class RowCounts:
    """This run's parsed and rejected rows per partition value, its rejects by kind of reason, and the range of
    its valid rows' primary keys per partition value."""

    by_partition: dict[str, dict[str, int]]  # {partition value: {parsed_rows, rejected_rows}}
    reasons: dict[str, int]  # {reason's first clause without the value (e.g. `column amount`): rows}
    # {partition value: {primary key column: (min, max)}} over the valid rows; a column that is null in some valid
    # row is left out: a null key equals a null in any published file, whatever the file's range.
    key_ranges: dict[str, dict[str, tuple[Any, Any]]]

    def plus(self, other: RowCounts) -> RowCounts:
        """The counts of two disjoint sets of rows. A key column stays in a partition's range only where neither set
        left it out (a null in it)."""
        by_partition = {v: dict(c) for v, c in self.by_partition.items()}
        for value, counts in other.by_partition.items():
            mine = by_partition.setdefault(value, {"parsed_rows": 0, "rejected_rows": 0})
            for name, rows in counts.items():
                mine[name] = mine.get(name, 0) + rows
        reasons = dict(self.reasons)
        for reason, rows in other.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + rows
        key_ranges = {v: dict(r) for v, r in self.key_ranges.items()}
        for value, ranges in other.key_ranges.items():
            if value not in key_ranges:
                key_ranges[value] = dict(ranges)
                continue
            key_ranges[value] = {name: (min(low, ranges[name][0]), max(high, ranges[name][1]))
                                 for name, (low, high) in key_ranges[value].items() if name in ranges}  # fmt: skip
        return RowCounts(by_partition, dict(sorted(reasons.items())), key_ranges)

    def valid_rows(self, value: str | None = None) -> int:
        """Rows without a reject reason: of partition `value`, or of every partition."""
        counts = self.by_partition.values() if value is None else [self.by_partition.get(value, {})]
        return sum(c.get("parsed_rows", 0) - c.get("rejected_rows", 0) for c in counts)


def count_rows(df: DataFrame, spec: DatasetSpec) -> RowCounts:
    """The counts and key ranges in one aggregation (one pass over the rows, grouped by partition and kind of
    reason)."""
    kind = F.when(F.col(REASON).isNotNull(), F.regexp_extract(F.col(REASON), r"^([^:;]*)", 1))
    aggregates = [F.count(F.lit(1))]
    for name in spec.primary_key:
        aggregates += [F.min(name), F.max(name), F.count(F.when(F.col(name).isNull(), 1))]
    groups = df.groupBy(F.col(spec.partition_key), kind.alias("kind")).agg(*aggregates).collect()
    by_partition: dict[str, dict[str, int]] = {}
    reasons: dict[str, int] = {}
    key_ranges: dict[str, dict[str, tuple[Any, Any]]] = {}
    for value, reason, rows, *keys in groups:
        counts = by_partition.setdefault(value, {"parsed_rows": 0, "rejected_rows": 0})
        counts["parsed_rows"] += rows
        if reason is not None:
            counts["rejected_rows"] += rows
            reasons[reason] = reasons.get(reason, 0) + rows
        else:
            key_ranges[value] = {name: (keys[3 * i], keys[3 * i + 1]) for i, name in enumerate(spec.primary_key)
                                 if not keys[3 * i + 2]}  # fmt: skip
    return RowCounts(by_partition, dict(sorted(reasons.items())), key_ranges)


def parquet_rows(spark: SparkSession, storage: Storage, objects: Iterable[RawObject]) -> dict[str, int]:
    """Rows of each Parquet object from its footer (a metadata-only count per object)."""
    return {o.uri: spark.read.parquet(storage.spark_path(o.uri)).count() for o in objects}


def quarantine_uri(staging_uri: str, spec: DatasetSpec, partition: str, run_id: str) -> str:
    return join_uri(staging_uri, "quarantine", spec.name, partition, f"{RUN_FOLDER}={run_id}", "objects.json")
