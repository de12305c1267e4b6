"""CSV objects parsed by Apache Arrow inside Spark tasks: the ETL's fast path for CSV.

Why: parsing and checking every line with Spark (text lines, `from_csv`, strict casts) cost more than the rest of
the job, and Spark's own typed CSV reader alone took 1.45-1.84x plain Spark (bench/etl_throughput.py). Arrow's
vectorised kernels do the same checks at a fraction of that, and a task writes the rows it parsed as curated Parquet
itself (etl/arrow_write.py), so they never cross into the JVM row by row.

Each task streams its objects (the same reader the driver's inspection uses, etl/readers.py) and sorts every data
line (not blank, not a header line) into one of two:
- **fast**: no quote or escape character, the header's field count, and every value passes a check that is
  narrower than the Spark path's (`etl.transforms.cast_column`) and gives the value Spark's cast gives. These become
  typed rows, written straight into the run's candidate folder, less each block's older versions of a key
  (`local_winners`); their keys are staged for the run's merge (etl/arrow_merge.py).
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
from etl.transforms import CURATED_FILE, CURATED_ROW, LINE, SOURCE_OBJECT

BLOCK_CHARS = 32 * 1024 * 1024  # text sorted per Arrow call: large enough for the kernels, bounded in memory
TASK_LINES = 1_000_000  # data lines per task, about what one core parses in a second or two
# strptime pattern of each ISO format whose values the Spark path casts with Spark's own cast (transforms.ISO_FORMATS)
ISO_STRPTIME = {"yyyy-MM-dd": "%Y-%m-%d", "yyyy-MM-dd HH:mm:ss": "%Y-%m-%d %H:%M:%S",
                "yyyy-MM-dd'T'HH:mm:ss": "%Y-%m-%dT%H:%M:%S"}  # fmt: skip
# Four-digit years from 1000 (where Spark's calendar and Arrow's agree), and every field in its range but the day's
# end of month, which `_same_day` checks.
_DATE = r"[1-9]\d{3}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
_TIME = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
# Timestamps only from 1678 to 2261: the years pyarrow 17 reads back from INT96 (the curated files' timestamps) without
# error, which a later rewrite of the file without an older version of a key needs (etl/arrow_write.py). Others are
# the Spark path's.
_TIMESTAMP_DATE = _DATE.replace(r"[1-9]\d{3}", r"(167[89]|16[89]\d|1[7-9]\d\d|2[01]\d\d|22[0-5]\d|226[01])")
ISO_SHAPES = {"yyyy-MM-dd": f"^{_DATE}$", "yyyy-MM-dd HH:mm:ss": f"^{_TIMESTAMP_DATE} {_TIME}$",
              "yyyy-MM-dd'T'HH:mm:ss": f"^{_TIMESTAMP_DATE}T{_TIME}$"}  # fmt: skip

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
    """A block's fast rows: the spec's columns typed, then source object, partition value and line number."""
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


def stage_objects(storage: Any, layouts: list[ObjectLayout], spec: DatasetSpec, target: Any, keys_uri: str,
                  slow_uri: str) -> dict[str, Any]:  # fmt: skip
    """A task: sort the lines of its objects; write the fast rows as curated files (`target`, an
    etl.arrow_write.CuratedTarget), each block's older versions of a key left out (`local_winners`), with a staged
    Parquet file of their keys and where each row went (`keys_schema`), and the slow lines as one staged Parquet
    file (none when there are none). Returns, per partition value, its fast rows' count, the older versions left
    out and the primary-key ranges (`{"fast": {value: {"rows": n, "duplicates": d, "keys": {column: [min, max,
    nulls]}}}`), its slow lines' count (`"slow"`), the rows of every curated file written (`"files"`), and each
    block's partition value, key ranges and pieces of files (`"blocks"`, etl/key_ranges.py): the fast rows are
    counted here, so Spark never reads them back just to count them."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from etl.arrow_write import CuratedWriter, dictionary_columns

    fast: dict[str, dict[str, Any]] = {}
    slow: dict[str, int] = {}
    blocks: list[dict[str, Any]] = []
    writers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="lake-fast-csv-") as folder:
        curated = CuratedWriter(storage, spec, target, folder)
        try:
            for layout in layouts:
                value = layout.partition_value
                for block, first in text_blocks(read_text(storage, layout)):
                    parts = sort_lines(block, first, layout, spec)
                    slow[value] = slow.get(value, 0) + parts.slow.num_rows
                    tables = {"slow": parts.slow}
                    if parts.fast.num_rows:
                        kept, removed = local_winners(parts.fast, spec)
                        counts = fast.setdefault(value, {"rows": 0, "duplicates": 0, "keys": {}})
                        counts["rows"] += parts.fast.num_rows
                        counts["duplicates"] += removed
                        ranges: dict[str, list[Any]] = {}
                        for name in spec.primary_key:
                            column = kept.column(name)
                            bounds = pc.min_max(column).as_py()
                            _widen(counts["keys"], name, bounds["min"], bounds["max"], column.null_count)
                            _widen(ranges, name, bounds["min"], bounds["max"], column.null_count)
                        placed = curated.append(value, kept)
                        blocks.append({"value": value, "placed": placed, "keys": ranges})
                        tables["keys"] = _placed_keys(kept, spec, placed)
                    for kind, table in tables.items():
                        if not table.num_rows:
                            continue
                        if kind not in writers:
                            writers[kind] = pq.ParquetWriter(Path(folder) / kind, table.schema,
                                                             use_dictionary=dictionary_columns(table))  # fmt: skip
                        writers[kind].write_table(table)
        finally:
            for writer in writers.values():
                writer.close()
        curated.close()
        for kind, uri in (("keys", keys_uri), ("slow", slow_uri)):
            if kind in writers:
                storage.put_file(str(Path(folder) / kind), uri)
    for block in blocks:
        block["keys_uri"] = keys_uri
    return {"fast": fast, "slow": slow, "files": curated.files, "blocks": blocks}


