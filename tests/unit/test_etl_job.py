"""End-to-end tests of etl.job.run on a fake lake in tmp_path (LocalStorage), one shared Spark session."""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl.job import main, run
from etl.storage import LocalStorage

pytestmark = pytest.mark.spark


HEADER = "order_id,customer_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
ROW1 = "o1,c1,2026-11-24 10:00:00,placed,EUR,12.50,1,DE,2026-11-24 10:00:00\n"
ROW2 = "o2,c2,2026-11-24 11:00:00,paid,USD,7.00,2,FR,2026-11-24 11:00:00\n"
PART = "ingest_date=2026-11-24"


def make_lake(tmp_path: Path, repo_root: Path, files: dict[str, bytes]) -> LocalStorage:
    """files: {"ingest_date=.../name.csv": bytes} under raw-bucket/orders/."""
    shutil.copytree(repo_root / "datasets" / "orders", tmp_path / "artifacts" / "datasets" / "orders")
    for name, data in files.items():
        path = tmp_path / "raw-bucket" / "orders" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return LocalStorage(tmp_path)


def job_args(partitions: str = PART, run_id: str = "run-1") -> dict[str, str]:
    return {
        "dataset": "orders",
        "partitions": partitions,
        "run_id": run_id,
        "raw_uri": "s3://raw-bucket",
        "curated_uri": "s3://curated-bucket",
        "staging_uri": "s3://staging-bucket",
        "datasets_uri": "s3://artifacts/datasets",
    }


def rejects(tmp_path: Path, partition: str = PART, run_id: str = "run-1") -> list[dict]:
    folder = tmp_path / "staging-bucket" / "rejects" / "orders" / partition / f"run_id={run_id}"
    return [json.loads(line) for f in sorted(folder.glob("*.json")) for line in f.read_text().splitlines()]


def curated_files(tmp_path: Path, partition: str = PART, run_id: str = "run-1") -> list[Path]:
    return sorted((tmp_path / "curated-bucket" / "orders" / partition / f"run_id={run_id}").glob("*.parquet"))


def curated_rows(spark, tmp_path: Path, partition: str = PART, run_id: str = "run-1") -> list:
    folder = tmp_path / "curated-bucket" / "orders" / partition / f"run_id={run_id}"
    return sorted(spark.read.parquet(str(folder)).collect(), key=lambda r: r.order_id)


def data_lines(*texts: str) -> int:
    """The test's own count of data rows: non-blank lines that are not their file's header line."""
    count = 0
    for text in texts:
        lines = [line for line in text.splitlines() if line.strip()]
        count += sum(1 for line in lines[1:] if line != lines[0])
    return count


def assert_balanced(metrics: dict, input_rows: int) -> None:
    """`input_rows` is known to the test (it wrote the lines), never taken from the metrics."""
    assert metrics["input_rows"] == input_rows
    assert input_rows == metrics["output_rows"] + metrics["rejected_rows"] + metrics["duplicates_removed"]


def test_run__good_file_typed_with_provenance(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1 + ROW2).encode()})
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (2, 2, 0)
    assert metrics["source_objects"] == 1
    rows = curated_rows(spark, tmp_path)
    assert [r.order_id for r in rows] == ["o1", "o2"]
    first = rows[0]
    assert str(first.amount) == "12.50"
    assert first.quantity == 1
    assert str(first.order_ts) == "2026-11-24 10:00:00"
    assert first.lake_source_object == f"s3://raw-bucket/orders/{PART}/a.csv"
    assert first.lake_run_id == "run-1"
    assert first.lake_ingested_at is not None
    assert "ingest_date" not in rows[0].asDict()
    written = json.loads((tmp_path / "staging-bucket/runs/orders/run-1/etl_metrics.json").read_text())
    assert written["output_rows"] == 2
    assert written["per_partition"][PART]["output_rows"] == 2
    stages = written["stage_seconds"]  # where the run's time went, for on-call and the benches
    assert {"plan_sources", "parse_csv", "parse_and_count", "merge", "write_candidate", "index_footers"} <= set(stages)
    assert all(seconds >= 0 for seconds in stages.values()) and stages["parse_csv"] > 0
    assert written["fast_path"] == {"fast_rows": 2, "slow_lines": 0}  # both lines typed by Arrow, none by Spark
    assert rejects(tmp_path) == []


def test_run__malformed_rows_rejected_with_reasons(spark, tmp_path, repo_root):
    bad = (
        HEADER
        + ROW1
        + "o3,c3,2026-11-24 10:00:00,placed,EUR\n"  # 5 fields
        + "o4,c4,2026-11-24 10:00:00,placed,EUR,abc,1,DE,2026-11-24 10:00:00\n"
        + "o5,c5,24/11/2026,placed,EUR,1.00,1,DE,2026-11-24 10:00:00\n"
        + "o6,,2026-11-24 10:00:00,placed,EUR,1.239,2.5,DE,2026-11-24 10:00:00\n"
        + '"o7,c7,2026-11-24 10:00:00,placed,EUR,1.00,1,DE,2026-11-24 10:00:00\n'
    )
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": bad.encode()})
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (6, 1, 5)
    assert_balanced(metrics, data_lines(bad))
    by_id = {r["raw_record"].split(",")[0].strip('"'): r for r in rejects(tmp_path)}
    assert by_id["o3"]["reason"] == "malformed CSV row: expected 9 fields, got 5"
    assert by_id["o3"]["raw_record"] == "o3,c3,2026-11-24 10:00:00,placed,EUR"
    assert by_id["o4"]["reason"] == "column amount: 'abc' is not decimal(12,2)"
    assert by_id["o5"]["reason"] == "column order_ts: '24/11/2026' is not timestamp (yyyy-MM-dd HH:mm:ss)"
    assert by_id["o6"]["reason"] == (
        "column customer_id: is null; column amount: '1.239' is not decimal(12,2); column quantity: '2.5' is not int"
    )
    assert by_id["o7"]["reason"] == "malformed CSV row: unclosed quote"
    for record in by_id.values():
        assert record["source_object"] == f"s3://raw-bucket/orders/{PART}/a.csv"
        assert record["run_id"] == "run-1"
        assert "line_number" in record
    assert metrics["reject_reasons"] == {
        "column customer_id": 1,
        "column amount": 1,
        "column order_ts": 1,
        "malformed CSV row": 2,
    }


def test_run__wrong_delimiter_rejects_every_row(spark, tmp_path, repo_root):
    text = (HEADER + ROW1).replace(",", ";")
    storage = make_lake(
        tmp_path, repo_root, {f"{PART}/a.csv": text.encode(), f"{PART}/b.csv": (HEADER + ROW2).encode()}
    )
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (2, 1, 1)
    [reject] = rejects(tmp_path)
    assert reject["reason"].startswith("wrong delimiter? header has 1 field and contains ';'")
    assert "missing required column order_id" in reject["reason"]
    assert reject["raw_record"] == ROW1.replace(",", ";").rstrip("\n")


