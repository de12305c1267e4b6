"""The Arrow fast path for CSV (etl/fast_csv.py): it takes only lines the Spark path accepts, with the values the Spark
path gives, and every other line reaches the Spark path unchanged, with its line number."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pyspark.sql import functions as F

from etl import fast_csv as fc
from etl import transforms as tf
from etl.readers import RawObject
from etl.spec import parse_dataset
from etl.storage import LocalStorage

HEADER = "id,name,note,qty,big,amount,frac,day,at"
SPEC = parse_dataset(
    {
        "name": "things",
        "columns": [
            {"name": "id", "type": "string", "nullable": False},
            {"name": "name", "type": "string"},
            {"name": "note", "type": "string"},
            {"name": "qty", "type": "int"},
            {"name": "big", "type": "bigint"},
            {"name": "amount", "type": "decimal(12,2)"},
            {"name": "frac", "type": "decimal(4,4)"},
            {"name": "day", "type": "date", "format": "yyyy-MM-dd"},
            {"name": "at", "type": "timestamp", "format": "yyyy-MM-dd HH:mm:ss", "nullable": False},
        ],
        "primary_key": ["id"],
        "reader": {"escape": '"'},
        "partition": {"key": "d"},
    },
    Path("inline.yaml"),
)
LAYOUT = fc.ObjectLayout("s3://raw/things/d=1/a.csv", "1", HEADER, False)
VALID = ["x", "n", "t", "3", "4", "1.50", "0.5", "2026-11-24", "2026-11-24 10:00:01"]
AWKWARD = {
    "name": ["", " ", "a b", "ü", "日本", "tab\there"],
    "qty": ["0", "-0", "+5", "007", " 12 ", "2147483647", "2147483648", "-2147483648", "-2147483649", "1e3", "12.0",
            "", "  ", "٣", "9999999999999999999", "-"],
    "big": ["9223372036854775807", "999999999999999999", "-999999999999999999", "12345678901234567890", "+1"],
    "amount": ["1", "1.5", "1.55", "1.555", "-0.01", ".5", "5.", "0012.5", "9999999999.99", "99999999999.99",
               "+1.00", "1,5", " 3.10 ", "-", "1.", "0.00", "-0"],
    "frac": ["0.1234", "0.12345", "1.0", "0", "0.0", ".1", "-0.5"],
    "day": ["2026-02-29", "2024-02-29", "2026-04-31", "2026-13-01", "0999-01-01", "1000-01-01", "2026-1-24",
            " 2026-11-24 ", "2026-11-24 00:00:00", "9999-12-31"],
    "at": ["2026-02-29 00:00:00", "2024-02-29 12:00:00", "2026-02-30 00:00:00", "2026-04-31 23:59:59",
           "2026-11-24 24:00:00", "2026-11-24 23:59:60", "2026-11-24 23:60:00", "0999-01-01 00:00:00",
           "1677-12-31 23:59:59", "1678-01-01 00:00:01", "2261-12-31 23:59:59", "2262-01-01 00:00:00",
           "9999-12-31 23:59:59",
           "2026-11-24T10:00:00", " 2026-11-24 10:00:00 ", "2026-11-24 10:00", "2026-12-31 23:59:59", ""],
}


def awkward_lines() -> list[str]:
    index = HEADER.split(",")
    lines = [",".join(VALID)]
    for column, values in AWKWARD.items():
        for value in values:
            fields = list(VALID)
            fields[index.index(column)] = value
            lines.append(",".join(fields))
    return lines + [",".join(VALID[:-1]), ",".join([*VALID, "extra"]), ",".join(VALID).replace("n", '"n"', 1),
                    ",".join(VALID).replace("t", 'a"b', 1), ",,,,,,,,"]  # fmt: skip


def test_unsupported__names_what_the_fast_path_cannot_read():
    assert fc.unsupported(SPEC) is None
    cases = {
        "format json": {"format": "json"},
        "encoding ISO-8859-1": {"reader": {"encoding": "ISO-8859-1"}},
        "column ok: type boolean": {"columns": [{"name": "ok", "type": "boolean"}]},
        "column d: date format 'dd.MM.yyyy' is not an ISO format": {"columns": [{"name": "d", "type": "date",
                                                                                  "format": "dd.MM.yyyy"}]},
    }
    for reason, change in cases.items():
        spec = parse_dataset({"name": "x", "columns": [{"name": "a", "type": "string"}], **change}, Path("x.yaml"))
        assert fc.unsupported(spec) == reason


def test_sort_lines__drops_blank_and_header_lines_and_numbers_the_rest():
    second = ",".join(VALID).replace("x", "y")
    text = f"{HEADER}\r\n{','.join(VALID)}\r\n   \n\ufeff{second}\r{HEADER}\n\nz,\"q\",,,,,,,\n"
    parts = fc.sort_lines(text, 1, LAYOUT, SPEC)
    assert parts.fast.column("id").to_pylist() == ["x", "y"]
    assert parts.fast.column(fc.LINE).to_pylist() == [2, 4]  # line 3 is blank; a BOM is stripped
    assert parts.slow.column(fc.VALUE).to_pylist() == ['z,"q",,,,,,,']
    assert parts.slow.column(fc.LINE).to_pylist() == [7]
    assert parts.slow.column(fc.HEADER).to_pylist() == [HEADER]
    assert set(parts.fast.column(fc.SOURCE_OBJECT).to_pylist()) == {LAYOUT.uri}


def test_sort_lines__a_missing_required_column_sends_every_line_to_spark():
    layout = fc.ObjectLayout(LAYOUT.uri, "1", HEADER.replace(",at", ""), False)
    parts = fc.sort_lines(",".join(VALID[:-1]) + "\n", 2, layout, SPEC)
    assert parts.fast.num_rows == 0 and parts.slow.column(fc.LINE).to_pylist() == [2]


def test_sort_lines__a_missing_nullable_column_is_null():
    layout = fc.ObjectLayout(LAYOUT.uri, "1", HEADER.replace(",note", ""), False)
    fields = [v for i, v in enumerate(VALID) if i != 2]
    parts = fc.sort_lines(",".join(fields) + "\n", 2, layout, SPEC)
    assert parts.fast.column("note").to_pylist() == [None]
    assert parts.fast.column("qty").to_pylist() == [3]


def test_text_blocks__never_split_a_line_and_count_lines_across_blocks(monkeypatch):
    monkeypatch.setattr(fc, "BLOCK_CHARS", 8)
    text = "a1\r\nb22\r\nc333\rd4444\ne\r\n\r\nf"
    chunks = [text[i : i + 3] for i in range(0, len(text), 3)]
    blocks = list(fc.text_blocks(iter(chunks)))
    assert "".join(b for b, _ in blocks) == text
    for block, first in blocks:
        assert not block.startswith("\n")  # a \r\n is never cut in two
        lines = block.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        expected = {"a1": 1, "b22": 2, "c333": 3, "d4444": 4, "e": 5, "f": 7}
        for offset, line in enumerate(lines):
            if line:
                assert expected[line] == first + offset, (block, first)


def test_plan_tasks__spreads_lines_over_at_least_the_cores():
    objects = [(fc.ObjectLayout(f"s3://r/{n}", "1", "", False), lines) for n, lines in
               enumerate([3_000_000, 100, 100, 900_000, 50])]  # fmt: skip
    tasks = fc.plan_tasks(objects, 2)
    assert sorted(layout.uri for task in tasks for layout in task) == sorted(o[0].uri for o in objects)
    assert len(tasks) == 4  # 4.0M lines: 4 tasks of about a million
    assert [layout.uri for layout in tasks[0]] == ["s3://r/0"]
    assert fc.plan_tasks(objects[1:3], 8) == [[objects[1][0]], [objects[2][0]]]  # never more tasks than objects


def spark_path(spark, lines: list[str]):
    """The Spark path's reading of the lines (what every line took before the fast path)."""
    frame = spark.createDataFrame(
        [(LAYOUT.uri, "1", line, n + 2) for n, line in enumerate(lines)],
        f"`{tf.SOURCE_OBJECT}` STRING, `d` STRING, value STRING, `{tf.LINE}` BIGINT",
    )
    return {r[tf.LINE]: r for r in tf.enforce_schema(tf.parse_csv_lines(frame, HEADER, SPEC), SPEC).collect()}


