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
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _run(glue, name, timeout=30):
    glue.start_crawler(Name=name)
    assert moto_compat.wait_until(
        lambda: glue.get_crawler(Name=name)["Crawler"]["State"] == "READY", timeout=timeout
    )
    return glue.get_crawler(Name=name)["Crawler"]


def _create(glue, name, path, database="lake", **extra):
    glue.create_crawler(
        Name=name, Role="r", DatabaseName=database, Targets={"S3Targets": [{"Path": path}]}, **extra
    )


def _crawl_log(emu, crawler, level="WARN"):
    """The last crawl's lines of one level, read where LastCrawl points: CloudWatch Logs group and stream."""
    last = crawler["LastCrawl"]
    logs = emu.client("logs")
    try:
        events = logs.get_log_events(logGroupName=last["LogGroup"], logStreamName=last["LogStream"])["events"]
    except logs.exceptions.ResourceNotFoundException:
        return []
    prefix = f"[{last['MessagePrefix']}] {level} : "
    return [e["message"].removeprefix(prefix) for e in events if e["message"].startswith(prefix)]


def _columns(glue, table):
    return [(c["Name"], c["Type"]) for c in glue.get_table(DatabaseName="lake", Name=table)["Table"][
        "StorageDescriptor"]["Columns"]]  # fmt: skip


def _partition_values(glue, table):
    return sorted(p["Values"][0] for p in glue.get_partitions(DatabaseName="lake", TableName=table)["Partitions"])


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


def test_start_crawler__folder_of_unclassifiable_objects_succeeds_without_table(crawl, emu, tmp_path):
    glue, _ = crawl
    _write(tmp_path / "bad" / "t" / "x.parquet", "not parquet at all")
    _create(glue, "bad-crawler", "s3://bad/")
    crawler = _run(glue, "bad-crawler")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert "ErrorMessage" not in crawler["LastCrawl"]
    assert glue.get_tables(DatabaseName="lake")["TableList"] == []
    (line,) = _crawl_log(emu, crawler)
    assert line.startswith(
        "s3://bad/t/x.parquet: classification UNKNOWN, compression none (cannot read: InvalidInputException: "
    )
    assert line.endswith("no object in its folder could be classified, table t not created")


def test_start_crawler__catalog_error_fails_the_crawl_with_its_message(crawl, emu, tmp_path):
    glue, _ = crawl
    _write(tmp_path / "cat" / "t" / "dt=1" / "a.csv", "id,qty\n1,2\n")
    _create(glue, "no-db-crawler", "s3://cat/", database="missing_db")
    crawler = _run(glue, "no-db-crawler")
    assert crawler["LastCrawl"]["Status"] == "FAILED"
    assert "EntityNotFoundException" in crawler["LastCrawl"]["ErrorMessage"]
    assert _crawl_log(emu, crawler, "ERROR") == [crawler["LastCrawl"]["ErrorMessage"]]