def test_run__object_not_in_the_declared_encoding_is_quarantined_not_half_read(spark, tmp_path, repo_root):
    """A Windows-1252 file in a UTF-8 dataset: every row with an accent would be garbled or rejected, the
    others published; the whole object is set aside instead, named with the first bad byte."""
    data = (HEADER + ROW1).encode() + b"o9,c9,2026-11-24 10:00:00,placed,EUR,1.00,1,M\xe9xico,2026-11-24 10:00:00\n"
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": data, f"{PART}/b.csv": (HEADER + ROW2).encode()})
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (1, 1, 0)
    assert metrics["quarantined_objects"] == [{
        "object": f"s3://raw-bucket/orders/{PART}/a.csv", "partition": PART,
        "reason": f"not valid UTF-8: byte 0xe9 on line 3 (byte {data.index(0xE9)}); convert the file to UTF-8 "
                  "or set reader.encoding in dataset.yaml",
    }]  # fmt: skip
    assert [r.order_id for r in curated_rows(spark, tmp_path)] == ["o2"]


def test_run__empty_and_header_only_files_give_zero_rows(spark, tmp_path, repo_root):
    storage = make_lake(
        tmp_path,
        repo_root,
        {f"{PART}/empty.csv": b"", f"{PART}/header.csv": HEADER.encode(), f"{PART}/blank.csv": b"\n\n"},
    )
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (0, 0, 0)
    assert metrics["source_objects"] == 3
    assert metrics["empty_objects"] == [
        f"s3://raw-bucket/orders/{PART}/blank.csv",
        f"s3://raw-bucket/orders/{PART}/empty.csv",
    ]
    assert curated_rows(spark, tmp_path) == []


def test_run__extra_and_missing_columns(spark, tmp_path, repo_root):
    extra = "coupon,order_id,customer_id,order_ts,status,currency,amount,quantity,updated_at\n"
    extra += "X1,o1,c1,2026-11-24 10:00:00,placed,EUR,12.50,1,2026-11-24 10:00:00\n"
    no_customer = "order_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
    no_customer += "o2,2026-11-24 10:00:00,placed,EUR,1.00,1,DE,2026-11-24 10:00:00\n"
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": extra.encode(), f"{PART}/b.csv": no_customer.encode()})
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (2, 1, 1)
    assert metrics["extra_columns"] == ["coupon"]
    assert metrics["missing_columns"] == ["country", "customer_id"]
    [row] = curated_rows(spark, tmp_path)
    assert (row.order_id, row.customer_id, row.country) == ("o1", "c1", None)
    assert "coupon" not in row.asDict()
    [reject] = rejects(tmp_path)
    assert reject["reason"] == "missing required column customer_id"


def test_run__gzip_bom_crlf_and_blank_lines(spark, tmp_path, repo_root):
    crlf = ("\ufeff" + HEADER + ROW1 + "\n").replace("\n", "\r\n").encode()
    storage = make_lake(
        tmp_path,
        repo_root,
        {f"{PART}/a.csv": crlf, f"{PART}/b.csv.gz": gzip.compress((HEADER + ROW2).encode())},
    )
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["rejected_rows"]) == (2, 2, 0)
    rows = curated_rows(spark, tmp_path)
    assert [(r.order_id, r.updated_at.isoformat()) for r in rows] == [
        ("o1", "2026-11-24T10:00:00"),
        ("o2", "2026-11-24T11:00:00"),
    ]
    assert rows[1].lake_source_object == f"s3://raw-bucket/orders/{PART}/b.csv.gz"


def test_run__dedupe_keeps_latest_version(spark, tmp_path, repo_root):
    v1 = "o1,c1,2026-11-24 10:00:00,placed,EUR,12.50,1,DE,2026-11-24 10:00:00\n"
    v2 = "o1,c1,2026-11-24 10:00:00,paid,EUR,12.50,1,DE,2026-11-24 12:00:00\n"
    v3 = "o1,c1,2026-11-24 10:00:00,shipped,EUR,12.50,1,DE,2026-11-24 11:00:00\n"
    tie_a = "o2,c2,2026-11-24 10:00:00,placed,EUR,1.00,1,DE,2026-11-24 10:00:00\n"
    tie_b = "o2,c2,2026-11-24 10:00:00,cancelled,EUR,1.00,1,DE,2026-11-24 10:00:00\n"
    storage = make_lake(
        tmp_path,
        repo_root,
        {
            f"{PART}/a.csv": (HEADER + v2 + tie_b).encode(),
            f"{PART}/b.csv": (HEADER + v1 + v3 + tie_a).encode(),
        },
    )
    metrics = run(job_args(), storage, spark)
    assert (metrics["input_rows"], metrics["output_rows"], metrics["duplicates_removed"]) == (5, 2, 3)
    rows = curated_rows(spark, tmp_path)
    assert [(r.order_id, r.status) for r in rows] == [
        ("o1", "paid"),
        ("o2", "placed"),
    ]  # tie: later object wins
    assert rows[1].lake_source_object.endswith("/b.csv")


def test_run__fast_rows_are_written_by_arrow_and_the_slow_lines_by_spark(spark, tmp_path, repo_root):
    """o1 has two versions in one block (the task keeps the newer), the quoted line is a slow line (Spark parses and
    writes it), o2 and o4 are plain (Arrow writes them). Together: one row per key, footers that carry Spark's schema
    and key ranges, and a re-run that replaces every file."""
    from etl.footers import read_footers

    quoted = 'o3,"c3",2026-11-24 12:00:00,paid,EUR,3.00,1,DE,2026-11-24 12:00:00\n'
    o4 = "o4,c4,1850-01-01 13:00:00,paid,EUR,4.00,1,DE,2026-11-24 13:00:00\n"  # before 1900: no calendar rebase
    newer = ROW1.replace("placed", "paid").replace(",2026-11-24 10:00:00\n", ",2026-11-24 15:00:00\n")
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1 + ROW2 + quoted + newer + o4).encode()})
    for attempt in range(2):
        metrics = run(job_args(), storage, spark)
        assert metrics["fast_path"] == {"fast_rows": 4, "slow_lines": 1}
        assert_balanced(metrics, 5)
        assert metrics["duplicates_removed"] == 1
        rows = curated_rows(spark, tmp_path)
        assert [(r.order_id, r.status) for r in rows] == [("o1", "paid"), ("o2", "paid"), ("o3", "paid"),
                                                          ("o4", "paid")]  # fmt: skip
        assert {r.lake_run_id for r in rows} == {"run-1"} and all(r.lake_ingested_at for r in rows)
        files = curated_files(tmp_path)
        arrow = [f for f in files if f.name.startswith("part-arrow-")]
        assert len(arrow) == 1 and len(files) == 2, (attempt, files)
        [footer] = read_footers(spark, [f"file://{arrow[0]}"], ["order_id"])
        assert footer.schema is not None and footer.rows == 3
        assert footer.ranges["order_id"] == ("o1", "o4")
    assert str([r for r in rows if r.order_id == "o4"][0].order_ts) == "1850-01-01 13:00:00"


def test_run__a_key_repeated_across_objects_rewrites_the_losers_file(spark, tmp_path, repo_root):
    """Two objects, parsed by two tasks, each write their file; o1's older version is in a.csv's, which is rewritten
    without it (and only it: b.csv's file stays as its task wrote it)."""
    newer = ROW1.replace("placed", "paid").replace(",2026-11-24 10:00:00\n", ",2026-11-24 15:00:00\n")
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + newer).encode()})  # fmt: skip
    metrics = run(job_args(), storage, spark)
    assert (metrics["output_rows"], metrics["duplicates_removed"]) == (2, 1)
    rows = curated_rows(spark, tmp_path)
    assert [(r.order_id, r.status, r.lake_source_object.rsplit("/", 1)[1]) for r in rows] == [
        ("o1", "paid", "b.csv"), ("o2", "paid", "a.csv")]  # fmt: skip
    names = sorted(f.name for f in curated_files(tmp_path))
    assert len(names) == 2 and all(n.startswith("part-arrow-") for n in names)
    assert sum(1 for n in names if n.count("-") == 6) == 1, names  # the rewritten file: its old name and a suffix


