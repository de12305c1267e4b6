"""lake.local.crawler: StartCrawler infers tables and partitions from lake folders."""

from __future__ import annotations

import gzip

import pytest

from lake.local import moto_compat
from lake.local.crawler import CrawlerRuntime, hive_type
from lake.local.emulator import Emulator


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def crawl(emu, tmp_path):
    runtime = CrawlerRuntime(tmp_path, emu.endpoint_url).install()
    glue = emu.client("glue")
    glue.create_database(DatabaseInput={"Name": "lake"})
    yield glue, runtime
    runtime.join()
    runtime.uninstall()
    glue.delete_database(Name="lake")
    for crawler in glue.get_crawlers()["Crawlers"]:
        glue.delete_crawler(Name=crawler["Name"])


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _run(glue, name, timeout=30):
    glue.start_crawler(Name=name)
    assert moto_compat.wait_until(
        lambda: glue.get_crawler(Name=name)["Crawler"]["State"] == "READY", timeout=timeout
    )
    return glue.get_crawler(Name=name)["Crawler"]


def _create(glue, name, path, **extra):
    glue.create_crawler(
        Name=name, Role="r", DatabaseName="lake", Targets={"S3Targets": [{"Path": path}]}, **extra
    )


def test_start_crawler__creates_tables_with_partitions(crawl, tmp_path):
    glue, _ = crawl
    _write(
        tmp_path / "raw" / "orders" / "ingest_date=2024-01-01" / "a.csv", "id,amount,name\n1,2.5,x\n2,3.0,y\n"
    )
    _write(tmp_path / "raw" / "orders" / "ingest_date=2024-01-02" / "b.csv", "id,amount,name\n3,1.0,z\n")
    (tmp_path / "raw" / "events" / "dt=1").mkdir(parents=True)
    with gzip.open(tmp_path / "raw" / "events" / "dt=1" / "e.json.gz", "wt") as fh:
        fh.write('{"event": "click", "n": 1, "tags": ["a"]}\n')
    _create(glue, "raw-crawler", "s3://raw/", TablePrefix="raw_")
    crawler = _run(glue, "raw-crawler")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED", crawler
    orders = glue.get_table(DatabaseName="lake", Name="raw_orders")["Table"]
    columns = [(c["Name"], c["Type"]) for c in orders["StorageDescriptor"]["Columns"]]
    assert columns == [("id", "bigint"), ("amount", "double"), ("name", "string")]
    assert orders["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    assert orders["StorageDescriptor"]["Location"] == "s3://raw/orders/"
    assert orders["Parameters"]["classification"] == "csv"
    parts = glue.get_partitions(DatabaseName="lake", TableName="raw_orders")["Partitions"]
    assert sorted(p["Values"][0] for p in parts) == ["2024-01-01", "2024-01-02"]
    assert {p["StorageDescriptor"]["Location"] for p in parts} >= {"s3://raw/orders/ingest_date=2024-01-01/"}
    events = glue.get_table(DatabaseName="lake", Name="raw_events")["Table"]
    assert events["Parameters"]["compressionType"] == "gzip"
    assert ("tags", "array<string>") in [
        (c["Name"], c["Type"]) for c in events["StorageDescriptor"]["Columns"]
    ]


def test_start_crawler__second_start_while_running_raises(emu, tmp_path):
    runtime = CrawlerRuntime(tmp_path, emu.endpoint_url, min_duration_s=0.5).install()
    glue = emu.client("glue")
    glue.create_database(DatabaseInput={"Name": "busy_db"})
    glue.create_crawler(
        Name="slow", Role="r", DatabaseName="busy_db", Targets={"S3Targets": [{"Path": "s3://none/"}]}
    )
    try:
        glue.start_crawler(Name="slow")
        assert glue.get_crawler(Name="slow")["Crawler"]["State"] == "RUNNING"
        with pytest.raises(glue.exceptions.CrawlerRunningException):
            glue.start_crawler(Name="slow")
        assert moto_compat.wait_until(
            lambda: glue.get_crawler(Name="slow")["Crawler"]["State"] == "READY", 10
        )
        assert glue.get_crawler(Name="slow")["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
    finally:
        runtime.join()
        runtime.uninstall()


def test_start_crawler__unreadable_file_fails_naming_it(crawl, tmp_path):
    glue, _ = crawl
    _write(tmp_path / "bad" / "t" / "x.parquet", "not parquet at all")
    _create(glue, "bad-crawler", "s3://bad/")
    crawler = _run(glue, "bad-crawler")
    assert crawler["LastCrawl"]["Status"] == "FAILED"
    assert "x.parquet" in crawler["LastCrawl"]["ErrorMessage"]


def test_start_crawler__log_policy_keeps_schema_but_adds_partitions(crawl, tmp_path):
    glue, _ = crawl
    _write(tmp_path / "cur" / "sales" / "dt=1" / "a.csv", "id\n1\n")
    _create(
        glue,
        "log-crawler",
        "s3://cur/",
        SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
    )
    _run(glue, "log-crawler")
    _write(tmp_path / "cur" / "sales" / "dt=2" / "b.csv", "id,extra\n2,x\n")
    assert _run(glue, "log-crawler")["LastCrawl"]["Status"] == "SUCCEEDED"
    table = glue.get_table(DatabaseName="lake", Name="sales")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id"]
    assert len(glue.get_partitions(DatabaseName="lake", TableName="sales")["Partitions"]) == 2


def test_hive_type__maps_duckdb_types():
    assert hive_type("DECIMAL(10, 2)") == "decimal(10,2)"
    assert hive_type("TIMESTAMP WITH TIME ZONE") == "timestamp"
    assert hive_type('STRUCT(a BIGINT, "b" VARCHAR[])') == "struct<a:bigint,b:array<string>>"