def local_winners(rows: Any, spec: DatasetSpec) -> tuple[Any, int]:
    """`rows` (one block: one object, one partition value) without the rows that lose their key to another row of
    the block, and how many those are. A row that loses here loses to the same row in the run's de-duplication
    (the ranking is a total order), so the run ranks only the keys that repeat across blocks, and their files are
    rewritten only then (etl/arrow_write.py). A null key equals a null key, as in Spark's window. The number of rows
    left out must equal the key columns' own count of repeated versions, or the task fails."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from etl.arrow_merge import losing_rows, repeated_keys

    keys = list(spec.primary_key)
    if not keys or rows.num_rows < 2:
        return rows, 0
    repeated = repeated_keys(rows, keys)
    if not repeated.num_rows:
        return rows, 0
    versions = pc.sum(repeated.column("versions")).as_py() - repeated.num_rows
    order = [spec.deduplicate_by] if spec.deduplicate_by else []
    indexed = rows.select(list(dict.fromkeys(keys + order + [LINE]))).append_column(
        "_position", pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    losers = losing_rows(indexed, keys, [*order, LINE], repeated).column("_position").to_numpy()
    if losers.size != versions:
        raise RuntimeError(f"a block of {rows.column(SOURCE_OBJECT)[0]}: {losers.size} rows lost their key, but "
                           f"the key columns count {versions} older versions")  # fmt: skip
    keep = np.ones(rows.num_rows, dtype=bool)
    keep[losers] = False
    return rows.filter(pa.array(keep)), int(losers.size)


def keys_schema(spec: DatasetSpec) -> Any:
    """The staged keys of the fast rows written: what the run's de-duplication ranks (partition value, primary key,
    `deduplicate_by`, source object, line number) and where the row is (curated file URI, row position in it)."""
    import pyarrow as pa

    from etl.arrow_merge import ranked_columns

    return pa.schema([pa.field(spec.partition_key, pa.string())]
                     + [pa.field(c.name, arrow_type(c)) for c in ranked_columns(spec)]
                     + [pa.field(SOURCE_OBJECT, pa.string()), pa.field(LINE, pa.int64()),
                        pa.field(CURATED_FILE, pa.string()), pa.field(CURATED_ROW, pa.int64())])  # fmt: skip


def _placed_keys(rows: Any, spec: DatasetSpec, placed: list[tuple[str, int, int]]) -> Any:
    """The keys of `rows` and where `CuratedWriter.append` put each (its pieces, in order)."""
    import numpy as np
    import pyarrow as pa

    schema = keys_schema(spec)
    files = pa.chunked_array([_constant(uri, count) for uri, _, count in placed], pa.string())
    positions = pa.array(np.concatenate([np.arange(start, start + count, dtype=np.int64)
                                         for _, start, count in placed]))  # fmt: skip
    columns = [rows.column(name) for name in schema.names[:-2]]
    return pa.table([*columns, files, positions], schema=schema)


def _widen(keys: dict[str, list[Any]], name: str, low: Any, high: Any, nulls: int) -> None:
    """Merge a column's [min, max, nulls] into `keys` (min and max are None when every value is null)."""
    if name not in keys:
        keys[name] = [low, high, nulls]
        return
    old_low, old_high, old_nulls = keys[name]
    keys[name] = [low if old_low is None else old_low if low is None else min(old_low, low),
                  high if old_high is None else old_high if high is None else max(old_high, high),
                  old_nulls + nulls]  # fmt: skip


