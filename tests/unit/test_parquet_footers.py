"""Footers of Spark-written Parquet files: row counts, schema and key ranges, and the pruning decision on them."""

from __future__ import annotations

from datetime import date

import pytest

from etl.footers import Footer, overlaps, read_footers
from etl.transforms import key_ranges

pytestmark = pytest.mark.spark


def write_one_file(spark, tmp_path, name: str, rows: list[tuple], schema: str) -> str:
    folder = tmp_path / name
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(folder))
    (path,) = folder.glob("*.parquet")
    return "file://" + str(path)


def test_read_footers__rows_schema_and_ranges_of_each_file(spark, tmp_path):
    schema = "id string, n int, day date, amount double"
    first = write_one_file(spark, tmp_path, "a", [("o-007", 5, date(2026, 1, 2), 1.0), ("o-010", -3, date(2025, 12, 31),
                                                  2.0), ("o-002", None, None, 3.0)], schema)  # fmt: skip
    second = write_one_file(spark, tmp_path, "b", [("ü-1", None, None, 4.0)], schema)

    a, b = read_footers(spark, [first, second], ["id", "n", "day", "amount"])

    assert (a.path, a.rows, b.rows) == (first, 3, 1)
    assert [f.name for f in a.schema.fields] == ["id", "n", "day", "amount"]
    # Nulls do not count in a range; a double column is not ranged (only types whose order is unambiguous).
    assert a.ranges == {"id": ("o-002", "o-010"), "n": (-3, 5), "day": (date(2025, 12, 31), date(2026, 1, 2))}
    # A column that holds only nulls has no range: it stays unknown, which never prunes.
    assert b.ranges == {"id": ("ü-1", "ü-1")}


def footer(rows: int, **ranges) -> Footer:
    return Footer("f", rows, None, ranges)


def test_overlaps__only_statistics_that_exclude_every_batch_key_prune():
    batch = {"id": ("o-100", "o-200")}
    assert overlaps(footer(10, id=("o-150", "o-300")), batch)
    assert overlaps(footer(10, id=("o-000", "o-100")), batch)  # the bounds are inclusive
    assert not overlaps(footer(10, id=("o-000", "o-099")), batch)
    assert not overlaps(footer(10, id=("o-201", "o-300")), batch)
    assert overlaps(footer(10), batch)  # no statistics: the file may hold any key
    assert not overlaps(footer(0), batch)  # no rows
    # Composite keys: the batch's keys lie in the box of its column ranges; outside the box in one column is enough.
    box = {"id": ("o-100", "o-200"), "day": (date(2026, 1, 1), date(2026, 1, 1))}
    assert not overlaps(footer(10, id=("o-150", "o-160"), day=(date(2026, 1, 2), date(2026, 1, 9))), box)
    assert overlaps(footer(10, id=("o-150", "o-160"), day=(date(2025, 1, 2), date(2026, 1, 9))), box)
    assert not overlaps(footer(10, id=("o-150", "o-160")), {"id": (None, None)})  # a batch without rows


def test_key_ranges__per_partition_and_without_a_column_some_batch_key_leaves_null(spark, repo_root):
    from etl.spec import load_dataset

    spec = load_dataset(repo_root / "datasets" / "orders")
    batch = spark.createDataFrame([("2026-11-24", "o-5"), ("2026-11-24", "o-1"), ("2026-11-25", "o-9"),
                                   ("2026-11-25", None)], "ingest_date string, order_id string")  # fmt: skip
    assert key_ranges(batch, spec) == {"2026-11-24": (2, {"order_id": ("o-1", "o-5")}), "2026-11-25": (2, {})}
