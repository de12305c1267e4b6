"""CSV objects parsed by Apache Arrow inside Spark tasks: the ETL's fast path for CSV.

Why: parsing and checking every line with Spark (text lines, `from_csv`, strict casts) cost more than the rest of
the job, and Spark's own typed CSV reader alone took 1.45-1.84x plain Spark (bench/etl_throughput.py). Arrow's
vectorised kernels do the same checks at a fraction of that, and a task writes the rows it parsed as Parquet
itself, so they never cross into the JVM row by row.

Each task streams its objects (the same reader the driver's inspection uses, etl/readers.py) and sorts every data
line (not blank, not a header line) into one of two:
- **fast**: no quote or escape character, the header's field count, and every value passes a check that is
  narrower than the Spark path's (`etl.transforms.cast_column`) and gives the value Spark's cast gives. These become
  typed rows, written to a staged Parquet file.
- **slow**: every other line, kept as its raw text. The Spark path parses them exactly as it parses any line, and
  rejects a line with its reason or accepts it.

So the fast path never rejects: every reject and its reason comes from the one Spark path, and the fast path takes
only lines both would read alike (tests/unit/test_fast_csv.py runs both on the same awkward lines). Every line keeps
its physical line number (1-based, counting header and blank lines), which rejects now report.

Used when `unsupported(spec)` is None: a UTF-8 CSV dataset whose columns are strings, integers, decimals, and dates
or timestamps in an ISO format. Other CSV datasets, JSON lines and Parquet take the Spark path whole.
"""

from __future__ import annotations

import codecs
import contextlib
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

from etl.readers import BOM, _decompressed, line_breaks, open_object, split_header
from etl.spec import DECIMAL_TYPE, Column, DatasetSpec
from etl.storage import delete_prefix
from etl.transforms import LINE, SOURCE_OBJECT

BLOCK_CHARS = 32 * 1024 * 1024  # text sorted per Arrow call: large enough for the kernels, bounded in memory
TASK_LINES = 1_000_000  # data lines per task, about what one core parses in a second or two
# strptime pattern of each ISO format whose values the Spark path casts with Spark's own cast (transforms.ISO_FORMATS)
ISO_STRPTIME = {"yyyy-MM-dd": "%Y-%m-%d", "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
                "yyyy-MM-dd'T'HH:mm:ss": "%Y-%m-%dT%H:%M:%S"}  # fmt: skip
# Four-digit years from 1000 (where Spark's calendar and Arrow's agree), and every field in its range but the day's
# end of month, which `_same_day` checks.
_DATE = r"[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
ISO_SHAPES = {"yyyy-MM-dd": f"^{_DATE}$", "yyyy-MM-dd HH:mm:ss": f"^{_DATE} {_TIME}$",
              "yyyy-MM-dd'T'HH:mm:ss": f"^{_DATE}T{_TIME}$"}  # fmt: skip

VALUE, HEADER = "value", "_header"  # the staged slow lines' own columns


def unsupported(spec: DatasetSpec) -> str | None:
    """Why the fast path cannot read this dataset (None when it can)."""
    if spec.format != "csv":
        return f"format {spec.format}"
    encoding = (spec.reader_option("encoding", "UTF-8") or "UTF-8").upper().replace("-", "")
    if encoding != "UTF8":
        return f"encoding {spec.reader_option('encoding')}"
    for option, default in (("delimiter", ","), ("quote", '"'), ("escape", "\\")):
        if len(spec.reader_option(option, default) or default) != 1:
            return f"a {option} of more than one character"
    for column in spec.columns:
        if column.type in ("date", "timestamp") and (column.format or "") not in ISO_STRPTIME:
            return f"column {column.name}: {column.type} format {column.format!r} is not an ISO format"
        if column.type not in ("string", "int", "bigint", "date", "timestamp") and not DECIMAL_TYPE.match(column.type):
            return f"column {column.name}: type {column.type}"
    return None


@dataclass(frozen=True)
class ObjectLayout:
    """One object as a task reads it: where, which partition value, its header line ("" without one)."""

    uri: str
    partition_value: str
    header: str
    gzip: bool


def arrow_type(column: Column) -> Any:
    import pyarrow as pa

    if match := DECIMAL_TYPE.match(column.type):
        return pa.decimal128(int(match[1]), int(match[2]))
    return {"string": pa.string(), "int": pa.int32(), "bigint": pa.int64(), "date": pa.date32(),
            "timestamp": pa.timestamp("us", tz="UTC")}[column.type]  # fmt: skip