@pytest.mark.spark
def test_fast_rows_are_what_the_spark_path_accepts_with_the_same_values(spark):
    lines = awkward_lines()
    by_spark = spark_path(spark, lines)
    parts = fc.sort_lines("\n".join(lines) + "\n", 2, LAYOUT, SPEC)
    fast = {row[fc.LINE]: row for row in parts.fast.to_pylist()}
    slow = set(parts.slow.column(fc.LINE).to_pylist())
    assert fast.keys() | slow == set(by_spark) and not fast.keys() & slow  # every line, once
    for line, row in fast.items():
        expected = by_spark[line]
        assert expected[tf.REASON] is None, (lines[line - 2], expected[tf.REASON])
        for column in SPEC.column_names:
            value = row[column]
            if column == "at" and value is not None:
                value = value.replace(tzinfo=None)  # Spark returns the session's (UTC) local time
            assert value == expected[column], (lines[line - 2], column, value, expected[column])
    accepted = [n for n, r in by_spark.items() if r[tf.REASON] is None]
    # The fast path is not a formality: it takes the plain spellings (most of the lines Spark accepts).
    assert len(fast) >= 0.6 * len(accepted), (len(fast), len(accepted))
    for plain in (",".join(VALID), ",".join(VALID).replace("1.50", "-0.01")):
        assert lines.index(plain) + 2 in fast
    for year, taken in (("1677", False), ("1678", True), ("2261", True), ("2262", False), ("9999", False)):
        line = next(n for n, text in enumerate(lines, 2) if text.endswith(f",{year}-12-31 23:59:59")
                    or text.endswith(f",{year}-01-01 00:00:00") or text.endswith(f",{year}-01-01 00:00:01"))
        assert (line in fast) is taken and (by_spark[line][tf.REASON] is None), year  # Spark accepts them all