def test_run__a_quoted_line_that_updates_a_fast_rows_key_is_ranked_with_it(spark, tmp_path, repo_root):
    """A slow (quoted) line and a fast line of the same key: Spark ranks both and writes the winner; the Arrow writers
    leave out only the fast one, and their count still matches."""
    quoted = 'o2,"c2",2026-11-24 11:00:00,shipped,USD,7.00,2,FR,2026-11-24 18:00:00\n'
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1 + ROW2 + quoted).encode()})
    metrics = run(job_args(), storage, spark)
    assert metrics["fast_path"] == {"fast_rows": 2, "slow_lines": 1}
    assert (metrics["output_rows"], metrics["duplicates_removed"]) == (2, 1)
    assert [(r.order_id, r.status) for r in curated_rows(spark, tmp_path)] == [("o1", "placed"), ("o2", "shipped")]


def test_run__a_published_timestamp_before_1900_survives_a_spark_rewrite(spark, tmp_path, repo_root):
    """Arrow writes it as it is; a later batch that updates its file's keys makes Spark rewrite the file, which Spark
    3.5's default calendar rebase would refuse (etl/session.py)."""
    old = ROW2.replace("2026-11-24 11:00:00,paid", "1850-01-01 11:00:00,paid")
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1 + old).encode(),
                                              f"{PART}/b.csv": (HEADER + V2).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    assert second["per_partition"][PART]["rewritten_files"] == 1
    rows = curated_rows(spark, tmp_path, run_id="run-2")
    assert [(r.order_id, r.status, str(r.order_ts)) for r in rows] == [
        ("o1", "paid", "2026-11-24 10:00:00"), ("o2", "paid", "1850-01-01 11:00:00")]  # fmt: skip


def test_curated_writer__files_of_at_most_the_target_rows_and_a_rewrite_drops_positions(tmp_path, repo_root):
    """Rows appended past the cap go to the next file, each within it, none lost; where each row went is returned,
    and a rewrite without some positions keeps the others (and the file's schema) and removes the old file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from etl import arrow_write, fast_csv
    from etl.spec import load_dataset

    spec = load_dataset(repo_root / "datasets" / "orders")
    storage = LocalStorage(tmp_path)
    n = 25
    far = [datetime(2261, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(1678, 1, 1, 5, tzinfo=UTC)] * 13  # the fast range
    rows = pa.table({**{c.name: pa.nulls(n, fast_csv.arrow_type(c)) for c in spec.columns},
                     "order_id": [f"o{i}" for i in range(n)], fast_csv.SOURCE_OBJECT: ["s3://r/a.csv"] * n,
                     "updated_at": pa.array(far[:n], pa.timestamp("us", tz="UTC"))})  # fmt: skip
    target = arrow_write.CuratedTarget({"2026-11-24": "s3://curated/orders/d/run_id=r"}, "r",
                                       datetime(2026, 11, 24, tzinfo=UTC), {}, "part-x", rows_per_file=10)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    writer = arrow_write.CuratedWriter(storage, spec, target, str(scratch))
    placed = writer.append("2026-11-24", rows.slice(0, 7)) + writer.append("2026-11-24", rows.slice(7))
    writer.close()
    files = sorted((tmp_path / "curated" / "orders" / "d" / "run_id=r").glob("*.parquet"))
    assert [pq.read_metadata(f).num_rows for f in files] == [10, 10, 5]
    assert sorted(writer.files.values()) == [5, 10, 10] and sum(count for _, _, count in placed) == n
    assert [(uri.rsplit("/", 1)[1], start, count) for uri, start, count in placed] == [
        ("part-x-0-0.parquet", 0, 7), ("part-x-0-0.parquet", 7, 3), ("part-x-0-1.parquet", 0, 10),
        ("part-x-0-2.parquet", 0, 5)]  # fmt: skip
    old = "s3://curated/orders/d/run_id=r/part-x-0-1.parquet"
    assert arrow_write.rewrite_without(storage, old, [0, 9, 9], old.replace(".parquet", "-b.parquet")) == 8
    rewritten = pq.ParquetFile(tmp_path / "curated" / "orders" / "d" / "run_id=r" / "part-x-0-1-b.parquet")
    assert rewritten.read().column("order_id").to_pylist() == [f"o{i}" for i in range(11, 19)]
    assert rewritten.read().column("updated_at").to_pylist() == [f.replace(tzinfo=None) for f in far[11:19]]
    assert rewritten.schema == pq.ParquetFile(files[0]).schema and not storage.exists(old)  # INT96 kept
    with pytest.raises(ValueError, match="part-x-0-0.parquet: rows to drop \\[10\\] are outside its 10 rows"):
        arrow_write.rewrite_without(storage, old.replace("0-1", "0-0"), [10], old.replace("0-1", "0-0-b"))


def test_curated_writer__buffers_blocks_into_row_groups(tmp_path, repo_root, monkeypatch):
    """Small blocks (one per small object) are written as row groups of ROW_GROUP_ROWS, not a row group each; a
    task's buffers over its open files stay under PENDING_ROWS; positions are those of the rows appended."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from etl import arrow_write, fast_csv
    from etl.spec import load_dataset

    monkeypatch.setattr(arrow_write, "ROW_GROUP_ROWS", 4)
    monkeypatch.setattr(arrow_write, "PENDING_ROWS", 6)
    spec = load_dataset(repo_root / "datasets" / "orders")

    def block(first: int, n: int) -> pa.Table:
        return pa.table({**{c.name: pa.nulls(n, fast_csv.arrow_type(c)) for c in spec.columns},
                         "order_id": [f"o{i}" for i in range(first, first + n)],
                         fast_csv.SOURCE_OBJECT: [f"s3://r/{first}.csv"] * n})  # fmt: skip

    folders = {f"d{n}": f"s3://curated/orders/d={n}/run_id=r" for n in (1, 2, 3)}
    target = arrow_write.CuratedTarget(folders, "r", datetime(2026, 11, 24, tzinfo=UTC), {}, "part-x", rows_per_file=10)
    (tmp_path / "scratch").mkdir()
    writer = arrow_write.CuratedWriter(LocalStorage(tmp_path), spec, target, str(tmp_path / "scratch"))
    placed = [writer.append("d1", block(0, 3)), writer.append("d1", block(3, 3)), writer.append("d2", block(100, 3)),
              writer.append("d3", block(200, 2)), writer.append("d1", block(6, 2)), writer.append("d1", block(8, 2)),
              writer.append("d2", block(103, 3))]
    writer.close()

    def groups(n: int) -> list[int]:
        file = pq.ParquetFile(tmp_path / "curated" / "orders" / f"d={n}" / "run_id=r" / f"part-x-{n - 1}-0.parquet")
        return [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)]

    # d1's 3 + 3 pass ROW_GROUP_ROWS; then 3 + 2 + 2 rows buffered over three files pass PENDING_ROWS: the largest
    # buffer, d2's, is written (without the cap, d2's 3 + 3 would be one group); d1's next 2 + 2 make its second
    assert [groups(1), groups(2), groups(3)] == [[6, 4], [3, 3], [2]]
    d1 = pq.read_table(tmp_path / "curated" / "orders" / "d=1" / "run_id=r" / "part-x-0-0.parquet")
    assert d1.column("order_id").to_pylist() == [f"o{i}" for i in range(10)]
    assert [p[0][1:] for p in placed] == [(0, 3), (3, 3), (0, 3), (0, 2), (6, 2), (8, 2), (3, 3)]
    assert sorted(writer.files.values()) == [2, 6, 10]

    monkeypatch.setattr(arrow_write, "PENDING_ROWS", 100)  # one file alone: groups of ROW_GROUP_ROWS or more
    one = arrow_write.CuratedTarget({"d1": "s3://curated/orders/d=1/run_id=s"}, "s", target.ingested_at, {}, "part-y")
    writer = arrow_write.CuratedWriter(LocalStorage(tmp_path), spec, one, str(tmp_path / "scratch"))
    for first in (0, 3, 6, 9):
        writer.append("d1", block(first, 3))
    writer.close()
    file = pq.ParquetFile(tmp_path / "curated" / "orders" / "d=1" / "run_id=s" / "part-y-0-0.parquet")
    assert [file.metadata.row_group(i).num_rows for i in range(file.num_row_groups)] == [6, 6]


