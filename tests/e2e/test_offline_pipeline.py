"""The whole pipeline offline with the real jobs: Spark ETL and DQ in Glue-style subprocesses, the real
crawler, the synthesized state machine. One local cloud for the module; each test uses its own days."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import pytest

from etl.storage import read_json
from lake.local.runtime import LocalPipeline, synthesize
from lake.query import query_local

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
pytestmark = pytest.mark.e2e

HEADER = "order_id,customer_id,order_ts,status,currency,amount,quantity,country,updated_at\n"


def _csv(*rows: str) -> bytes:
    return (HEADER + "".join(r + "\n" for r in rows)).encode()


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    with LocalPipeline(root / "lake", synthesize("local", root / "cdk.out")) as running:
        yield running


def _curated(pipeline, where: str) -> list[tuple]:
    sql = f"select order_id, customer_id, status, currency, cast(amount as varchar), quantity, ingest_date, " \
          f"lake_source_object from orders where {where} order by order_id"  # fmt: skip
    return query_local(sql, glue=pipeline.cloud.client("glue"), storage=pipeline.storage,
                       database="lake_local_curated").rows  # fmt: skip


def _dq_report(pipeline, run_id: str) -> dict:
    uri = f"s3://{pipeline.bucket('StorageStaging')}/runs/orders/{run_id}/dq_result.json"
    return read_json(pipeline.storage, uri)


def test_happy_path__curated_rows_match_expected(pipeline):
    day = "ingest_date=2026-10-01"
    key = pipeline.put_raw("orders", day, "a.csv", _csv(
        "o-1,c-1,2026-10-01 08:00:00,placed,EUR,10.00,1,DE,2026-10-01 08:00:00",
        "o-1,c-1,2026-10-01 08:00:00,paid,EUR,10.00,1,DE,2026-10-01 09:00:00",  # later version wins
        "o-2,c-2,2026-10-01 08:30:00,paid,USD,25.50,2,US,2026-10-01 08:30:00",
        "o-3,c-3,2026-10-01 09:00:00,paid,EUR,not-a-number,1,FR,2026-10-01 09:00:00",  # rejected
        "o-4,c-4,2026-10-01 09:30:00,shipped,GBP,99.99,3,GB,2026-10-01 09:30:00",
    ))  # fmt: skip
    pipeline.put_raw("orders", day, "b.csv", _csv("o-5,c-5,2026-10-01 10:00:00,paid,EUR,5.00,1,NL,2026-10-01 10:00:00"))
    (result,) = pipeline.drain(timeout=600)
    assert result.status == "SUCCEEDED", (result.failed_state, result.cause)
    source = f"s3://{pipeline.bucket('StorageRaw')}/{key}"
    assert _curated(pipeline, "ingest_date = '2026-10-01'") == [
        ("o-1", "c-1", "paid", "EUR", "10.00", 1, "2026-10-01", source),
        ("o-2", "c-2", "paid", "USD", "25.50", 2, "2026-10-01", source),
        ("o-4", "c-4", "shipped", "GBP", "99.99", 3, "2026-10-01", source),
        ("o-5", "c-5", "paid", "EUR", "5.00", 1, "2026-10-01", source.replace("a.csv", "b.csv")),
    ]
    report = _dq_report(pipeline, result.name)
    assert report["outcome"] == "Passed"
    assert {k: report["etl"][k] for k in ("input_rows", "output_rows", "rejected_rows", "duplicates_removed")} == {
        "input_rows": 6, "output_rows": 4, "rejected_rows": 1, "duplicates_removed": 1}  # fmt: skip
    rejects_folder = pipeline.storage.local_path(
        f"s3://{pipeline.bucket('StorageStaging')}/rejects/orders/{day}/run_id={result.name}/"
    )
    rejects = [json.loads(line) for f in rejects_folder.glob("*.json") for line in f.read_text().splitlines()]
    assert [(r["source_object"], r["reason"]) for r in rejects] == [
        (source, "column amount: 'not-a-number' is not decimal(12,2)")
    ]
    etl_runs = pipeline.cloud.client("glue").get_job_runs(JobName=pipeline.job_name("JobsEtlJob"))["JobRuns"]
    assert sum(result.name == r["Arguments"]["--run_id"] for r in etl_runs) == 1  # two events, one ETL run
    lineage = pipeline.storage.list_keys(f"s3://{pipeline.bucket('StorageStaging')}/lineage/orders/{result.name}/")
    assert any(k.endswith("COMPLETE.json") for k in lineage)


def _bad_day_rows(prefix: str) -> bytes:
    rows = [f"{prefix}-{n},c-{n},2026-10-05 08:00:00,paid,XXX,-50.00,1,DE,2026-10-05 08:00:00" for n in range(10)]
    return _csv(*rows)


def _good_day_rows(prefix: str) -> bytes:
    rows = [f"{prefix}-{n},c-{n},2026-10-05 08:00:00,paid,EUR,50.00,1,DE,2026-10-05 08:00:00" for n in range(10)]
    return _csv(*rows)


def test_data_quality_failure__quarantined_alerted_then_rerun_replaces(pipeline):
    from lake.ops import rerun

    day, good_day = "ingest_date=2026-10-05", "ingest_date=2026-10-06"
    pipeline.put_raw("orders", day, "day.csv", _bad_day_rows("bad"))
    pipeline.put_raw("orders", good_day, "day.csv", _good_day_rows("next"))
    (failed,) = pipeline.drain(timeout=600)
    assert (failed.status, failed.error) == ("FAILED", "DataQualityFailed")
    assert [r[0] for r in _curated(pipeline, "ingest_date = '2026-10-06'")] == [f"next-{n}" for n in range(10)]
    report = _dq_report(pipeline, failed.name)
    assert (report["partitions_passed"], report["partitions_failed"]) == ([good_day], [day])
    failed_rules = [r["rule"] for r in report["rules"] if r["outcome"] == "Failed"]
    assert 'ColumnValues "currency" in ["EUR", "USD", "GBP"]' in failed_rules
    assert _curated(pipeline, "ingest_date = '2026-10-05'") == []  # quarantined: not visible
    quarantined = pipeline.storage.local_path(
        f"s3://{pipeline.bucket('StorageCurated')}/orders/{day}/run_id={failed.name}/"
    )
    assert list(quarantined.glob("*.parquet"))
    assert any("failed data quality" in m["message"] and day in m["message"] for m in pipeline.outbox())

    raw_file = pipeline.storage.local_path(f"s3://{pipeline.bucket('StorageRaw')}/orders/{day}/day.csv")
    raw_file.write_bytes(_good_day_rows("good"))  # the source fixed in place
    sfn = pipeline.cloud.client("stepfunctions")
    for attempt in ("first", "second"):
        arn = rerun(sfn, pipeline.state_machine_arn, dataset="orders", partitions=[day], known_datasets=["orders"])
        result = pipeline.wait(arn, timeout=600)
        assert result.status == "SUCCEEDED", (attempt, result.failed_state)
    rows = _curated(pipeline, "ingest_date = '2026-10-05'")
    assert [r[0] for r in rows] == [f"good-{n}" for n in range(10)]  # replaced, not duplicated


def test_object_outside_partition_folders__reported_and_the_rest_published(pipeline):
    """Regression (issue 10, defect 2): `orders/loose.csv` was given the event day's partition, and the real
    ETL, which lists only partition folders, failed the run with FileNotFoundError."""
    day = "ingest_date=2026-10-09"
    pipeline.put_raw("orders", None, "loose.csv", _good_day_rows("loose"))
    pipeline.put_raw("orders", day, "a.csv", _good_day_rows("kept"))
    (result,) = pipeline.drain(timeout=600)
    assert result.status == "SUCCEEDED", (result.failed_state, result.cause)
    assert [r[0] for r in _curated(pipeline, "ingest_date = '2026-10-09'")] == [f"kept-{n}" for n in range(10)]
    assert _curated(pipeline, "order_id like 'loose-%'") == []
    notice = [m["message"] for m in pipeline.outbox() if "outside partition folders" in m["subject"]]
    assert any('["orders/loose.csv"]' in m for m in notice)
    raw = pipeline.storage.local_path(f"s3://{pipeline.bucket('StorageRaw')}/orders/loose.csv")
    assert raw.exists()  # nothing is deleted: the object waits to be moved into a partition folder


def test_mixed_batch_of_odd_objects__bad_ones_quarantined_the_rest_published(pipeline):
    """Issue 12: a truncated .csv.gz, a Windows-1252 file, a zero-byte file, a header-only file, reordered and
    extra columns, a truncated last line and a stray .json beside a good file, in one batch. The real crawler
    leaves the unclassifiable objects out (the crawl succeeds), the real ETL quarantines the unreadable ones
    with reasons, and everything readable is published."""
    import gzip

    day = "ingest_date=2026-10-12"
    row = "{id},c-{id},2026-10-12 08:00:00,paid,EUR,10.00,1,DE,2026-10-12 08:00:00"
    reordered = "customer_id,order_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
    reordered += "c-r,m-r,2026-10-12 08:00:00,paid,EUR,10.00,1,DE,2026-10-12 08:00:00\n"
    objects = {
        "good.csv": _csv(row.format(id="m-1"), row.format(id="m-2")),
        "corrupt.csv.gz": gzip.compress(_csv(row.format(id="m-gz")))[:-10],
        "cp1252.csv": _csv(row.format(id="m-cp").replace("DE", "M\xe9xico")).decode().encode("cp1252"),
        "zero.csv": b"",
        "header_only.csv": HEADER.encode(),
        "reordered.csv": reordered.encode(),
        "extra.csv": (HEADER.rstrip("\n") + ",coupon\n" + row.format(id="m-x") + ",X\n").encode(),
        "truncated.csv": _csv(row.format(id="m-t")) + b"m-cut,c-cut,2026-10-12 0",
        "stray.json": b'{"order_id": "m-json"}\n',
    }
    for name, data in objects.items():
        pipeline.put_raw("orders", day, name, data)
    (result,) = pipeline.drain(timeout=600)
    assert result.status == "SUCCEEDED", (result.failed_state, result.cause)

    assert [r[0] for r in _curated(pipeline, "ingest_date = '2026-10-12'")] == ["m-1", "m-2", "m-r", "m-t", "m-x"]
    report = _dq_report(pipeline, result.name)
    assert {k: report["etl"][k] for k in ("input_rows", "output_rows", "rejected_rows", "duplicates_removed")} == {
        "input_rows": 6, "output_rows": 5, "rejected_rows": 1, "duplicates_removed": 0}  # fmt: skip
    prefix = f"s3://{pipeline.bucket('StorageRaw')}/orders/{day}/"
    reasons = {q["object"].removeprefix(prefix): q["reason"] for q in report["etl"]["quarantined_objects"]}
    assert sorted(reasons) == ["corrupt.csv.gz", "cp1252.csv", "stray.json"]
    assert reasons["corrupt.csv.gz"].startswith("truncated gzip stream")
    assert reasons["cp1252.csv"].startswith("not valid UTF-8: byte 0xe9 on line 2")
    assert reasons["stray.json"] == "JSON content, but the dataset's format is csv"
    [message] = [m["message"] for m in pipeline.outbox() if f"Execution: {result.name} " in m["message"]]
    assert "Quarantined objects (unreadable, not processed): 3 " in message
    assert f"{prefix}corrupt.csv.gz: truncated gzip stream" in message
    rejects_folder = pipeline.storage.local_path(
        f"s3://{pipeline.bucket('StorageStaging')}/rejects/orders/{day}/run_id={result.name}/"
    )
    rejects = [json.loads(line) for f in rejects_folder.glob("*.json") for line in f.read_text().splitlines()]
    assert [(r["source_object"], r["raw_record"], r["reason"]) for r in rejects] == [
        (f"{prefix}truncated.csv", "m-cut,c-cut,2026-10-12 0", "malformed CSV row: expected 9 fields, got 3")
    ]


def _etl_metrics(pipeline, run_id: str) -> dict:
    return read_json(pipeline.storage, f"s3://{pipeline.bucket('StorageStaging')}/runs/orders/{run_id}/etl_metrics.json")


def test_incremental_batches__update_duplicate_file_bad_batch_then_rerun(pipeline):
    """Issue 11: each execution reads only its batch and merges onto the published partition; a batch that fails
    data quality leaves the earlier published rows visible; a re-run after the fix publishes what a full
    reprocessing of every object of the partition gives."""
    from lake.ops import rerun

    day = "ingest_date=2026-10-21"
    first = _csv("o-1,c-1,2026-10-21 08:00:00,placed,EUR,10.00,1,DE,2026-10-21 08:00:00",
                 "o-2,c-2,2026-10-21 08:10:00,paid,USD,20.00,2,US,2026-10-21 08:10:00")  # fmt: skip
    pipeline.put_raw("orders", day, "batch-1.csv", first)
    (one,) = pipeline.drain(timeout=600)
    assert one.status == "SUCCEEDED", (one.failed_state, one.cause)
    assert [(r[0], r[2]) for r in _curated(pipeline, f"ingest_date = '{day[12:]}'")] == [("o-1", "placed"),
                                                                                          ("o-2", "paid")]

    pipeline.put_raw("orders", day, "batch-2.csv", _csv(
        "o-1,c-1,2026-10-21 08:00:00,paid,EUR,10.00,1,DE,2026-10-21 09:00:00",  # a newer version of o-1
        "o-3,c-3,2026-10-21 09:30:00,paid,GBP,30.00,3,GB,2026-10-21 09:30:00"))  # fmt: skip
    pipeline.put_raw("orders", day, "batch-1-again.csv", first)  # the same file delivered twice
    (two,) = pipeline.drain(timeout=600)
    assert two.status == "SUCCEEDED", (two.failed_state, two.cause)
    metrics = _etl_metrics(pipeline, two.name)
    assert (metrics["mode"], metrics["source_objects"], metrics["input_rows"]) == ("incremental", 2, 4)
    assert (metrics["carried_rows"], metrics["output_rows"], metrics["duplicates_removed"]) == (2, 3, 3)
    published = [(r[0], r[2]) for r in _curated(pipeline, f"ingest_date = '{day[12:]}'")]
    assert published == [("o-1", "paid"), ("o-2", "paid"), ("o-3", "paid")]

    pipeline.put_raw("orders", day, "batch-3.csv", _bad_day_rows("late"))
    (three,) = pipeline.drain(timeout=600)
    assert (three.status, three.error) == ("FAILED", "DataQualityFailed")
    assert [(r[0], r[2]) for r in _curated(pipeline, f"ingest_date = '{day[12:]}'")] == published

    raw = pipeline.storage.local_path(f"s3://{pipeline.bucket('StorageRaw')}/orders/{day}/batch-3.csv")
    raw.write_bytes(_good_day_rows("late"))  # the source fixed in place
    sfn = pipeline.cloud.client("stepfunctions")
    arn = rerun(sfn, pipeline.state_machine_arn, dataset="orders", partitions=[day], known_datasets=["orders"])
    fixed = pipeline.wait(arn, timeout=600)
    assert fixed.status == "SUCCEEDED", (fixed.failed_state, fixed.cause)
    assert _etl_metrics(pipeline, fixed.name)["mode"] == "full"
    rows = _curated(pipeline, f"ingest_date = '{day[12:]}'")
    assert [(r[0], r[2]) for r in rows] == sorted([*published, *[(f"late-{n}", "paid") for n in range(10)]])
    sources = {r[0]: r[7].rsplit("/", 1)[1] for r in rows}
    assert (sources["o-1"], sources["o-2"], sources["o-3"]) == ("batch-2.csv", "batch-1.csv", "batch-2.csv")


def test_scheduled_vacuum__deletes_superseded_folders_keeps_what_readers_and_redrives_need(pipeline):
    """The synthesized vacuum trigger fired against the lake of the incremental test (that test's day, whose four run
    folders are: batch 1's and batch 2's, superseded; batch 3's, failed DQ; the re-run's, published). Every file is
    set a month back, except the manifests of batch 2 (two days ago) and batch 3 (yesterday). Batch 3's execution
    can still be redriven at its ETL, which reads batch 2's folder again: that folder stays. Batch 1's folder goes as
    superseded: batch 2's manifest names it, and batch 3's, written yesterday by an execution started after, names
    batch 2's. Batch 3's goes by its age. Their footer indexes go with them, and readers see the same rows."""
    day = "ingest_date=2026-10-21"
    curated, staging = pipeline.bucket("StorageCurated"), pipeline.bucket("StorageStaging")
    rows = _curated(pipeline, f"ingest_date = '{day[12:]}'")
    folders = {f.name: f for f in pipeline.storage.local_path(f"s3://{curated}/orders/{day}").glob("run_id=*")}
    written = {name: max(p.stat().st_mtime for p in f.iterdir()) for name, f in folders.items()}
    manifests = list(pipeline.storage.local_path(f"s3://{staging}/manifests/orders").glob("*.json"))
    bases = {}  # run folder -> the manifest of the execution that merged onto it
    for manifest in manifests:
        for entry in json.loads(manifest.read_text())["published"]:
            if entry["partition"] == day and entry["location"]:
                bases[entry["location"].rstrip("/").rsplit("/", 1)[1]] = manifest
    glue = pipeline.cloud.client("glue")
    partition = glue.get_partition(DatabaseName="lake_local_curated", TableName="orders", PartitionValues=[day[12:]])
    location = partition["Partition"]["StorageDescriptor"]["Location"]
    published = location.rstrip("/").rsplit("/", 1)[1]
    assert len(folders) == 4 and len(bases) == 2 and published not in bases
    batch_1, batch_2 = sorted(bases, key=written.__getitem__)  # batch 2 merged onto batch 1, batch 3 onto batch 2
    month_ago, two_days_ago, yesterday = (time.time() - days * 86400 for days in (30, 2, 1))
    for path in [*pipeline.storage.local_path(f"s3://{curated}/orders").rglob("*"), *manifests]:
        os.utime(path, (month_ago, month_ago))
    os.utime(bases[batch_1], (two_days_ago, two_days_ago))
    os.utime(bases[batch_2], (yesterday, yesterday))
    # The re-run published the partition (its lake_published_at) yesterday too: no query still reads what it replaced.
    parameters = partition["Partition"]["Parameters"]
    assert datetime.fromisoformat(parameters["lake_published_at"]) > datetime.fromtimestamp(yesterday, UTC)
    parameters["lake_published_at"] = datetime.fromtimestamp(yesterday, UTC).isoformat()
    glue.update_partition(DatabaseName="lake_local_curated", TableName="orders", PartitionValueList=[day[12:]],
                          PartitionInput={key: partition["Partition"][key]
                                          for key in ("Values", "StorageDescriptor", "Parameters")})  # fmt: skip

    (started,) = [s for s in pipeline.fire_scheduled_triggers() if s[0] == pipeline.job_name("HousekeepingVacuumJob")]
    run = pipeline.wait_job_run(*started)
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")

    assert sorted(name for name, f in folders.items() if f.exists()) == sorted([published, batch_2])  # no empty ones
    report = read_json(pipeline.storage, f"s3://{staging}/runs/orders/vacuum/{started[1]}.json")
    assert report["kept_merge_bases"] == [f"{day}/{batch_2}"]
    assert report["superseded"] == [f"{day}/{batch_1}"]
    assert {d["folder"] for d in report["deleted"]} >= {f"{day}/{n}" for n in folders if n not in (published, batch_2)}
    assert _curated(pipeline, f"ingest_date = '{day[12:]}'") == rows
    indexed = pipeline.storage.local_path(f"s3://{staging}/footers/orders/{day}").glob("run_id=*")
    assert {f.name for f in indexed} <= {published, batch_2}