@pytest.mark.spark
@pytest.mark.parametrize("primary_key", [["id"], ["id", "at", "name"]])
def test_read_staged__equals_the_spark_path_on_a_mixed_object(spark, tmp_path, primary_key):
    """Objects with a repeated header, CRLF and blank lines, quoted and malformed lines, bad values, and a second header
    with reordered columns: the staged rows equal the Spark path's, reasons and raw lines included, and so do the
    counts and key ranges (the fast rows' counted by the tasks)."""
    spec = SPEC.__class__(**{**SPEC.__dict__, "primary_key": tuple(primary_key)})
    storage = LocalStorage(tmp_path)
    lines = [f"x{n}{line[1:]}" if line.startswith("x") else line for n, line in enumerate(awkward_lines())]
    first = f"{HEADER}\r\n" + "\r\n".join(lines[:30]) + f"\r\n\r\n{HEADER}\r\n" + "\r\n".join(lines[30:]) + "\r\n"
    reordered = "at,id,qty,amount,extra\n2026-11-24 10:00:01,r1,7,2.5,e\n2026-11-24 10:00:01,r2,x,2.5,e\n"
    (tmp_path / "raw" / "things" / "d=1").mkdir(parents=True)
    (tmp_path / "raw" / "things" / "d=1" / "a.csv").write_text(first, encoding="utf-8", newline="")
    (tmp_path / "raw" / "things" / "d=1" / "b.csv").write_text(reordered, encoding="utf-8")
    objects = [RawObject("s3://raw/things/d=1/a.csv", "d=1"), RawObject("s3://raw/things/d=1/b.csv", "d=1")]
    plan = tf.plan_sources(storage, objects, spec)
    staged = fc.read_staged(spark, storage, plan, spec, "s3://staging/tmp/parsed/things/r1", target(spark, spec))
    try:
        written = spark.read.parquet(storage.spark_path(FOLDER)).select(
            tf.SOURCE_OBJECT, F.lit("1").alias("d"), *spec.column_names, F.lit(None).cast("string").alias(tf.RAW),
            F.lit(None).cast("string").alias(tf.REASON))  # fmt: skip
        slow = staged.slow_rows.drop(tf.LINE, tf.ROW_HASH)
        got = [r.asDict() for r in written.unionByName(slow).collect()]
        assert staged.fast_rows > 0 and staged.slow_lines > 0 and sum(staged.files.values()) == staged.fast_rows
        assert staged.rows.where(F.col(tf.CURATED_FILE).isNotNull()).count() == staged.fast_rows
        counts = staged.count_rows(spec)
    finally:
        for frame in staged.cached:
            frame.unpersist()
    old = tf.for_cache(tf.enforce_schema(tf.read_records(spark, storage, plan, spec), spec))
    expected = [r.asDict() for r in old.drop(tf.LINE, tf.ROW_HASH).collect()]
    key = lambda r: tuple((k, str(v)) for k, v in sorted(r.items()))  # noqa: E731
    assert sorted(got, key=key) == sorted(expected, key=key)
    assert counts == tf.count_rows(old, spec)
    assert set(counts.key_ranges["1"]) == set(primary_key) - {"name"}  # name is null in a valid line (b.csv)
    assert sum(plan.data_lines.values()) == len(got)
    rejects = staged.rows.where(F.col(tf.REASON).isNotNull()).select(tf.LINE).collect()
    assert rejects and all(r[0] is not None for r in rejects)  # a reject names its line