def test_curated_files__dictionary_encode_only_the_columns_whose_values_repeat(tmp_path):
    """Keys, amounts and timestamps that are mostly distinct are written plain (a dictionary for them was half the
    write's time); a rewrite keeps the file's dictionaries (judging them again was a quarter of its time), metadata
    and INT96 timestamps; a rewrite that drops every row, or of a file without rows, keeps the schema."""
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    from etl import arrow_write

    n = 300
    rows = pa.table({"order_id": [f"o{i}" for i in range(n)], "status": ["paid", "placed"] * (n // 2),
                     "amount": pa.array([Decimal(i) / 100 for i in range(n)], pa.decimal128(12, 2)),
                     "note": pa.nulls(n, pa.string()), "half": [i // 2 for i in range(n)],
                     "at": pa.array([datetime(2026, 11, 24, i // 60, i % 60) for i in range(n)], pa.timestamp("us"))})
    rows = rows.replace_schema_metadata({arrow_write.SPARK_VERSION_KEY: "3.5.9"})  # fmt: skip
    assert arrow_write.dictionary_columns(rows) == ["status", "note", "half"]  # "half": 150 distinct of 300
    assert arrow_write.dictionary_columns(rows.slice(0, 3)) == rows.column_names  # too few to judge: the default

    def dictionaries(path) -> list[bool]:
        group = pq.read_metadata(path).row_group(0)
        return [group.column(i).has_dictionary_page for i in range(group.num_columns)]

    storage = LocalStorage(tmp_path)
    folder = tmp_path / "curated"
    folder.mkdir()
    with arrow_write.open_writer(str(folder / "f.parquet"), rows.schema, rows) as writer:
        writer.write_table(rows)
    assert dictionaries(folder / "f.parquet") == [False, True, False, True, True, False]
    # Rewritten without every other row, "half" is distinct in the rows left, and keeps its dictionary all the same.
    assert arrow_write.rewrite_without(storage, "s3://curated/f.parquet", list(range(0, n, 2)),
                                       "s3://curated/g.parquet", delete_source=False) == n // 2  # fmt: skip
    assert dictionaries(folder / "g.parquet") == [False, True, False, True, True, False]
    with pq.ParquetWriter(folder / "spark.parquet", rows.schema, use_dictionary=True) as writer:  # as Spark writes
        writer.write_table(rows)
    arrow_write.rewrite_without(storage, "s3://curated/spark.parquet", [0], "s3://curated/h.parquet", False)
    assert dictionaries(folder / "h.parquet") == [True] * 6
    rewritten = pq.ParquetFile(folder / "g.parquet")
    assert rewritten.schema_arrow.equals(pq.ParquetFile(folder / "f.parquet").schema_arrow, check_metadata=True)
    assert rewritten.metadata.row_group(0).column(5).physical_type == "INT96"
    assert rewritten.read().column("half").to_pylist() == list(range(n // 2))

    for source, target in (("f", "none"), ("none", "none-again")):  # every row dropped; then a file without rows
        drop = list(range(n)) if source == "f" else []
        assert arrow_write.rewrite_without(storage, f"s3://curated/{source}.parquet", drop,
                                           f"s3://curated/{target}.parquet", delete_source=False) == 0  # fmt: skip
        empty = pq.ParquetFile(folder / f"{target}.parquet")
        written = pq.ParquetFile(folder / "f.parquet").schema_arrow  # INT96 reads back at nanoseconds
        assert empty.metadata.num_rows == 0 and empty.schema_arrow.equals(written, check_metadata=True)


def test_run__rerun_same_run_id_replaces(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1 + ROW2 + "bad\n").encode()})
    first = run(job_args(), storage, spark)
    files_first = curated_files(tmp_path)
    second = run(job_args(), storage, spark)
    assert first["output_rows"] == second["output_rows"] == 2
    assert len(curated_files(tmp_path)) == len(files_first) == 1
    assert len(curated_rows(spark, tmp_path)) == 2
    assert len(rejects(tmp_path)) == 1


def test_run__only_requested_partitions_read(spark, tmp_path, repo_root):
    storage = make_lake(
        tmp_path,
        repo_root,
        {
            f"{PART}/a.csv": (HEADER + ROW1).encode(),
            "ingest_date=2026-11-25/a.csv": b"garbage that would be rejected\n\xff\xfe",
            "ingest_date=2026-11-26/a.csv": (HEADER + ROW2).encode(),
        },
    )
    metrics = run(job_args(f"{PART},ingest_date=2026-11-26"), storage, spark)
    assert metrics["partitions"] == [PART, "ingest_date=2026-11-26"]
    assert metrics["source_objects"] == 2
    assert (metrics["input_rows"], metrics["rejected_rows"]) == (2, 0)
    assert sorted(metrics["per_partition"]) == [PART, "ingest_date=2026-11-26"]
    assert not (tmp_path / "curated-bucket/orders/ingest_date=2026-11-25").exists()
    assert [r.order_id for r in curated_rows(spark, tmp_path, "ingest_date=2026-11-26")] == ["o2"]


def test_run__partition_without_objects_fails_naming_uri(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1).encode()})
    with pytest.raises(FileNotFoundError, match="s3://raw-bucket/orders/ingest_date=2026-12-01/"):
        run(job_args("ingest_date=2026-12-01"), storage, spark)
    events = sorted(p.name for p in (tmp_path / "staging-bucket/lineage/orders/run-1").iterdir())
    assert events == ["orders-etl-1-START.json", "orders-etl-2-FAIL.json"]


def test_run__lineage_start_and_complete(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1).encode()})
    run(job_args(), storage, spark)
    folder = tmp_path / "staging-bucket/lineage/orders/run-1"
    assert sorted(p.name for p in folder.iterdir()) == [
        "orders-etl-1-START.json",
        "orders-etl-2-COMPLETE.json",
    ]
    event = json.loads((folder / "orders-etl-2-COMPLETE.json").read_text())
    assert event["eventType"] == "COMPLETE"
    assert event["job"]["name"] == "orders-etl"
    assert event["inputs"][0]["namespace"] == "s3://raw-bucket"
    assert event["inputs"][0]["name"] == f"orders/{PART}"
    assert event["outputs"][0]["name"] == f"orders/{PART}/run_id=run-1"
    assert event["outputs"][0]["facets"]["schema"]["fields"][0]["name"] == "order_id"


def test_main__missing_argument_fails(spark):
    with pytest.raises(ValueError, match="--run_id"):
        main(["--dataset", "orders", "--partitions", PART])


def test_parse_partitions__accepts_the_state_machine_json_array():
    from etl.readers import parse_partitions

    assert parse_partitions('["ingest_date=2026-11-25", "ingest_date=2026-11-24"]', "ingest_date") == [
        "ingest_date=2026-11-25",
        "ingest_date=2026-11-24",
    ]
    with pytest.raises(ValueError, match="bad partition 'date=2026-11-24'"):
        parse_partitions('["date=2026-11-24"]', "ingest_date")


@pytest.mark.parametrize("inspected_by", ["driver", "spark tasks"])
def test_run__mixed_batch_of_odd_objects_quarantines_only_the_unreadable_ones(spark, tmp_path, repo_root, monkeypatch,
                                                                              inspected_by):  # fmt: skip
    """Issue 12's batch: good files beside a truncated .csv.gz, a Windows-1252 file, a zero-byte file, a
    header-only file, reordered and extra columns, a truncated last line and a stray .json. The readable
    rows are published, the broken line is rejected, the three unreadable objects are set aside with reasons;
    the same whether the driver inspects the objects or (a large batch) Spark tasks do."""
    import etl.job

    monkeypatch.setattr(etl.job, "PARALLEL_INSPECTION_BYTES", 1 if inspected_by == "spark tasks" else 2**62)
    row = "{id},c,2026-11-24 10:00:00,placed,EUR,1.00,1,DE,2026-11-24 10:00:00\n"
    reordered = "customer_id,order_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
    reordered += "c3,o3,2026-11-24 10:00:00,placed,EUR,3.00,1,DE,2026-11-24 10:00:00\n"
    extra = HEADER.rstrip("\n") + ",coupon\n" + row.format(id="o4").rstrip("\n") + ",X4\n" + ROW1.rstrip("\n") + ",X1\n"
    truncated = HEADER + row.format(id="o5") + "o6,c6,2026-11-24 1"
    cp1252 = (HEADER + row.format(id="o9").replace("DE", "M\xe9xico")).encode("cp1252")
    files = {
        "good.csv": (HEADER + ROW1 + ROW2).encode(),
        "corrupt.csv.gz": gzip.compress((HEADER + row.format(id="o8")).encode())[:-10],
        "cp1252.csv": cp1252,
        "zero.csv": b"",
        "header_only.csv": HEADER.encode(),
        "reordered.csv": reordered.encode(),
        "extra.csv": extra.encode(),
        "truncated.csv": truncated.encode(),
        "stray.json": b'{"order_id": "o7", "amount": 1}\n',
    }
    storage = make_lake(tmp_path, repo_root, {f"{PART}/{name}": data for name, data in files.items()})
    metrics = run(job_args(), storage, spark)

    uri = f"s3://raw-bucket/orders/{PART}/"
    readable = [files[n].decode() for n in ("good.csv", "reordered.csv", "extra.csv", "truncated.csv")]
    assert_balanced(metrics, data_lines(*readable))
    assert (metrics["output_rows"], metrics["rejected_rows"], metrics["duplicates_removed"]) == (5, 1, 1)
    assert [r.order_id for r in curated_rows(spark, tmp_path)] == ["o1", "o2", "o3", "o4", "o5"]
    [reject] = rejects(tmp_path)
    assert (reject["source_object"], reject["raw_record"]) == (uri + "truncated.csv", "o6,c6,2026-11-24 1")
    assert reject["reason"].startswith("malformed CSV row")
    assert metrics["empty_objects"] == [uri + "zero.csv"]
    assert metrics["extra_columns"] == ["coupon"]
    reasons = {q["object"].removeprefix(uri): q["reason"] for q in metrics["quarantined_objects"]}
    assert reasons == {
        "corrupt.csv.gz": "truncated gzip stream (the file ends before the end of the compressed data)",
        "cp1252.csv": f"not valid UTF-8: byte 0xe9 on line 2 (byte {cp1252.index(0xE9)}); convert the file to "
        "UTF-8 or set reader.encoding in dataset.yaml",
        "stray.json": "JSON content, but the dataset's format is csv",
    }
    assert metrics["per_partition"][PART]["quarantined_objects"] == 3
    listing = tmp_path / "staging-bucket" / "quarantine" / "orders" / PART / "run_id=run-1" / "objects.json"
    assert json.loads(listing.read_text()) == metrics["quarantined_objects"]


def test_run__object_in_the_declared_encoding_is_read(spark, tmp_path, repo_root):
    storage = make_lake(
        tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1.replace("DE", "M\xe9xico")).encode("cp1252")}
    )
    spec_file = tmp_path / "artifacts" / "datasets" / "orders" / "dataset.yaml"
    spec_file.write_text(spec_file.read_text().replace("encoding: UTF-8", "encoding: windows-1252"))
    metrics = run(job_args(), storage, spark)
    assert (metrics["output_rows"], metrics["quarantined_objects"]) == (1, [])
    assert curated_rows(spark, tmp_path)[0].country == "M\xe9xico"


@pytest.mark.parametrize("stage", ["fast parser", "spark parser", "arrow ranking", "spark ranking",
                                   "spark deduplication"])
def test_run__a_row_lost_anywhere_fails_the_run(spark, tmp_path, repo_root, monkeypatch, stage):
    """Input rows are counted from the objects' lines and duplicates from distinct keys, so a transform that
    silently drops a row breaks the accounting instead of passing unnoticed."""
    import etl.fast_csv as fc
    import etl.transforms as tf

    drop = "order_id IS NULL OR order_id != 'o2'"
    if stage == "fast parser":
        original_staged = fc.read_staged

        def lossy(spark, storage, *args, **kwargs):  # the tasks' parse loses o2: from its file, keys and counts
            import pyarrow.compute as pc
            import pyarrow.parquet as pq

            staged = original_staged(spark, storage, *args, **kwargs)
            [uri] = staged.files
            table = pq.read_table(storage.local_path(uri))
            pq.write_table(table.filter(pc.not_equal(table.column("order_id"), "o2")), storage.local_path(uri),
                           use_deprecated_int96_timestamps=True)  # fmt: skip
            value = PART.split("=", 1)[1]
            lost = tf.RowCounts({value: {"parsed_rows": -1, "rejected_rows": 0}}, {}, {})
            return fc.Staged(staged.rows.where(drop), staged.cached, staged.fast_rows - 1, staged.slow_lines,
                             staged.fast_counts.plus(lost), staged.slow_rows, {uri: staged.files[uri] - 1})

        monkeypatch.setattr(fc, "read_staged", lossy)
    elif stage == "arrow ranking":  # the first row of every fast file loses too
        import etl.arrow_merge as am

        original_rank = am.rank

        def lossy_rank(table, spec, files, fast_files):
            losers = original_rank(table, spec, files, fast_files)
            for uri in fast_files:
                losers.fast[uri] = sorted(set(losers.fast.get(uri, []) + [0]))
            return losers

        monkeypatch.setattr(am, "rank", lossy_rank)
    elif stage == "spark ranking":  # the fast path's merge by Spark: every version of a contested key loses
        import etl.arrow_merge as am

        monkeypatch.setattr(am, "MAX_ROWS", -1)
        monkeypatch.setattr(tf.Merged, "losers", lambda self, spec: self.contested)
    else:
        name = "read_records" if stage == "spark parser" else "deduplicate"
        original = getattr(tf, name)
        monkeypatch.setattr(tf, name, lambda *a, **k: original(*a, **k).where(drop))
        monkeypatch.setattr(fc, "unsupported", lambda spec: "forced")
    # o2 has a second version in another object where the deduplication is judged.
    newer = ROW2.replace(",2026-11-24 11:00:00\n", ",2026-11-24 16:00:00\n")
    objects = {f"{PART}/a.csv": (HEADER + ROW1 + ROW2).encode()}
    if stage.endswith(("ranking", "deduplication")):
        objects[f"{PART}/b.csv"] = (HEADER + newer).encode()
    storage = make_lake(tmp_path, repo_root, objects)
    lines = sum(data.count(b"\n") - 1 for data in objects.values())
    with pytest.raises(RuntimeError, match=rf"row accounting does not balance for {PART}: its objects hold "
                                           rf"{lines} data lines"):  # fmt: skip
        run(job_args(), storage, spark)


# -- incremental batches (etl/batch.py): only the batch's objects are read, merged onto the published snapshot --
def write_manifest(tmp_path: Path, name: str, keys: list[str], published: dict[str, str | None]) -> str:
    document = {"objects": [f"orders/{k}" for k in keys],
                "published": [{"partition": p, "location": loc} for p, loc in published.items()]}  # fmt: skip
    path = tmp_path / "staging-bucket" / "manifests" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return f"s3://staging-bucket/manifests/{name}.json"


def snapshot(run_id: str, partition: str = PART) -> str:
    return f"s3://curated-bucket/orders/{partition}/run_id={run_id}/"


def run_batch(spark, storage, tmp_path, run_id: str, keys: list[str], merged_onto: str | None) -> dict:
    manifest = write_manifest(tmp_path, run_id, keys, {PART: merged_onto})
    return run({**job_args(run_id=run_id), "manifest_uri": manifest}, storage, spark)


def data_of(rows: list) -> list[tuple]:
    """Curated rows without the per-run stamps (ingested_at, run_id), sorted."""
    return sorted((r.order_id, r.status, str(r.updated_at), r.lake_source_object) for r in rows)


V1 = "o1,c1,2026-11-24 10:00:00,placed,EUR,12.50,1,DE,2026-11-24 10:00:00\n"
V2 = "o1,c1,2026-11-24 10:00:00,paid,EUR,12.50,1,DE,2026-11-24 12:00:00\n"
O3 = "o3,c3,2026-11-24 13:00:00,placed,GBP,3.00,1,GB,2026-11-24 13:00:00\n"


@pytest.mark.parametrize("ranking", ["arrow", "spark"])
def test_run__batches_merged_onto_the_published_snapshot_equal_a_full_reprocessing(spark, tmp_path, repo_root,
                                                                                   monkeypatch, ranking):  # fmt: skip
    """Ranked by Arrow on the driver (etl/arrow_merge.py), or by Spark when the rows that may share a key are more
    than the driver ranks."""
    import etl.arrow_merge as am

    if ranking == "spark":
        monkeypatch.setattr(am, "MAX_ROWS", -1)
    batch1 = HEADER + V1 + ROW2
    batch2 = HEADER + V2 + O3 + "o4,bad\n"
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": batch1.encode(), f"{PART}/b.csv": batch2.encode(),
                                              f"{PART}/c.csv": batch1.encode()})  # c.csv: a.csv delivered twice
    first = run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    third = run_batch(spark, storage, tmp_path, "run-3", [f"{PART}/c.csv"], snapshot("run-2"))

    assert (first["mode"], first["source_objects"], first["carried_rows"]) == ("incremental", 1, 0)
    # Only b.csv was read; o1's older version (from the snapshot) lost to the newer one in b.csv.
    assert (second["source_objects"], second["input_rows"], second["carried_rows"]) == (1, data_lines(batch2), 2)
    assert (second["output_rows"], second["rejected_rows"], second["duplicates_removed"]) == (3, 1, 1)
    assert second["input_rows"] + second["carried_rows"] == (
        second["output_rows"] + second["rejected_rows"] + second["duplicates_removed"])  # fmt: skip
    assert [r["raw_record"] for r in rejects(tmp_path, run_id="run-2")] == ["o4,bad"]
    assert third["per_partition"][PART]["merged_onto"] == snapshot("run-2")

    run({**job_args(run_id="full"), "manifest_uri": "none"}, storage, spark)
    full = curated_rows(spark, tmp_path, run_id="full")
    incremental = curated_rows(spark, tmp_path, run_id="run-3")
    assert data_of(incremental) == data_of(full)
    assert [(r.order_id, r.status) for r in incremental] == [("o1", "paid"), ("o2", "paid"), ("o3", "placed")]
    # A row keeps the run that ingested it: o3 came with run-2 and was carried through run-3.
    assert {r.order_id: r.lake_run_id for r in incremental}["o3"] == "run-2"


