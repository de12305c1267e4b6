"""Footers of Spark-written Parquet files: row counts, schema and key ranges, and the pruning decision on them."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from etl.footers import Footer, folder_footers, overlaps, read_footers, read_index, write_index
from etl.storage import LocalStorage
from etl.transforms import REASON, count_rows

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


def test_count_rows__key_ranges_per_partition_over_valid_rows_without_a_column_some_valid_key_leaves_null(
    spark, repo_root
):
    from etl.spec import load_dataset

    spec = load_dataset(repo_root / "datasets" / "orders")
    batch = spark.createDataFrame([("2026-11-24", "o-5", None), ("2026-11-24", "o-1", None),
                                   ("2026-11-24", "o-0", "column amount: not a decimal"),  # a reject: not a key
                                   ("2026-11-25", "o-9", None), ("2026-11-25", None, None),
                                   ("2026-11-26", "o-3", "column amount: not a decimal")],
                                  f"ingest_date string, order_id string, {REASON} string")  # fmt: skip
    counts = count_rows(batch, spec)
    assert counts.key_ranges == {"2026-11-24": {"order_id": ("o-1", "o-5")}, "2026-11-25": {}}
    assert counts.by_partition["2026-11-24"] == {"parsed_rows": 3, "rejected_rows": 1}


FOLDER = "s3://curated/orders/ingest_date=2026-11-24/run_id=r1"
INDEX = "s3://staging/footers/orders/ingest_date=2026-11-24/run_id=r1/footers.json"


def write_folder(spark, tmp_path, files: dict[str, list[tuple]]) -> tuple[LocalStorage, dict[str, str]]:
    """One Parquet file per name in the local folder behind FOLDER; returns the storage and {name: URI}."""
    storage = LocalStorage(tmp_path)
    folder = storage.local_path(FOLDER)
    folder.mkdir(parents=True)
    uris = {}
    for name, rows in files.items():
        written = Path(write_one_file(spark, tmp_path, name, rows, "id string, day date, amount double")[7:])
        (folder / f"{name}.parquet").write_bytes(written.read_bytes())
        uris[name] = f"{FOLDER}/{name}.parquet"
    return storage, uris


def test_footer_index__holds_what_the_footers_say_and_reads_back_equal(spark, tmp_path):
    storage, uris = write_folder(spark, tmp_path, {"a": [("o-1", date(2026, 1, 2), 1.0), ("o-4", None, 2.0)],
                                                   "b": [("o-7", date(2025, 3, 4), 3.0)]})  # fmt: skip
    footers = dict(zip(uris.values(), read_footers(spark, [storage.spark_path(u) for u in uris.values()],
                                                   ["id", "day"]), strict=True))  # fmt: skip
    write_index(storage, INDEX, FOLDER, footers, ["id", "day"])

    indexed = read_index(storage, INDEX, FOLDER + "/", ["id"])  # a trailing slash names the same folder
    assert indexed == {"a.parquet": Footer("a.parquet", 2, footers[uris["a"]].schema, {"id": ("o-1", "o-4")}),
                       "b.parquet": Footer("b.parquet", 1, footers[uris["b"]].schema, {"id": ("o-7", "o-7")})}
    assert read_index(storage, INDEX, FOLDER, ["id", "day"])["a.parquet"].ranges["day"] == (date(2026, 1, 2),) * 2
    # Not usable, so not used: another folder's index, or one without the min/max of a column asked for.
    assert read_index(storage, INDEX, FOLDER.replace("r1", "r2"), ["id"]) == {}
    assert read_index(storage, INDEX, FOLDER, ["id", "amount"]) == {}
    assert read_index(storage, INDEX.replace("r1", "none"), FOLDER, ["id"]) == {}
    for damaged in ("{not json", "[]", "\xff"):  # the footers are read instead
        storage.write_text(INDEX, damaged)
        assert read_index(storage, INDEX, FOLDER, ["id"]) == {}


def test_folder_footers__reads_the_files_the_index_lacks_and_fails_on_a_file_it_lists_that_is_gone(spark, tmp_path):
    storage, uris = write_folder(spark, tmp_path, {"a": [("o-1", None, 1.0)], "b": [("o-7", None, 3.0)]})
    only_a = {uris["a"]: read_footers(spark, [storage.spark_path(uris["a"])], ["id"])[0]}
    write_index(storage, INDEX, FOLDER, only_a, ["id"])
    footers = folder_footers(spark, storage, FOLDER, list(uris.values()), ["id"], INDEX)
    assert {uri: (f.path, f.rows, f.ranges) for uri, f in footers.items()} == {
        uris["a"]: (storage.spark_path(uris["a"]), 1, {"id": ("o-1", "o-1")}),
        uris["b"]: (storage.spark_path(uris["b"]), 1, {"id": ("o-7", "o-7")}),  # read from the file
    }
    with pytest.raises(RuntimeError, match=r"published snapshot s3://curated/.*run_id=r1: its footer index "
                                           r"s3://staging/.*footers.json lists \['a.parquet'\], which the folder "
                                           r"no longer holds; re-run the partition in full"):  # fmt: skip
        folder_footers(spark, storage, FOLDER, [uris["b"]], ["id"], INDEX)