def _naive(value: Any) -> Any:
    """A task's timestamp as Spark's `collect()` gives it: naive, in the session's UTC."""
    return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) is not None else value


def _known_ranges(keys: dict[str, list[Any]]) -> dict[str, tuple[Any, Any]]:
    """{column: (min, max)} of the key columns without a null (a null key equals a null anywhere)."""
    return {name: (_naive(low), _naive(high)) for name, (low, high, nulls) in keys.items() if not nulls}


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

    return RowCounts({v: {"parsed_rows": c["rows"], "rejected_rows": 0} for v, c in merged.items()}, {},
                     {v: _known_ranges(c["keys"]) for v, c in merged.items()})  # fmt: skip


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


def spark_ddl(schema: Any) -> str:
    """A staged file's Arrow schema as the DDL Spark reads it with (timestamps are in the session's UTC)."""
    import pyarrow as pa

    def kind(arrow: Any) -> str:
        if pa.types.is_decimal(arrow):
            return f"decimal({arrow.precision},{arrow.scale})"
        if pa.types.is_timestamp(arrow):
            return "timestamp"
        return {pa.string(): "string", pa.int32(): "int", pa.int64(): "bigint", pa.date32(): "date"}[arrow]

    return ", ".join(f"`{f.name}` {kind(f.type)}" for f in schema)


@dataclass
class Staged:
    """The parsed rows of a run's CSV objects, in the columns `etl.transforms.for_cache` gives: the fast rows already
    written as curated files, read back from their staged keys (only the columns the de-duplication ranks hold
    values; the others are null, so these rows are for ranking and counting, never for writing; `CURATED_FILE`,
    `CURATED_ROW` say where each is), and the slow lines parsed and checked by Spark; with the frames to unpersist
    after the run."""

    rows: Any
    cached: list[Any]
    fast_rows: int
    slow_lines: int
    fast_counts: Any = None  # etl.transforms.RowCounts of the fast rows, counted by the tasks
    slow_rows: Any = None  # the slow lines as parsed and checked by Spark (cached), None when there are none
    files: dict[str, int] = field(default_factory=dict)  # curated file URI -> rows the tasks wrote into it
    duplicates: dict[str, int] = field(default_factory=dict)  # partition value -> older versions the tasks left out
    # per block of fast rows: its partition value, its key ranges (naive UTC timestamps, as Spark gives them), where
    # its rows are ([(curated file URI, first row position, rows)]) and its keys' staged file
    blocks: list[tuple[str, dict[str, tuple[Any, Any]], list[tuple[str, int, int]], str]] = field(
        default_factory=list)
    slow_counts: Any = None  # etl.transforms.RowCounts of the slow rows, once `count_rows` has counted them

    def count_rows(self, spec: DatasetSpec) -> Any:
        """`etl.transforms.count_rows` of `rows`: the tasks' counts of the fast rows plus a count of the slow ones."""
        from etl import transforms as tf

        counts = self.fast_counts or tf.RowCounts({}, {}, {})
        if self.slow_rows is None:
            return counts
        self.slow_counts = tf.count_rows(self.slow_rows, spec)
        return counts.plus(self.slow_counts)