def test_run__new_keys_of_two_objects_that_update_the_snapshot_are_ranked_against_each_other(spark, tmp_path,
                                                                                               repo_root):  # fmt: skip
    """Both objects update o1 of the snapshot and bring new keys beyond its range (o5-o7): the ranking narrows
    the batch to the rows within the snapshot's range (arrow_merge.narrowed), but o5 in both objects is still
    ranked, because their blocks' new keys overlap there."""
    o5 = "o5,c5,2026-11-24 13:00:00,placed,GBP,3.00,1,GB,2026-11-24 13:00:00\n"
    o5_newer = "o5,c5,2026-11-24 13:00:00,shipped,GBP,3.00,1,GB,2026-11-24 15:00:00\n"
    o6 = "o6,c6,2026-11-24 13:00:00,placed,GBP,4.00,1,GB,2026-11-24 13:00:00\n"
    o7 = "o7,c7,2026-11-24 13:00:00,placed,GBP,5.00,1,GB,2026-11-24 13:00:00\n"
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + V2 + o5 + o7).encode(),
                                              f"{PART}/d.csv": (HEADER + V2 + o5_newer + o6).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv", f"{PART}/d.csv"], snapshot("run-1"))
    assert (second["output_rows"], second["duplicates_removed"]) == (5, 3)  # o1 twice older, o5 once
    merged = {r.order_id: r.status for r in curated_rows(spark, tmp_path, run_id="run-2")}
    assert merged == {"o1": "paid", "o2": "paid", "o5": "shipped", "o6": "placed", "o7": "placed"}
    run({**job_args(run_id="full"), "manifest_uri": "none"}, storage, spark)
    assert data_of(curated_rows(spark, tmp_path, run_id="run-2")) == data_of(
        curated_rows(spark, tmp_path, run_id="full"))  # fmt: skip