def fast_schema(spec: DatasetSpec) -> Any:
    """The staged fast rows: the spec's columns typed, then source object, partition value and line number."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c)) for c in spec.columns]
                     + [pa.field(SOURCE_OBJECT, pa.string()), pa.field(spec.partition_key, pa.string()),
                        pa.field(LINE, pa.int64())])  # fmt: skip


def slow_schema(spec: DatasetSpec) -> Any:
    """The staged slow lines: source object, partition value, line number, the line, its object's header."""
    import pyarrow as pa

    names = (SOURCE_OBJECT, spec.partition_key, LINE, VALUE, HEADER)
    types = (pa.string(), pa.string(), pa.int64(), pa.string(), pa.string())
    return pa.schema([pa.field(name, kind) for name, kind in zip(names, types, strict=True)])


def _typed(column: Column, raw: Any) -> tuple[Any, Any]:
    """(typed values, ok) for one column's raw field values: ok where the value is one the Spark path accepts and
    the typed value is the one it would give; not ok sends the line to the Spark path."""
    import pyarrow as pa
    import pyarrow.compute as pc

    empty = pc.equal(raw, "")  # Spark's CSV parser reads an empty unquoted field as null
    if column.type == "string":
        values = pc.if_else(empty, pa.scalar(None, pa.string()), raw)
        return values, (pc.invert(empty) if not column.nullable else pa.scalar(True))
    text = pc.utf8_trim(raw, " ")  # what the Spark path casts (F.trim: spaces only)
    if column.type in ("int", "bigint"):
        shaped = pc.match_substring_regex(text, r"^-?\d{1,18}$")
        values = pc.cast(pc.if_else(shaped, text, pa.scalar(None, pa.string())), pa.int64())
        if column.type == "int":
            fits = pc.and_(pc.greater_equal(values, -(2**31)), pc.less_equal(values, 2**31 - 1))
            shaped = pc.and_(shaped, pc.fill_null(fits, False))
            values = pc.cast(pc.if_else(shaped, values, pa.scalar(None, pa.int64())), pa.int32())
    elif match := DECIMAL_TYPE.match(column.type):
        precision, scale = int(match[1]), int(match[2])
        whole = r"0" if precision == scale else rf"\d{{1,{precision - scale}}}"
        fraction = rf"(\.\d{{1,{scale}}})?" if scale else ""
        shaped = pc.match_substring_regex(text, rf"^-?{whole}{fraction}$")
        values = pc.cast(pc.if_else(shaped, text, pa.scalar(None, pa.string())), pa.decimal128(precision, scale))
    else:  # an ISO date or timestamp (`unsupported` lets no other through)
        pattern = ISO_STRPTIME[column.format or ""]
        shaped = pc.match_substring_regex(text, ISO_SHAPES[column.format or ""])
        written = pc.if_else(shaped, text, pa.scalar(None, pa.string()))
        parsed = pc.strptime(written, format=pattern, unit="s", error_is_null=True)
        # Arrow's strptime rolls 2026-02-30 over to March 2, where Spark's cast gives null.
        same = _same_day(parsed, written)
        shaped = pc.and_(shaped, pc.fill_null(same, False))
        values = pc.if_else(shaped, parsed, pa.scalar(None, parsed.type))
        values = pc.cast(values, pa.date32()) if column.type == "date" else pc.cast(
            pc.cast(values, pa.timestamp("us")), pa.timestamp("us", tz="UTC"))  # the session time zone is UTC
    ok = pc.or_(pc.fill_null(shaped, False), pc.and_(empty, pa.scalar(column.nullable)))
    return values, ok