def read_staged(spark: Any, storage: Any, plan: Any, spec: DatasetSpec, stage_uri: str, target: Any) -> Staged:
    """Sort the lines of the plan's CSV objects in Spark tasks (`stage_objects`), which write the fast rows as
    curated files into `target`'s folders (an etl.arrow_write.CuratedTarget; the caller has emptied them), then
    read back the fast rows' keys and the slow lines, which go through the Spark path (`parse_csv_lines`,
    `enforce_schema`). `stage_uri` is the run's own folder, emptied first (a redriven run must not read an earlier
    attempt's files)."""
    from dataclasses import replace

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
    keys_folder, slow_folder = join_uri(stage_uri, "keys"), join_uri(stage_uri, "slow")

    def stage(item: tuple[int, list[ObjectLayout]]) -> dict[str, Any]:
        n, layouts = item
        name = f"part-{n:05d}.parquet"
        return stage_objects(task_storage, layouts, spec, replace(target, name=f"{target.name}-{n:05d}"),
                             join_uri(keys_folder, name), join_uri(slow_folder, name))  # fmt: skip

    results: list[dict[str, Any]] = []
    if tasks:
        results = spark.sparkContext.parallelize(list(enumerate(tasks)), len(tasks)).map(stage).collect()
    counts = fast_counts(results)
    fast_rows = counts.valid_rows()
    slow_lines = sum(n for result in results for n in result["slow"].values())
    files = {uri: rows for result in results for uri, rows in result["files"].items()}
    duplicates: dict[str, int] = {}
    for result in results:
        for value, fast in result["fast"].items():
            duplicates[value] = duplicates.get(value, 0) + fast["duplicates"]
    no_file = (F.lit(None).cast("string").alias(tf.CURATED_FILE), F.lit(None).cast("long").alias(tf.CURATED_ROW))
    frames, cached, slow_rows = [], [], None
    if files:
        # Arrow writes dates in the proleptic Gregorian calendar, as Spark 3 computes them: read as written (a file
        # without Spark's own metadata would otherwise fail on a date before 1582).
        schema = keys_schema(spec)
        keys = (spark.read.schema(spark_ddl(schema)).option("datetimeRebaseMode", "CORRECTED")
                .parquet(storage.spark_path(keys_folder)))  # fmt: skip
        null = F.lit(None).cast("string")
        columns = [F.col(c.name) if c.name in schema.names else F.lit(None).cast(c.type).alias(c.name)
                   for c in spec.columns]  # fmt: skip
        frames.append(keys.select(SOURCE_OBJECT, spec.partition_key, *columns, null.alias(tf.RAW), LINE,
                                  null.alias(tf.REASON), F.lit(None).cast("long").alias(tf.ROW_HASH),
                                  tf.CURATED_FILE, tf.CURATED_ROW))  # fmt: skip
    if slow_lines:
        ddl = spark_ddl(slow_schema(spec))
        slow = spark.read.schema(ddl).parquet(storage.spark_path(slow_folder))
        parsed = [tf.parse_csv_lines(slow.where(F.col(HEADER) == header).drop(HEADER), header, spec)
                  for header in plan.headers]  # fmt: skip
        checked = tf.for_cache(tf.enforce_schema(reduce(lambda a, b: a.unionByName(b), parsed), spec))
        slow_rows = checked.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(slow_rows)
        frames.append(slow_rows.select("*", *no_file))
    if not frames:
        empty = tf.empty_frame(spark, tf.raw_schema(spec))
        frames.append(tf.for_cache(tf.enforce_schema(empty, spec)).select("*", *no_file))
    rows = reduce(lambda a, b: a.unionByName(b), frames)
    blocks = [(block["value"], _known_ranges(block["keys"]), [tuple(piece) for piece in block["placed"]],
               block["keys_uri"]) for result in results for block in result["blocks"]]  # fmt: skip
    return Staged(rows, cached, fast_rows, slow_lines, counts, slow_rows, files, duplicates, blocks)