def test_run__the_same_batch_again_changes_nothing(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + V2 + O3).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    again = run_batch(spark, storage, tmp_path, "run-2-again", [f"{PART}/b.csv"], snapshot("run-2"))
    assert (again["replaced_rows"], again["carried_rows"], again["output_rows"]) == (2, 1, 3)
    before = curated_rows(spark, tmp_path, run_id="run-2")
    assert data_of(curated_rows(spark, tmp_path, run_id="run-2-again")) == data_of(before)


def test_run__an_overwritten_object_replaces_its_earlier_rows(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode()})
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    (tmp_path / "raw-bucket" / "orders" / PART / "a.csv").write_text(HEADER + O3)  # re-uploaded, new content
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/a.csv"], snapshot("run-1"))
    assert (second["replaced_rows"], second["carried_rows"], second["output_rows"]) == (2, 0, 1)
    run({**job_args(run_id="full")}, storage, spark)
    assert data_of(curated_rows(spark, tmp_path, run_id="run-2")) == data_of(
        curated_rows(spark, tmp_path, run_id="full"))  # fmt: skip


@pytest.mark.parametrize("ranking", ["arrow", "spark"])
def test_run__a_snapshot_row_lost_in_the_merge_fails_the_run(spark, tmp_path, repo_root, monkeypatch, ranking):
    """o2 is carried in the touched published file, and lost: left out of the rows Spark carries, or dropped from
    the file's rewrite as if it had lost its key."""
    import etl.arrow_merge as am
    import etl.snapshot as snap

    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + V2 + O3).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    if ranking == "spark":
        monkeypatch.setattr(am, "MAX_ROWS", -1)
        original = snap.touched_rows
        monkeypatch.setattr(snap, "touched_rows", lambda *a, **k: original(*a, **k).where("order_id != 'o2'"))
    else:
        original_rank = am.rank

        def losing(table, spec, files, fast_files):
            losers = original_rank(table, spec, files, fast_files)
            [published] = {files[n] for n in table.column(am.FILE).to_pylist()} - fast_files
            losers.published.setdefault(published, []).append(1)  # o2's position
            return losers

        monkeypatch.setattr(am, "rank", losing)
    with pytest.raises(RuntimeError, match=rf"row accounting does not balance for {PART}: its objects hold 2 data "
                                           r"lines .* 2 rows were carried from the published snapshot "
                                           r"s3://curated-bucket/.*run_id=run-1/, but 2 were written"):  # fmt: skip
        run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))


