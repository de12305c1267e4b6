"""Tests of quality.job.run/main on a fake lake in tmp_path (LocalStorage) with tiny candidate Parquet."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from etl.storage import LocalStorage
from quality.dqdl import DqdlSyntaxError
from quality.job import DqJobError, main, run

pytestmark = pytest.mark.spark

SCHEMA = (
    "order_id string, customer_id string, status string, currency string, amount decimal(12,2), "
    "quantity int, country string, run_id string"
)
GOOD = [
    ("o1", "c1", "placed", "EUR", Decimal("12.50"), 1, "DE", "run-1"),
    ("o2", "c2", "refunded", "USD", Decimal("-0.01"), 2, "US", "run-1"),
]
NULL_COUNTRY = [*GOOD[:1], ("o2", "c2", "paid", "USD", Decimal("5.00"), 2, None, "run-1")]
DAY2 = [("o3", "c3", "paid", "GBP", Decimal("30.00"), 3, "FR", "run-1")]
BAD = [  # status not allowed, country of length 3 (and it is 1 of 2 non-null countries)
    ("o1", "c1", "lost", "EUR", Decimal("12.50"), 1, "DEU", "run-1"),
    ("o2", "c2", "paid", "USD", Decimal("20.00"), 2, "FR", "run-1"),
]
P1, P2 = "ingest_date=2026-11-24", "ingest_date=2026-11-25"


def make_lake(tmp_path: Path, repo_root: Path, spark, partitions: dict[str, list], run_id: str = "run-1"):
    shutil.copytree(repo_root / "datasets" / "orders", tmp_path / "artifacts" / "datasets" / "orders")
    for partition, rows in partitions.items():
        folder = tmp_path / "curated-bucket" / "orders" / partition / f"run_id={run_id}"
        spark.createDataFrame(rows, SCHEMA).coalesce(1).write.mode("overwrite").parquet(str(folder))
    return LocalStorage(tmp_path)


def job_args(partitions: str = P1, run_id: str = "run-1") -> dict[str, str]:
    return {
        "dataset": "orders",
        "partitions": partitions,
        "run_id": run_id,
        "curated_uri": "s3://curated-bucket",
        "staging_uri": "s3://staging-bucket",
        "datasets_uri": "s3://artifacts/datasets",
    }


def written_result(tmp_path: Path, run_id: str = "run-1") -> dict:
    return json.loads(
        (tmp_path / "staging-bucket" / "runs" / "orders" / run_id / "dq_result.json").read_text()
    )


def test_run__passing_data_over_two_partitions_writes_passed(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: GOOD, P2: DAY2})
    etl_metrics = {"input_rows": 4, "output_rows": 3, "rejected_rows": 1, "duplicates_removed": 0}
    metrics_file = tmp_path / "staging-bucket" / "runs" / "orders" / "run-1" / "etl_metrics.json"
    metrics_file.parent.mkdir(parents=True)
    metrics_file.write_text(json.dumps(etl_metrics))

    document = run(job_args(f"{P1},{P2}"), storage, spark)

    assert written_result(tmp_path) == document
    assert (document["dataset"], document["run_id"], document["partitions"]) == ("orders", "run-1", [P1, P2])
    assert (document["outcome"], document["rules_passed"], document["rules_failed"]) == ("Passed", 24, 0)
    assert (document["partitions_passed"], document["partitions_failed"]) == ([P1, P2], [])
    assert (document["passed_count"], document["failed_count"]) == (2, 0)
    assert document["row_count"] == 3
    assert document["etl"] == etl_metrics
    means = {r["partition"]: r["metrics"] for r in document["rules"] if r["rule"] == 'Mean "amount" between 1 and 5000'}
    assert means == {P1: {"Column.amount.Mean": pytest.approx(6.245)}, P2: {"Column.amount.Mean": 30.0}}
    lineage = tmp_path / "staging-bucket" / "lineage" / "orders" / "run-1"
    assert sorted(p.name for p in lineage.iterdir()) == [
        "orders-dq-1-START.json",
        "orders-dq-2-COMPLETE.json",
    ]
    complete = json.loads((lineage / "orders-dq-2-COMPLETE.json").read_text())
    assertions = complete["inputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert len(assertions) == 12
    assert len(complete["inputs"]) == 2


def test_run__one_failing_partition_does_not_fail_the_other(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: BAD, P2: DAY2})
    document = run(job_args(f"{P1},{P2}"), storage, spark)
    assert document["outcome"] == "Failed"
    assert (document["partitions_passed"], document["partitions_failed"]) == ([P2], [P1])
    assert (document["passed_count"], document["failed_count"]) == (1, 1)
    assert document["by_partition"][P1]["outcome"] == "Failed"
    assert document["by_partition"][P2] == {"outcome": "Passed", "rules_passed": 12, "rules_failed": 0, "row_count": 1,
                                            "files": 1, "files_from_stats": 0}
    assert {r["partition"] for r in document["rules"] if r["outcome"] == "Failed"} == {P1}


def test_run__completeness_below_threshold_is_reported(tmp_path, repo_root, spark):
    # 1 of 2 countries is null -> Completeness 0.5 < 0.9
    storage = make_lake(tmp_path, repo_root, spark, {P1: NULL_COUNTRY})
    document = run(job_args(), storage, spark)
    assert document["outcome"] == "Failed"
    failed = [r for r in document["rules"] if r["outcome"] == "Failed"]
    assert [r["rule"] for r in failed] == ['Completeness "country" >= 0.9']
    assert failed[0]["metrics"] == {"Column.country.Completeness": 0.5}
    assert failed[0]["reason"] == 'Completeness of "country" is 0.5, expected >= 0.9'
    assert document["etl"] is None


def test_run__failing_data_writes_failed_with_failed_rules(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: BAD})
    document = run(job_args(), storage, spark)
    assert written_result(tmp_path)["outcome"] == "Failed"
    assert (document["rules_passed"], document["rules_failed"], document["row_count"]) == (10, 2, 2)
    failed = [r for r in document["rules"] if r["outcome"] == "Failed"]
    assert [r["rule"] for r in failed] == [
        'ColumnValues "status" in ["placed", "paid", "shipped", "delivered", "cancelled", "refunded"]',
        'ColumnLength "country" = 2',
    ]
    assert failed[0]["metrics"] == {"Column.status.ColumnValues.Compliance": 0.5}
    assert '"status"' in failed[0]["reason"]
    assert '1 of 2 non-null values of "country"' in failed[1]["reason"]


def test_run__missing_candidate_data_names_the_path(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: GOOD})
    with pytest.raises(DqJobError, match=r"s3://curated-bucket/orders/ingest_date=2026-11-25/run_id=run-1"):
        run(job_args(f"{P1},{P2}"), storage, spark)
    assert not (tmp_path / "staging-bucket" / "runs" / "orders" / "run-1" / "dq_result.json").exists()
    lineage = tmp_path / "staging-bucket" / "lineage" / "orders" / "run-1"
    assert sorted(p.name for p in lineage.iterdir()) == ["orders-dq-1-START.json", "orders-dq-2-FAIL.json"]


def test_run__rules_syntax_error_names_file_line_column(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: GOOD})
    rules = tmp_path / "artifacts" / "datasets" / "orders" / "rules.dqdl"
    rules.write_text('Rules = [\n    RowCount > 0,\n    IsComplet "order_id"\n]\n')
    with pytest.raises(DqdlSyntaxError) as info:
        run(job_args(), storage, spark)
    assert str(info.value).startswith(
        "s3://artifacts/datasets/orders/rules.dqdl:3:5: unknown rule type 'IsComplet'"
    )


def test_main__exits_zero_on_failed_rules_and_nonzero_on_missing_data(tmp_path, repo_root, spark, capsys):
    make_lake(tmp_path, repo_root, spark, {P1: BAD})
    argv = [f"--{k}={v}" for k, v in job_args().items()] + ["--lake_root", str(tmp_path)]
    assert main(argv) == 0
    assert "data quality Failed (10 passed, 2 failed, 2 rows)" in capsys.readouterr().out
    missing = [f"--{k}={v}" for k, v in job_args(run_id="run-2").items()] + ["--lake_root", str(tmp_path)]
    with pytest.raises(SystemExit) as info:
        main(missing)
    assert "no candidate data" in str(info.value.code)
    assert "run_id=run-2" in str(info.value.code)


def written_summary(tmp_path: Path, run_id: str = "run-1") -> dict:
    return json.loads((tmp_path / "staging-bucket" / "runs" / "orders" / run_id / "dq_summary.json").read_text())


def test_run__writes_the_compact_summary_the_state_machine_reads(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: BAD, P2: DAY2})
    quarantined = [{"object": f"s3://raw/orders/{P1}/bad-{n}.csv.gz", "partition": P1, "reason": "corrupt gzip"}
                   for n in range(15)]  # fmt: skip
    metrics = {"input_rows": 5, "output_rows": 3, "rejected_rows": 1, "duplicates_removed": 1,
               "ingested_at": "2026-11-24T10:00:00+00:00", "quarantined_objects": quarantined}  # fmt: skip
    metrics_file = tmp_path / "staging-bucket" / "runs" / "orders" / "run-1" / "etl_metrics.json"
    metrics_file.parent.mkdir(parents=True)
    metrics_file.write_text(json.dumps(metrics))

    run(job_args(f"{P1},{P2}"), storage, spark)
    summary = written_summary(tmp_path)

    assert {k: summary[k] for k in ("outcome", "partitions_passed", "partitions_failed", "passed_count",
                                    "failed_count", "rules_passed", "rules_failed")} == {
        "outcome": "Failed", "partitions_passed": [P2], "partitions_failed": [P1], "passed_count": 1,
        "failed_count": 1, "rules_passed": 22, "rules_failed": 2}  # fmt: skip
    reason = '1 of 2 non-null values of "country" have a length not = 2 (lengths 2 to 3)'
    assert summary["failed_rules"][1] == f'{P1}: ColumnLength "country" = 2: {reason}'
    assert summary["etl"] == {
        "input_rows": 5, "output_rows": 3, "rejected_rows": 1, "duplicates_removed": 1,
        "ingested_at": "2026-11-24T10:00:00+00:00", "quarantined_count": 15,
        "quarantined": [f"s3://raw/orders/{P1}/bad-{n}.csv.gz: corrupt gzip" for n in range(10)]}  # fmt: skip
    assert summary["details"] == "s3://staging-bucket/runs/orders/run-1/dq_result.json"
    assert "rules" not in summary and "by_partition" not in summary


def test_compact_summary__size_does_not_grow_with_rules_and_clips_long_text():
    from quality.job import compact_summary

    def document(partitions: int, reason: str) -> dict:
        names = [f"ingest_date=2026-01-{n:03d}" for n in range(partitions)]
        return {"dataset": "orders", "run_id": "r", "outcome": "Failed", "partitions_passed": [],
                "partitions_failed": names, "passed_count": 0, "failed_count": partitions, "rules_passed": 0,
                "rules_failed": 12 * partitions, "row_count": 0, "etl": None,
                "rules": [{"partition": p, "rule": f"rule {n}", "outcome": "Failed", "reason": reason}
                          for p in names for n in range(12)]}  # fmt: skip

    small = json.dumps(compact_summary(document(1, "x" * 5000), "s3://d"))
    large = json.dumps(compact_summary(document(200, "x" * 5000), "s3://d"))
    assert len(large) - len(small) < 200 * 40  # only the partition names grow
    assert len(large) < 16 * 1024
    assert all(len(rule) <= 300 for rule in json.loads(large)["failed_rules"])
    assert json.loads(small)["etl"]["quarantined_count"] == 0


def merged_batch(tmp_path: Path, spark, rows: list) -> Path:
    """Run run-2 of P1 as the ETL leaves a batch merged onto run-1's folder: run-1's file copied (same name) and a
    new file, and etl_metrics naming the folder it merged onto."""
    published = tmp_path / "curated-bucket" / "orders" / P1 / "run_id=run-1"
    folder = published.parent / "run_id=run-2"
    spark.createDataFrame(rows, SCHEMA).coalesce(1).write.parquet(str(folder))
    (copied,) = published.glob("*.parquet")
    shutil.copy(copied, folder / copied.name)
    metrics = tmp_path / "staging-bucket" / "runs" / "orders" / "run-2" / "etl_metrics.json"
    metrics.parent.mkdir(parents=True)
    location = f"s3://curated-bucket/orders/{P1}/run_id=run-1/"
    metrics.write_text(json.dumps({"per_partition": {P1: {"merged_onto": location}}}))
    return tmp_path / "staging-bucket" / "dq_stats" / "orders" / P1 / "run_id=run-1" / "stats.json"


def verdicts(document: dict) -> list:
    return [(r["rule"], r["outcome"], r["metrics"]) for r in document["rules"]] + [document["row_count"]]


def test_run__a_batch_merged_onto_a_judged_folder_judges_the_copies_from_kept_stats(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: GOOD})
    run(job_args(), storage, spark)
    kept = merged_batch(tmp_path, spark, [("o1", "c9", "paid", "EUR", Decimal("7.00"), 1, "FR", "run-2")])

    document = run(job_args(run_id="run-2"), storage, spark)

    # o1 is in the copy and in the new file: IsUnique finds it without grouping the copied rows again.
    failed = [r for r in document["rules"] if r["outcome"] == "Failed"]
    assert [r["rule"] for r in failed] == ['IsUnique "order_id"']
    assert failed[0]["reason"].endswith("(2 of 3 rows have a duplicated or null value)")
    assert document["row_count"] == 3
    assert (document["by_partition"][P1]["files"], document["by_partition"][P1]["files_from_stats"]) == (2, 1)
    assert (tmp_path / "staging-bucket" / "dq_stats" / "orders" / P1 / "run_id=run-2" / "stats.json").exists()
    # Judged from what was kept of the copy, not from its rows: a doctored row count shows through.
    stats = json.loads(kept.read_text())
    (name,) = stats["files"]
    stats["files"][name]["__rows"]["__rows"] = 40
    kept.write_text(json.dumps(stats))
    assert run(job_args(run_id="run-2"), storage, spark)["row_count"] == 41


def test_run__damaged_or_missing_kept_stats_judge_every_row(tmp_path, repo_root, spark):
    storage = make_lake(tmp_path, repo_root, spark, {P1: GOOD})
    run(job_args(), storage, spark)
    kept = merged_batch(tmp_path, spark, [("o3", "c3", "paid", "GBP", Decimal("30.00"), 3, "FR", "run-2")])
    incremental = run(job_args(run_id="run-2"), storage, spark)
    assert incremental["outcome"] == "Passed"

    assert incremental["by_partition"][P1]["files_from_stats"] == 1
    kept.write_text("{damaged")
    damaged = run(job_args(run_id="run-2"), storage, spark)
    assert verdicts(damaged) == verdicts(incremental)
    assert damaged["by_partition"][P1]["files_from_stats"] == 0  # every file scanned
    kept.unlink()
    assert verdicts(run(job_args(run_id="run-2"), storage, spark)) == verdicts(incremental)
