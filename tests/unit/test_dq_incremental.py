"""Incremental data quality (quality/evaluate.py): rules judged per file and merged, and a folder whose files are
partly copies of an earlier judged folder judged from the kept partials of the copies plus a scan of the rest.
The reference in every test is the whole folder evaluated in one aggregation."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from quality.dqdl import parse_dqdl
from quality.evaluate import Carried, FolderStats, evaluate
from quality.job import read_stats, stats_uri, write_stats

pytestmark = pytest.mark.spark

SCHEMA = "id string, country string, amount decimal(12,2), qty int"
RULES = parse_dqdl(
    """Rules = [
    RowCount > 0,
    IsComplete "country",
    Completeness "country" >= 0.5,
    IsUnique "id",
    Uniqueness "id" > 0.5,
    ColumnValues "qty" between 1 and 5,
    ColumnValues "country" in ["DE", "FR"],
    ColumnLength "country" = 2,
    Mean "amount" between 1 and 50,
    Sum "qty" > 3,
    StandardDeviation "amount" < 100,
    CustomSql "select count(*) from primary where qty > 4" = 0
]""",
    "t.dqdl",
)
FILE_A = [("o1", "DE", Decimal("10.50"), 1), ("o2", "FR", Decimal("20.25"), 2)]
FILE_B = [("o3", None, Decimal("30.00"), 3), ("o4", "GBR", Decimal("40.10"), 4)]
FILE_C = [("o5", "DE", Decimal("1.15"), 5)]


def write_files(spark, folder: Path, *files: list) -> list[str]:
    """Each list of rows as one Parquet file in `folder`; returns the paths."""
    for index, rows in enumerate(files):
        spark.createDataFrame(rows, SCHEMA).coalesce(1).write.parquet(str(folder / f"w{index}"))
    paths = []
    for part in sorted(folder.glob("w*/*.parquet")):
        shutil.move(part, folder / part.name)
        paths.append(str(folder / part.name))
    for part in folder.glob("w*"):
        shutil.rmtree(part)
    return paths


def outcomes(report) -> list[tuple]:
    return [(r.rule, r.outcome, json.dumps(r.metrics, sort_keys=True), r.reason) for r in report.results]


def assert_same(report, reference) -> None:
    assert (report.outcome, report.row_count) == (reference.outcome, reference.row_count)
    for got, expected in zip(report.results, reference.results, strict=True):
        assert (got.rule, got.outcome) == (expected.rule, expected.outcome)
        assert got.metrics == pytest.approx(expected.metrics)


@pytest.fixture()
def judged(spark, tmp_path):
    """An earlier folder of three files, evaluated per file: (its paths, its report)."""
    paths = write_files(spark, tmp_path / "judged", FILE_A, FILE_B, FILE_C)
    whole = spark.read.parquet(*paths)
    return paths, evaluate(whole, RULES, spark, fresh=whole)


def test_evaluate__per_file_partials_merge_to_the_one_aggregation_result(spark, judged):
    paths, report = judged
    reference = evaluate(spark.read.parquet(*paths), RULES, spark)
    assert_same(report, reference)
    assert report.outcome == "Failed"  # IsComplete, ColumnValues in, ColumnLength, CustomSql, StandardDeviation ok
    assert sorted(report.stats.files) == sorted(Path(p).name for p in paths)
    assert reference.stats.files == {}  # one aggregation: nothing to keep per file


def test_evaluate__carried_files_are_judged_from_their_kept_partials(spark, judged, tmp_path):
    paths, earlier = judged
    folder = tmp_path / "candidate"
    folder.mkdir()
    copies = [str(shutil.copy(p, folder / Path(p).name)) for p in paths[:2]]  # A and B carried, C dropped
    (new,) = write_files(spark, tmp_path / "new", [("o6", "FR", Decimal("7.00"), 2)])
    fresh_path = str(shutil.copy(new, folder / Path(new).name))
    whole = spark.read.parquet(str(folder))
    carried = Carried(spark.read.parquet(*copies), tuple(Path(c).name for c in copies), earlier.stats)

    report = evaluate(whole, RULES, spark, fresh=spark.read.parquet(fresh_path), carried=carried)

    assert_same(report, evaluate(whole, RULES, spark))
    assert report.row_count == 5
    assert sorted(report.stats.files) == sorted(Path(p).name for p in [*copies, fresh_path])
    # The copies are not scanned: what was kept of them is what counts.
    name = Path(copies[0]).name
    doctored = json.loads(json.dumps(earlier.stats.to_json()))
    doctored["files"][name]["__rows"]["__rows"] = 100
    tampered = Carried(carried.rows, carried.names, FolderStats.from_json(doctored))
    assert evaluate(whole, RULES, spark, fresh=spark.read.parquet(fresh_path), carried=tampered).row_count == 103


def test_evaluate__uniqueness_onto_a_unique_folder_finds_a_fresh_key_that_collides(spark, tmp_path):
    unique_rules = parse_dqdl('Rules = [ IsUnique "id", Uniqueness "id" > 0.1 ]', "t.dqdl")
    paths = write_files(spark, tmp_path / "judged", FILE_A, FILE_C)
    earlier = evaluate(spark.read.parquet(*paths), unique_rules, spark, fresh=spark.read.parquet(*paths))
    assert earlier.stats.non_unique == {'IsUnique "id"': 0, 'Uniqueness "id" > 0.1': 0}
    fresh_rows = [("o2", "FR", Decimal("1.00"), 1), ("o7", None, Decimal("1.00"), 1), ("o7", "DE", None, 1),
                  (None, "DE", None, 1), ("o8", "DE", None, 1)]  # fmt: skip
    (new,) = write_files(spark, tmp_path / "new", fresh_rows)
    whole = spark.read.parquet(*paths, new)
    carried = Carried(spark.read.parquet(*paths), tuple(Path(p).name for p in paths), earlier.stats)

    report = evaluate(whole, unique_rules, spark, fresh=spark.read.parquet(new), carried=carried)

    reference = evaluate(whole, unique_rules, spark)
    assert_same(report, reference)
    # o1 and o5 (carried) and o8 (fresh) are unique; o2 twice, o7 twice and the null are not: 3 of 8 rows.
    assert report.results[0].metrics == {"Column.id.Uniqueness": pytest.approx(3 / 8)}
    assert report.results[0].reason == (
        'Uniqueness of "id" is 0.375, expected 1.0 (5 of 8 rows have a duplicated or null value)'
    )
    assert report.stats.non_unique == {'IsUnique "id"': 5, 'Uniqueness "id" > 0.1': 5}


def test_evaluate__a_bad_rule_keeps_no_partials_and_fails_alone(spark, judged):
    paths, _ = judged
    rules = parse_dqdl('Rules = [ ColumnValues "id" matches "(unclosed", RowCount = 5 ]', "t.dqdl")
    whole = spark.read.parquet(*paths)
    report = evaluate(whole, rules, spark, fresh=whole)
    assert [r.outcome for r in report.results] == ["Failed", "Passed"]
    assert report.results[0].reason.startswith("could not evaluate")
    name = Path(paths[0]).name
    assert set(report.stats.files[name]) == {"__rows", "RowCount = 5"}
    assert not report.stats.covers(name, [r.text for r in rules])


def test_read_stats__only_the_stats_of_that_folder_and_version(tmp_path, judged):
    from etl.storage import LocalStorage

    _, earlier = judged
    storage = LocalStorage(tmp_path)
    folder = "s3://curated/orders/ingest_date=2026-11-24/run_id=r1"
    write_stats(storage, "s3://staging", "orders", "ingest_date=2026-11-24", folder, earlier.stats)
    assert read_stats(storage, "s3://staging", "orders", "ingest_date=2026-11-24", folder) == earlier.stats
    uri = stats_uri("s3://staging", "orders", "ingest_date=2026-11-24", folder)
    path = storage.local_path(uri)
    document = json.loads(path.read_text())
    sums = sorted(f['Mean "amount" between 1 and 50']["sum"]["decimal"] for f in document["files"].values())
    assert sums == ["1.15", "30.75", "70.10"]  # exact decimal sums of the three files, not floats
    other = folder.replace("r1", "r2")
    path.write_text(json.dumps({**document, "folder": other}))
    assert read_stats(storage, "s3://staging", "orders", "ingest_date=2026-11-24", folder) is None
    path.write_text(json.dumps({**document, "version": 0}))
    assert read_stats(storage, "s3://staging", "orders", "ingest_date=2026-11-24", folder) is None
    path.write_text("{not json")
    assert read_stats(storage, "s3://staging", "orders", "ingest_date=2026-11-24", folder) is None