O4 = "o4,c4,2026-11-24 14:00:00,placed,EUR,4.00,1,DE,2026-11-24 14:00:00\n"
O3_LATER = "o3,c3,2026-11-24 13:00:00,shipped,GBP,3.00,1,GB,2026-11-24 18:00:00\n"


def test_run__published_files_the_batch_does_not_touch_are_copied_not_rewritten(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + O3 + O4).encode(),
                                              f"{PART}/c.csv": (HEADER + O3_LATER).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    first_files = curated_files(tmp_path, run_id="run-1")
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    # b.csv shares no key with run-1: its files are carried byte for byte, and only o3 and o4 are written by Spark.
    assert (second["per_partition"][PART]["copied_files"], second["per_partition"][PART]["rewritten_files"]) == (
        len(first_files), 0)  # fmt: skip
    copies = {f.name: f.read_bytes() for f in curated_files(tmp_path, run_id="run-2")}
    assert all(copies.get(f.name) == f.read_bytes() for f in first_files)
    assert (second["carried_rows"], second["output_rows"]) == (2, 4)

    third = run_batch(spark, storage, tmp_path, "run-3", [f"{PART}/c.csv"], snapshot("run-2"))
    # c.csv updates o3 only: the file that holds it (and o4) is rewritten, run-1's files are carried again.
    assert (third["per_partition"][PART]["copied_files"], third["per_partition"][PART]["rewritten_files"]) == (
        len(first_files), 1)  # fmt: skip
    assert (third["carried_rows"], third["output_rows"], third["duplicates_removed"]) == (4, 4, 1)
    run({**job_args(run_id="full"), "manifest_uri": "none"}, storage, spark)
    assert data_of(curated_rows(spark, tmp_path, run_id="run-3")) == data_of(
        curated_rows(spark, tmp_path, run_id="full"))  # fmt: skip
    assert {r.order_id: r.status for r in curated_rows(spark, tmp_path, run_id="run-3")}["o3"] == "shipped"
    for run_id in ("run-2", "run-3"):  # a run's own rows never share a file with rows carried from the snapshot
        assert all(len(runs) == 1 or run_id not in runs for runs in runs_per_file(spark, tmp_path, run_id))


def footer_index(tmp_path: Path, run_id: str) -> dict:
    return json.loads((tmp_path / "staging-bucket" / "footers" / "orders" / PART / f"run_id={run_id}" /
                       "footers.json").read_text())  # fmt: skip


def test_run__each_candidate_folder_gets_a_footer_index_the_next_batch_reads_instead_of_the_footers(
    spark, tmp_path, repo_root, monkeypatch
):
    import etl.footers

    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + O3 + O4).encode(),
                                              f"{PART}/c.csv": (HEADER + O3_LATER).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    index = footer_index(tmp_path, "run-2")["files"]
    # Every file of the folder (copied from run-1 or written by run-2), with its rows and key range as Spark reads them.
    files = curated_files(tmp_path, run_id="run-2")
    assert sorted(index) == [f.name for f in files]
    for f in files:
        ids = [r.order_id for r in spark.read.parquet(str(f)).collect()]
        assert (index[f.name]["rows"], index[f.name]["ranges"]["order_id"]) == (len(ids), [min(ids), max(ids)])

    footer_reads: list[str] = []
    original = etl.footers.read_footers

    def counted(session, paths, ranged):
        footer_reads.extend(paths)
        return original(session, paths, ranged)

    monkeypatch.setattr(etl.footers, "read_footers", counted)
    third = run_batch(spark, storage, tmp_path, "run-3", [f"{PART}/c.csv"], snapshot("run-2"))
    assert footer_reads == []
    # Without its index the folder's footers are read, and the batch comes out the same.
    (tmp_path / "staging-bucket" / "footers" / "orders" / PART / "run_id=run-2" / "footers.json").unlink()
    again = run_batch(spark, storage, tmp_path, "run-3b", [f"{PART}/c.csv"], snapshot("run-2"))
    assert len(footer_reads) == len(files)
    assert [(m["per_partition"][PART]["copied_files"], m["per_partition"][PART]["rewritten_files"], m["output_rows"])
            for m in (third, again)] == [(len(files) - 1, 1, 4)] * 2  # fmt: skip
    assert data_of(curated_rows(spark, tmp_path, run_id="run-3")) == data_of(
        curated_rows(spark, tmp_path, run_id="run-3b"))  # fmt: skip


def test_run__a_published_file_lost_from_its_folder_fails_the_batch_naming_it(spark, tmp_path, repo_root):
    quoted = 'o5,"c5",2026-11-24 12:00:00,paid,EUR,3.00,1,DE,2026-11-24 12:00:00\n'  # Spark writes it: a second file
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2 + quoted).encode(),
                                              f"{PART}/b.csv": (HEADER + O3).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    lost = curated_files(tmp_path, run_id="run-1")[0]
    lost.unlink()
    with pytest.raises(RuntimeError, match=rf"published snapshot .*run_id=run-1/: its footer index .* lists "
                                           rf"\['{lost.name}'\], which the folder no longer holds"):  # fmt: skip
        run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))