def _same_day(parsed: Any, written: Any) -> Any:
    """Whether each parsed value has the day of month written in its ISO text (the shape has checked every other
    field's range; a day past the month's end is what Arrow rolls over)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    day = pc.cast(pc.utf8_slice_codeunits(written, 8, 10), pa.int64(), safe=False)
    return pc.equal(pc.cast(pc.day(parsed), pa.int64()), day)


@dataclass
class SortedLines:
    fast: Any  # pyarrow.Table in fast_schema
    slow: Any  # pyarrow.Table in slow_schema


def sort_lines(text: str, first_line: int, layout: ObjectLayout, spec: DatasetSpec) -> SortedLines:
    """Sort the complete lines of `text` (the first is physical line `first_line` of its object) into typed fast
    rows and raw slow lines. Blank lines and lines equal to the object's header are neither."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if "\r" in text:  # Spark's text reader ends lines at \n, \r\n and a lone \r
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = pc.list_flatten(pc.split_pattern(pa.array([text], pa.large_string()), "\n")).cast(pa.string())
    numbers = pa.array(np.arange(first_line, first_line + len(lines), dtype=np.int64))
    if BOM in text:  # stripped from every line, as the Spark path does
        lines = pc.if_else(pc.starts_with(lines, BOM), pc.utf8_slice_codeunits(lines, 1), lines)
    keep = pc.not_equal(pc.utf8_trim(lines, " "), "")
    if layout.header:
        keep = pc.and_(keep, pc.not_equal(lines, layout.header))
    lines, numbers = lines.filter(keep), numbers.filter(keep)

    options = {o: spec.reader_option(o, d) or d for o, d in (("delimiter", ","), ("quote", '"'), ("escape", "\\"))}
    names = split_header(layout.header, spec) if layout.header else list(spec.column_names)
    index = {name: i for i, name in enumerate(names)}
    required_missing = any(c.name not in index and not c.nullable for c in spec.columns)
    special = [c for c in {options["quote"], options["escape"]} if c in text]  # one scan of the block, not one a line
    plain: Any = pa.scalar(True)
    for char in special:
        plain = pc.and_(plain, pc.invert(pc.match_substring(lines, char)))
    fields = pc.split_pattern(lines, options["delimiter"])
    candidate = pc.and_(plain, pc.equal(pc.list_value_length(fields), len(names)))
    if required_missing:
        candidate = pa.array(np.zeros(len(lines), dtype=bool))

    rows = fields.filter(candidate)
    typed, ok = {}, pa.array(np.ones(len(rows), dtype=bool))
    for column in spec.columns:
        if column.name not in index:  # a missing nullable column: null, as the Spark path fills it
            typed[column.name] = pa.nulls(len(rows), arrow_type(column))
            continue
        values, fine = _typed(column, pc.list_element(rows, index[column.name]))
        typed[column.name], ok = values, pc.and_(ok, fine)
    fast_mask = np.zeros(len(lines), dtype=bool)
    fast_mask[np.flatnonzero(candidate.to_numpy(zero_copy_only=False))] = ok.to_numpy(zero_copy_only=False)
    fast_numbers = numbers.filter(pa.array(fast_mask))
    fast = pa.table(
        [*(typed[c.name].filter(ok) for c in spec.columns),
         _constant(layout.uri, len(fast_numbers)), _constant(layout.partition_value, len(fast_numbers)), fast_numbers],
        schema=fast_schema(spec),
    )  # fmt: skip
    slow_mask = pa.array(~fast_mask)
    slow_numbers = numbers.filter(slow_mask)
    slow = pa.table(
        [_constant(layout.uri, len(slow_numbers)), _constant(layout.partition_value, len(slow_numbers)), slow_numbers,
         lines.filter(slow_mask), _constant(layout.header, len(slow_numbers))],
        schema=slow_schema(spec),
    )  # fmt: skip
    return SortedLines(fast, slow)


def _constant(value: str, length: int) -> Any:
    import pyarrow as pa

    return pa.repeat(pa.scalar(value, pa.string()), length)


def text_blocks(chunks: Iterator[str]) -> Iterator[tuple[str, int]]:
    """Decoded text -> (blocks of complete lines, physical number of the block's first line). A block ends at a line
    break (never between the \r and \n of one), except the object's last, which ends where the object ends."""
    pending, line = "", 1
    for chunk in chunks:
        pending += chunk
        if len(pending) < BLOCK_CHARS:
            continue
        cut = pending.rfind("\n")
        if cut < 0:
            cut = pending.rfind("\r", 0, len(pending) - 1)
        if cut < 0:
            continue
        block, pending = pending[: cut + 1], pending[cut + 1 :]
        yield block, line
        line += line_breaks(block)
    if pending:
        yield pending, line