@pytest.mark.spark
def test_read_staged__a_redriven_run_reads_none_of_an_earlier_attempts_files(spark, tmp_path):
    storage = LocalStorage(tmp_path)
    (tmp_path / "raw" / "things" / "d=1").mkdir(parents=True)
    (tmp_path / "raw" / "things" / "d=1" / "a.csv").write_text(f"{HEADER}\n{','.join(VALID)}\n", encoding="utf-8")
    stale = tmp_path / "staging" / "tmp" / "parsed" / "things" / "r1" / "fast" / "part-00007.parquet"
    stale.parent.mkdir(parents=True)
    import pyarrow.parquet as pq

    spec = SPEC
    pq.write_table(pa.table({"id": ["stale"]}), stale)
    plan = tf.plan_sources(storage, [RawObject("s3://raw/things/d=1/a.csv", "d=1")], spec)
    staged = fc.read_staged(spark, storage, plan, spec, "s3://staging/tmp/parsed/things/r1", target(spark, spec))
    assert [r.id for r in staged.rows.collect()] == ["x"]
    assert not stale.exists()


FOLDER = "s3://curated/things/d=1/run_id=r1"


def target(spark, spec):
    from datetime import UTC, datetime

    from etl.arrow_write import curated_target

    return curated_target(spark, spec, {"1": FOLDER}, "r1", datetime(2026, 11, 24, tzinfo=UTC), "part-arrow-t")


def test_local_winners__keeps_what_the_runs_ranking_keeps():
    """Per key the latest `deduplicate_by` wins (a null loses to any value), then the greater line; a null key
    equals a null key, as in Spark's window. Checked against the ranking written out in Python."""
    import random

    spec = SPEC.__class__(**{**SPEC.__dict__, "primary_key": ("id", "qty"), "deduplicate_by": "at"})
    rng = random.Random(7)
    rows = [{"id": rng.choice(["a", "b", "c", None]), "qty": rng.choice([1, 2]), "line": n + 2,
             "at": rng.choice([None, 1, 2, 3])} for n in range(300)]  # fmt: skip
    table = pa.table({"id": pa.array([r["id"] for r in rows], pa.string()),
                      "qty": pa.array([r["qty"] for r in rows], pa.int32()),
                      "at": pa.array([r["at"] for r in rows], pa.timestamp("us", tz="UTC")),
                      fc.LINE: pa.array([r["line"] for r in rows], pa.int64())})  # fmt: skip
    kept, removed = fc.local_winners(table, spec)
    best: dict = {}
    for r in rows:
        rank = (r["at"] is not None, r["at"] or 0, r["line"])
        key = (r["id"], r["qty"])
        best[key] = max(best.get(key, rank), rank)
    expected = sorted(line for (_, _, line) in best.values())
    without_nulls = table.filter(pc.is_valid(table.column("id")))
    assert fc.local_winners(without_nulls, spec)[1] == without_nulls.num_rows - len(
        {(r["id"], r["qty"]) for r in rows if r["id"] is not None})  # the join of repeated keys, without the full sort
    assert sorted(kept.column(fc.LINE).to_pylist()) == expected
    assert removed == len(rows) - len(expected) > 0
    assert fc.local_winners(table.slice(0, 1), spec) == (table.slice(0, 1), 0)


def test_row_counts_plus__adds_counts_and_keeps_a_key_range_only_where_both_have_it():
    a = tf.RowCounts({"1": {"parsed_rows": 5, "rejected_rows": 0}}, {}, {"1": {"id": ("b", "m"), "at": (1, 9)}})
    b = tf.RowCounts({"1": {"parsed_rows": 3, "rejected_rows": 2}, "2": {"parsed_rows": 1, "rejected_rows": 0}},
                     {"column qty": 2}, {"1": {"id": ("a", "k")}, "2": {"id": ("z", "z")}})  # fmt: skip
    total = a.plus(b)
    assert total.by_partition == {"1": {"parsed_rows": 8, "rejected_rows": 2},
                                  "2": {"parsed_rows": 1, "rejected_rows": 0}}  # fmt: skip
    assert total.reasons == {"column qty": 2}
    assert total.key_ranges == {"1": {"id": ("a", "m")}, "2": {"id": ("z", "z")}}
    assert total.valid_rows() == 7


def test_local_winners__a_ranking_that_disagrees_with_the_key_count_fails_the_task(monkeypatch):
    """The rows left out are found by sorting, their number by counting versions per key: a ranking that keeps a
    loser (here: the last one found) is caught in the task."""
    import etl.arrow_merge as am

    original = am.losing_rows
    monkeypatch.setattr(am, "losing_rows", lambda *a: original(*a).slice(1))
    table = pa.table({"id": ["a", "a", "a", "b"], "qty": pa.array([1, 1, 1, 1], pa.int32()),
                      fc.SOURCE_OBJECT: ["s3://r/a.csv"] * 4, fc.LINE: pa.array([2, 3, 4, 5], pa.int64())})
    with pytest.raises(RuntimeError, match=r"a block of s3://r/a.csv: 1 rows lost their key, but the key columns "
                                           r"count 2 older versions"):  # fmt: skip
        fc.local_winners(table, SPEC)