def test_run__a_published_folder_deleted_since_the_lookup_fails_the_batch_naming_it(spark, tmp_path, repo_root):
    """Merging onto nothing would publish the batch without the partition's earlier rows."""
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + O3).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    shutil.rmtree(tmp_path / "curated-bucket" / "orders" / PART / "run_id=run-1")
    with pytest.raises(RuntimeError, match=r"published snapshot s3://curated-bucket/orders/.*/run_id=run-1/ holds no "
                                           rf"objects: .* \(`lake rerun orders --partition {PART}`\)"):  # fmt: skip
        run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))


O2_NEW = "o2,c2,2026-11-24 11:00:00,paid,USD,7.00,2,FR,2026-11-24 11:00:00\n"
O5 = "o5,c5,2026-11-24 15:00:00,placed,EUR,5.00,1,DE,2026-11-24 15:00:00\n"


def test_run__a_file_whose_key_range_holds_a_batch_key_is_scanned_before_it_is_rewritten(spark, tmp_path, repo_root):
    # run-1's one file holds o1 and o3; o2 lies in its key range but is not in it. The file holds more rows than
    # the batch, so its keys are checked, and it is copied.
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + O3).encode(),
                                              f"{PART}/b.csv": (HEADER + O2_NEW).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    assert (second["per_partition"][PART]["copied_files"], second["per_partition"][PART]["rewritten_files"]) == (1, 0)
    assert (second["carried_rows"], second["output_rows"], second["duplicates_removed"]) == (2, 3, 0)


def test_run__a_file_in_range_with_fewer_rows_than_the_batch_is_rewritten_unscanned_and_stays_exact(
    spark, tmp_path, repo_root
):
    # The batch (o2, o4, o5: 3 rows) outnumbers the file in its key range (o1, o3), which is rewritten without a
    # scan; the result is still what a full reprocessing gives.
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + O3).encode(),
                                              f"{PART}/b.csv": (HEADER + O2_NEW + O4 + O5).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    assert (second["per_partition"][PART]["copied_files"], second["per_partition"][PART]["rewritten_files"]) == (0, 1)
    assert (second["carried_rows"], second["output_rows"], second["duplicates_removed"]) == (2, 5, 0)
    run({**job_args(run_id="full"), "manifest_uri": "none"}, storage, spark)
    assert data_of(curated_rows(spark, tmp_path, run_id="run-2")) == data_of(
        curated_rows(spark, tmp_path, run_id="full"))  # fmt: skip


def runs_per_file(spark, tmp_path: Path, run_id: str) -> list[set[str]]:
    """For each curated file of `run_id`'s folder, the `lake_run_id`s of its rows."""
    files = curated_files(tmp_path, run_id=run_id)
    return [{r.lake_run_id for r in spark.read.parquet(str(f)).collect()} for f in files]


def test_run__a_batch_with_no_valid_rows_still_carries_the_snapshot(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + "o9,bad\n").encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    assert (second["rejected_rows"], second["carried_rows"], second["output_rows"]) == (1, 2, 2)
    assert data_of(curated_rows(spark, tmp_path, run_id="run-2")) == data_of(curated_rows(spark, tmp_path))


def test_run__a_snapshot_written_with_other_columns_fails_naming_it(spark, tmp_path, repo_root):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1).encode()})
    old = tmp_path / "curated-bucket" / "orders" / PART / "run_id=old"
    spark.createDataFrame([("o1", "placed")], "order_id string, status string").write.parquet(str(old))
    with pytest.raises(ValueError, match=r"published snapshot s3://curated-bucket/orders/.*/run_id=old/ has columns "
                                         r"\[\('order_id', 'string'\), \('status', 'string'\)\] "
                                         r"in part-.*\.parquet, but dataset "
                                         r"orders now writes .*re-run the partition in full"):  # fmt: skip
        run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], snapshot("old"))


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("not json", r"manifests/bad.json: not JSON"),
        (json.dumps({"keys": []}), r"manifests/bad.json: expected an object with an `objects` list"),
        (json.dumps({"objects": ["orders/a.csv"]}), r"objects\[0\] 'orders/a.csv' is not a key under orders/"),
        (json.dumps({"objects": ["orders/ingest_date=2026-11-25/a.csv"]}),
         r"objects\[0\] .* is in ingest_date=2026-11-25, which is not among the run's partitions"),
        (json.dumps({"objects": [], "published": [{"partition": PART, "location": "/tmp/x"}]}),
         r"published\[0\].location '/tmp/x' is not an s3:// URI or null"),
        (json.dumps({"objects": [], "published": [{"partition": PART, "location": snapshot("run-1")}]}),
         rf"{PART} would merge onto this run's own output"),
    ],
)  # fmt: skip
def test_run__a_bad_manifest_fails_naming_the_entry(spark, tmp_path, repo_root, document, message):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + ROW1).encode()})
    (tmp_path / "staging-bucket" / "manifests").mkdir(parents=True)
    (tmp_path / "staging-bucket" / "manifests" / "bad.json").write_text(document)
    with pytest.raises(ValueError, match=message):
        run({**job_args(), "manifest_uri": "s3://staging-bucket/manifests/bad.json"}, storage, spark)


def test_run__a_published_file_spark_wrote_with_a_far_timestamp_is_merged_by_spark(spark, tmp_path, repo_root):
    """o1 and o3 end in 9999 (the Spark path's: pyarrow 17 misreads INT96 past 2262), so Spark writes their file;
    the next batch updates o1 and touches that file, which Spark, not Arrow, rewrites: o3 keeps its year."""
    far = "9999-12-31 23:59:59"
    o1 = V1.replace("2026-11-24 10:00:00,placed", f"{far},placed")
    o3 = O3.replace("2026-11-24 13:00:00,placed", f"{far},placed")
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + o1 + o3 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + V2).encode()})  # fmt: skip
    first = run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    assert first["fast_path"] == {"fast_rows": 1, "slow_lines": 2}
    second = run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
    assert second["per_partition"][PART]["rewritten_files"] == 1
    rows = curated_rows(spark, tmp_path, run_id="run-2")
    assert [(r.order_id, r.status, str(r.order_ts)) for r in rows] == [
        ("o1", "paid", "2026-11-24 10:00:00"), ("o2", "paid", "2026-11-24 11:00:00"), ("o3", "placed", far)]


def test_run__a_rewrite_that_loses_a_row_fails_the_run(spark, tmp_path, repo_root, monkeypatch):
    """The published file a batch updates is rewritten without its older version of o1; a rewrite that also drops
    another row is caught by its own count, before the row accounting."""
    import etl.arrow_write as aw

    original = aw.rewrite_without
    monkeypatch.setattr(aw, "rewrite_without", lambda storage, uri, positions, *a: original(
        storage, uri, [*positions, max(positions) + 1], *a))  # fmt: skip
    storage = make_lake(tmp_path, repo_root, {f"{PART}/a.csv": (HEADER + V1 + ROW2).encode(),
                                              f"{PART}/b.csv": (HEADER + V2).encode()})  # fmt: skip
    run_batch(spark, storage, tmp_path, "run-1", [f"{PART}/a.csv"], None)
    with pytest.raises(RuntimeError, match=r"curated file .*part-arrow-.*: rewritten with 0 rows, not the 1 left "
                                           r"after its rows that lost their key"):  # fmt: skip
        run_batch(spark, storage, tmp_path, "run-2", [f"{PART}/b.csv"], snapshot("run-1"))