def read_text(storage: Any, layout: ObjectLayout) -> Iterator[str]:
    """The object's text, decoded as UTF-8 (the driver has checked it decodes: etl/readers.py::inspect_object)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    with contextlib.closing(open_object(storage, layout.uri)) as stream:
        for chunk in _decompressed(stream, layout.gzip):
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)


def stage_objects(storage: Any, layouts: list[ObjectLayout], spec: DatasetSpec, fast_uri: str, slow_uri: str
                  ) -> dict[str, Any]:  # fmt: skip
    """A task: sort the lines of its objects and write the fast rows and the slow lines as one Parquet file each
    (none when there are none). Returns, per partition value, its fast rows' count and primary-key ranges
    (`{"fast": {value: {"rows": n, "keys": {column: [min, max, nulls]}}}`) and its slow lines' count (`"slow"`):
    the fast rows are counted here, so Spark never reads them back just to count them."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    fast: dict[str, dict[str, Any]] = {}
    slow: dict[str, int] = {}
    writers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lake-fast-csv-") as folder:
        try:
            for layout in layouts:
                for block, first in text_blocks(read_text(storage, layout)):
                    parts = sort_lines(block, first, layout, spec)
                    for kind, table in (("fast", parts.fast), ("slow", parts.slow)):
                        if not table.num_rows:
                            continue
                        if kind not in writers:
                            writers[kind] = pq.ParquetWriter(Path(folder) / kind, table.schema)
                        writers[kind].write_table(table)
                    value = layout.partition_value
                    slow[value] = slow.get(value, 0) + parts.slow.num_rows
                    if parts.fast.num_rows:
                        counts = fast.setdefault(value, {"rows": 0, "keys": {}})
                        counts["rows"] += parts.fast.num_rows
                        for name in spec.primary_key:
                            column = parts.fast.column(name)
                            bounds = pc.min_max(column).as_py()
                            _widen(counts["keys"], name, bounds["min"], bounds["max"], column.null_count)
        finally:
            for writer in writers.values():
                writer.close()
        for kind, uri in (("fast", fast_uri), ("slow", slow_uri)):
            if kind in writers:
                storage.put_file(str(Path(folder) / kind), uri)
    return {"fast": fast, "slow": slow}


def _widen(keys: dict[str, list[Any]], name: str, low: Any, high: Any, nulls: int) -> None:
    """Merge a column's [min, max, nulls] into `keys` (min and max are None when every value is null)."""
    if name not in keys:
        keys[name] = [low, high, nulls]
        return
    old_low, old_high, old_nulls = keys[name]
    keys[name] = [low if old_low is None else old_low if low is None else min(old_low, low),
                  high if old_high is None else old_high if high is None else max(old_high, high),
                  old_nulls + nulls]  # fmt: skip


def fast_counts(results: list[dict[str, Any]]) -> Any:
    """The tasks' counts of their fast rows as one `etl.transforms.RowCounts` (no rejects: the fast path has none).
    Timestamps come back as Spark gives them: naive, in the session's UTC."""
    from etl.transforms import RowCounts

    merged: dict[str, dict[str, Any]] = {}
    for result in results:
        for value, counts in result["fast"].items():
            mine = merged.setdefault(value, {"rows": 0, "keys": {}})
            mine["rows"] += counts["rows"]
            for name, (low, high, nulls) in counts["keys"].items():
                _widen(mine["keys"], name, low, high, nulls)

    def naive(value: Any) -> Any:
        return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) is not None else value

    return RowCounts(
        {v: {"parsed_rows": c["rows"], "rejected_rows": 0} for v, c in merged.items()},
        {},
        {v: {name: (naive(low), naive(high)) for name, (low, high, nulls) in c["keys"].items() if not nulls}
         for v, c in merged.items()},
    )  # fmt: skip