def test_start_crawler__log_policy_keeps_schema_but_adds_partitions(crawl, tmp_path):
    glue, _ = crawl
    _write(tmp_path / "cur" / "sales" / "dt=1" / "a.csv", "id,qty\n1,2\n")
    _create(
        glue,
        "log-crawler",
        "s3://cur/",
        SchemaChangePolicy={"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
    )
    _run(glue, "log-crawler")
    _write(tmp_path / "cur" / "sales" / "dt=2" / "b.csv", "id,qty,extra\n2,3,x\n")
    assert _run(glue, "log-crawler")["LastCrawl"]["Status"] == "SUCCEEDED"
    table = glue.get_table(DatabaseName="lake", Name="sales")["Table"]
    assert [c["Name"] for c in table["StorageDescriptor"]["Columns"]] == ["id", "qty"]
    assert len(glue.get_partitions(DatabaseName="lake", TableName="sales")["Partitions"]) == 2


# -- odd objects beside good CSVs in a new partition ------------------------------------------------------------
GOOD = "id,amount,name\n1,2.5,x\n2,3.0,y\n"
BASE_COLUMNS = [("id", "bigint"), ("amount", "double"), ("name", "string")]
NEW = "ingest_date=2024-01-02"


def _truncated_gzip() -> bytes:
    rows = "".join(f"{i},{i}.5,n{i}\n" for i in range(2000))
    data = gzip.compress(("id,amount,name\n" + rows).encode())
    return data[: len(data) // 2]


ODD_OBJECTS = {
    # name: (object, columns after the crawl, start of its WARN line or None when it joins the table)
    "corrupt.csv.gz": (
        _truncated_gzip(),
        BASE_COLUMNS,
        "classification csv, compression gzip (gzip stream ends early (truncated object); classified from its "
        "first ",
    ),
    "windows1252.csv": ("id,amount,name\n3,1.5,café\n4,2.5,Müller\n".encode("cp1252"), BASE_COLUMNS, None),
    "empty.csv": (b"", BASE_COLUMNS, "classification UNKNOWN, compression none (no data (empty object))"),
    "header_only.csv": (
        "id,amount,name\n",
        BASE_COLUMNS,
        "classification UNKNOWN, compression none (1 row(s) of 3 column(s); the CSV classifier needs at least "
        "two of each); not added to table orders",
    ),
    "single_column.csv": (
        "id\n5\n6\n",
        BASE_COLUMNS,
        "classification UNKNOWN, compression none (3 row(s) of 1 column(s)",
    ),
    "reordered.csv": ("name,id,amount\nq,7,1.5\n", BASE_COLUMNS, None),
    "extra_column.csv": ("id,amount,name,channel\n8,1.5,e,web\n", [*BASE_COLUMNS, ("channel", "string")], None),
    "truncated_line.csv": ("id,amount,name\n9,1.5,t\n10,2", BASE_COLUMNS, None),
    "stray.json": (
        '{"event": "click", "n": 1}\n',
        BASE_COLUMNS,
        "classification json, compression none; not added to table orders (classification csv, compression "
        "none): a table only combines objects of the same format and compression type",
    ),
}


def _land_new_partition(glue, tmp_path, *odd_names):
    orders = tmp_path / "raw" / "orders"
    _write(orders / "ingest_date=2024-01-01" / "a.csv", GOOD)
    _create(glue, "odd-crawler", "s3://raw/")
    assert _run(glue, "odd-crawler")["LastCrawl"]["Status"] == "SUCCEEDED"
    _write(orders / NEW / "good.csv", "id,amount,name\n11,4.5,g\n")
    for name in odd_names:
        _write(orders / NEW / name, ODD_OBJECTS[name][0])
    return _run(glue, "odd-crawler")


@pytest.mark.parametrize("name", list(ODD_OBJECTS))
def test_start_crawler__odd_object_beside_good_csvs_in_new_partition(crawl, emu, tmp_path, name):
    glue, _ = crawl
    _, columns, warning = ODD_OBJECTS[name]
    crawler = _land_new_partition(glue, tmp_path, name)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert "ErrorMessage" not in crawler["LastCrawl"]
    assert _columns(glue, "orders") == columns
    assert _partition_values(glue, "orders") == ["2024-01-01", "2024-01-02"]
    table = glue.get_table(DatabaseName="lake", Name="orders")["Table"]
    assert (table["Parameters"]["classification"], table["Parameters"]["compressionType"]) == ("csv", "none")
    assert [t["Name"] for t in glue.get_tables(DatabaseName="lake")["TableList"]] == ["orders"]
    lines = _crawl_log(emu, crawler)
    if warning is None:
        assert lines == []
    else:
        (line,) = lines
        assert line.startswith(f"s3://raw/orders/{NEW}/{name}: {warning}")


def test_start_crawler__batch_of_odd_objects_skips_the_unclassifiable_and_keeps_the_partition(crawl, emu, tmp_path):
    """The issue's batch: the crawl used to FAIL on the corrupt gzip, then on the Windows-1252 file."""
    glue, _ = crawl
    crawler = _land_new_partition(glue, tmp_path, *ODD_OBJECTS)
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert _columns(glue, "orders") == [*BASE_COLUMNS, ("channel", "string")]
    assert _partition_values(glue, "orders") == ["2024-01-01", "2024-01-02"]
    logged = sorted(line.split(": ", 1)[0].rsplit("/", 1)[1] for line in _crawl_log(emu, crawler))
    assert logged == ["corrupt.csv.gz", "empty.csv", "header_only.csv", "single_column.csv", "stray.json"]


def test_start_crawler__partition_of_only_unclassifiable_objects_is_not_registered(crawl, emu, tmp_path):
    glue, _ = crawl
    _land_new_partition(glue, tmp_path)
    _write(tmp_path / "raw" / "orders" / "ingest_date=2024-01-03" / "empty.csv", b"")
    crawler = _run(glue, "odd-crawler")
    assert crawler["LastCrawl"]["Status"] == "SUCCEEDED"
    assert _partition_values(glue, "orders") == ["2024-01-01", "2024-01-02"]
    assert _crawl_log(emu, crawler) == [
        "s3://raw/orders/ingest_date=2024-01-03/empty.csv: classification UNKNOWN, compression none "
        "(no data (empty object)); not added to table orders"
    ]


def test_hive_type__maps_duckdb_types():
    assert hive_type("DECIMAL(10, 2)") == "decimal(10,2)"
    assert hive_type("TIMESTAMP WITH TIME ZONE") == "timestamp"
    assert hive_type('STRUCT(a BIGINT, "b" VARCHAR[])') == "struct<a:bigint,b:array<string>>"