def plan_tasks(objects: list[tuple[ObjectLayout, int]], parallelism: int) -> list[list[ObjectLayout]]:
    """Objects (with their data lines) -> tasks: about TASK_LINES lines each, but at least `parallelism` tasks when
    there are as many objects, so every core parses. Largest objects first, each onto the least loaded task."""
    total = sum(lines for _, lines in objects)
    count = min(len(objects), max(parallelism, -(-total // TASK_LINES)))
    tasks: list[list[ObjectLayout]] = [[] for _ in range(count)]
    loads = [0] * count
    for layout, lines in sorted(objects, key=lambda item: (-item[1], item[0].uri)):
        least = loads.index(min(loads))
        tasks[least].append(layout)
        loads[least] += lines
    return [t for t in tasks if t]


def spark_ddl(spec: DatasetSpec) -> str:
    return ", ".join([f"`{c.name}` {c.type}" for c in spec.columns]
                     + [f"`{SOURCE_OBJECT}` STRING", f"`{spec.partition_key}` STRING", f"`{LINE}` BIGINT"])  # fmt: skip


@dataclass
class Staged:
    """The parsed rows of a run's CSV objects, in the shape `etl.transforms.for_cache` gives (the fast rows read from
    the staged Parquet, the slow lines parsed and checked by Spark), and the frames to unpersist after the run."""

    rows: Any
    cached: list[Any]
    fast_rows: int
    slow_lines: int
    fast_counts: Any = None  # etl.transforms.RowCounts of the fast rows, counted by the tasks
    slow_rows: Any = None  # the slow lines as parsed and checked by Spark (cached), None when there are none
    fast_files: list[tuple[str, list[str]]] = field(default_factory=list)  # staged fast files and their objects

    def count_rows(self, spec: DatasetSpec) -> Any:
        """`etl.transforms.count_rows` of `rows`: the tasks' counts of the fast rows plus a count of the slow ones."""
        from etl import transforms as tf

        counts = self.fast_counts or tf.RowCounts({}, {}, {})
        return counts.plus(tf.count_rows(self.slow_rows, spec)) if self.slow_rows is not None else counts


def read_staged(spark: Any, storage: Any, plan: Any, spec: DatasetSpec, stage_uri: str) -> Staged:
    """Sort the lines of the plan's CSV objects in Spark tasks (`stage_objects`), then read them back: the fast rows
    as they are, the slow lines through the Spark path (`parse_csv_lines`, `enforce_schema`). `stage_uri` is the
    run's own folder, emptied first (a redriven run must not read an earlier attempt's files)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from etl import transforms as tf
    from etl.readers import is_gzip
    from etl.storage import for_tasks, join_uri

    delete_prefix(storage, stage_uri)
    objects = [(ObjectLayout(o.uri, o.partition_value, header, is_gzip(o.uri, spec)), plan.data_lines.get(o.uri, 0))
               for header, group in plan.headers.items() for o in group]  # fmt: skip
    tasks = plan_tasks(objects, spark.sparkContext.defaultParallelism)
    task_storage = for_tasks(storage)
    fast_folder, slow_folder = join_uri(stage_uri, "fast"), join_uri(stage_uri, "slow")

    def stage(item: tuple[int, list[ObjectLayout]]) -> dict[str, Any]:
        n, layouts = item
        name = f"part-{n:05d}.parquet"
        return stage_objects(task_storage, layouts, spec, join_uri(fast_folder, name), join_uri(slow_folder, name))

    results: list[dict[str, Any]] = []
    if tasks:
        results = spark.sparkContext.parallelize(list(enumerate(tasks)), len(tasks)).map(stage).collect()
    counts = fast_counts(results)
    fast_files = [(join_uri(fast_folder, f"part-{n:05d}.parquet"), [layout.uri for layout in tasks[n]])
                  for n, result in enumerate(results) if result["fast"]]  # fmt: skip
    fast_rows = counts.valid_rows()
    slow_lines = sum(n for result in results for n in result["slow"].values())
    null = F.lit(None).cast("string")
    frames, cached, slow_rows = [], [], None
    if fast_rows:
        # Arrow writes dates in the proleptic Gregorian calendar, as Spark 3 computes them: read as written (a file
        # without Spark's own metadata would otherwise fail on a date before 1582).
        fast = (spark.read.schema(spark_ddl(spec)).option("datetimeRebaseMode", "CORRECTED")
                .parquet(storage.spark_path(fast_folder)))  # fmt: skip
        frames.append(fast.select(SOURCE_OBJECT, spec.partition_key, *spec.column_names, null.alias(tf.RAW),
                                  F.col(LINE).alias(tf.LINE), null.alias(tf.REASON),
                                  F.lit(None).cast("long").alias(tf.ROW_HASH)))  # fmt: skip
    if slow_lines:
        ddl = ", ".join(f"`{n}` {t}" for n, t in ((SOURCE_OBJECT, "STRING"), (spec.partition_key, "STRING"),
                                                  (LINE, "BIGINT"), (VALUE, "STRING"), (HEADER, "STRING")))
        slow = spark.read.schema(ddl).parquet(storage.spark_path(slow_folder))
        parsed = [tf.parse_csv_lines(slow.where(F.col(HEADER) == header).drop(HEADER), header, spec)
                  for header in plan.headers]  # fmt: skip
        checked = tf.for_cache(tf.enforce_schema(reduce(lambda a, b: a.unionByName(b), parsed), spec))
        slow_rows = checked.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(slow_rows)
        frames.append(slow_rows)
    if not frames:
        empty = spark.createDataFrame([], tf.raw_schema(spec))
        frames.append(tf.for_cache(tf.enforce_schema(empty, spec)))
    rows = reduce(lambda a, b: a.unionByName(b), frames)
    return Staged(rows, cached, fast_rows, slow_lines, counts, slow_rows, fast_files)
