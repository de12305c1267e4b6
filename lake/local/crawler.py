"""Make moto's Glue `StartCrawler` really crawl the lake folders (DuckDB infers the schemas).

`CrawlerRuntime(root, endpoint_url).install()` hooks `moto.glue.models.FakeCrawler`: a start runs a
background crawl (RUNNING -> STOPPING -> READY) that reads each S3 target (a lake folder), makes one
table per dataset folder (the first path segment after the target; TablePrefix prepended) with
Glue/Hive column types, Hive-style partition keys, location, classification and Athena-compatible
SerDe/Input/OutputFormat, and registers its partitions. A start while a crawl runs raises
CrawlerRunningException. LastCrawl reports SUCCEEDED/FAILED (ErrorMessage names the unreadable file).
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.storage import LocalStorage, join_uri

_install_lock = threading.Lock()
_active: CrawlerRuntime | None = None
_originals: dict[str, Any] = {}

FORMATS = {
    "csv": {
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
            "Parameters": {"field.delim": ","},
        },
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    },
    "json": {
        "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe", "Parameters": {}},
        "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
    },
    "parquet": {
        "SerdeInfo": {
            "SerializationLibrary": "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
            "Parameters": {"serialization.format": "1"},
        },
        "InputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
        "OutputFormat": "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
    },
}
_DUCKDB_TO_HIVE = {
    "BIGINT": "bigint",
    "INTEGER": "int",
    "SMALLINT": "smallint",
    "TINYINT": "tinyint",
    "UBIGINT": "bigint",
    "UINTEGER": "bigint",
    "DOUBLE": "double",
    "FLOAT": "float",
    "BOOLEAN": "boolean",
    "VARCHAR": "string",
    "DATE": "date",
    "BLOB": "binary",
    "HUGEINT": "decimal(38,0)",
}


class CrawlError(Exception):
    pass


def hive_type(duckdb_type: str) -> str:
    """DuckDB column type -> Glue/Hive type string."""
    t = duckdb_type.strip()
    upper = t.upper()
    if upper in _DUCKDB_TO_HIVE:
        return _DUCKDB_TO_HIVE[upper]
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    if upper.startswith("DECIMAL"):
        return t.lower().replace(" ", "")
    if upper.endswith("[]"):
        return f"array<{hive_type(t[:-2])}>"
    if upper.startswith("STRUCT("):
        fields = _split_top_level(t[len("STRUCT(") : -1])
        parts = []
        for f in fields:
            name, _, ftype = f.strip().partition(" ")
            parts.append(f"{name.strip(chr(34))}:{hive_type(ftype)}")
        return f"struct<{','.join(parts)}>"
    return "string"


def _split_top_level(text: str) -> list[str]:
    depth, current, out = 0, "", []
    for ch in text:
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    return [*out, current] if current.strip() else out


def file_format(path: Path) -> tuple[str | None, str]:
    """(classification, compressionType) from a file name; classification None = not a data file."""
    name = path.name.lower()
    compression = "gzip" if name.endswith(".gz") else "none"
    stem = name.removesuffix(".gz")
    if stem.endswith((".csv", ".tsv", ".txt")):
        return "csv", compression
    if stem.endswith((".json", ".jsonl", ".ndjson")):
        return "json", compression
    if stem.endswith(".parquet"):
        return "parquet", compression
    return None, compression


def infer_columns(path: Path, classification: str) -> list[tuple[str, str]]:
    """[(column, hive type)] of one data file. Raises CrawlError naming the file."""
    import duckdb

    readers = {
        "csv": "read_csv(?, auto_detect=true, hive_partitioning=false)",
        "json": "read_json_auto(?, hive_partitioning=false)",
        "parquet": "read_parquet(?, hive_partitioning=false)",
    }
    try:
        with duckdb.connect() as con:
            rows = con.execute(f"DESCRIBE SELECT * FROM {readers[classification]}", [str(path)]).fetchall()
    except Exception as exc:
        raise CrawlError(f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    return [(str(r[0]).lower(), hive_type(str(r[1]))) for r in rows]


@dataclass
class TableScan:
    name: str
    location: str
    classification: str
    compression: str
    columns: list[tuple[str, str]] = field(default_factory=list)
    partition_keys: list[str] = field(default_factory=list)
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)  # values -> location


def table_name(raw: str, prefix: str = "") -> str:
    return prefix + re.sub(r"[^0-9a-z_]+", "_", raw.lower()).strip("_")


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.parts)


def scan_target(
    storage: LocalStorage, target: str, exclusions: list[str], prefix: str = ""
) -> list[TableScan]:
    """One TableScan per dataset folder under an S3 target path."""
    base = storage.local_path(target)
    if not base.is_dir():
        return []
    groups: dict[str, list[tuple[Path, Path]]] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        if _is_hidden(rel) or any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in exclusions):
            continue
        if file_format(path)[0] is None:
            continue
        direct = len(rel.parts) == 1 or "=" in rel.parts[0]
        key = "" if direct else rel.parts[0]
        groups.setdefault(key, []).append((path, rel if direct else Path(*rel.parts[1:])))
    tables = []
    for folder, files in groups.items():
        name = folder or base.name
        location = join_uri(target, folder) + "/" if folder else target.rstrip("/") + "/"
        classification, compression = file_format(files[0][0])
        scan = TableScan(table_name(name, prefix), location, classification or "csv", compression)
        for path, rel in files:
            _add_file(scan, path, rel)
        tables.append(scan)
    return tables


def _add_file(scan: TableScan, path: Path, rel: Path) -> None:
    segments = [p.split("=", 1) for p in rel.parts[:-1] if "=" in p]
    keys = [k.lower() for k, _ in segments]
    if not scan.partition_keys and keys:
        scan.partition_keys = keys
    if keys and keys == scan.partition_keys:
        values = tuple(v for _, v in segments)
        scan.partitions.setdefault(values, join_uri(scan.location, *(f"{k}={v}" for k, v in segments)) + "/")
    known = {c for c, _ in scan.columns}
    for column, kind in infer_columns(path, file_format(path)[0] or scan.classification):
        if column not in known and column not in scan.partition_keys:
            scan.columns.append((column, kind))
            known.add(column)


def table_input(scan: TableScan, crawler_name: str) -> dict[str, Any]:
    fmt = FORMATS[scan.classification]
    parameters = {
        "classification": scan.classification,
        "compressionType": scan.compression,
        "typeOfData": "file",
        "UPDATED_BY_CRAWLER": crawler_name,
    }
    serde = {
        "SerializationLibrary": fmt["SerdeInfo"]["SerializationLibrary"],
        "Parameters": dict(fmt["SerdeInfo"]["Parameters"]),
    }
    if scan.classification == "csv":
        parameters.update({"skip.header.line.count": "1", "delimiter": ","})
    return {
        "Name": scan.name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": parameters,
        "PartitionKeys": [{"Name": k, "Type": "string"} for k in scan.partition_keys],
        "StorageDescriptor": {
            "Columns": [{"Name": c, "Type": t} for c, t in scan.columns],
            "Location": scan.location,
            "InputFormat": fmt["InputFormat"],
            "OutputFormat": fmt["OutputFormat"],
            "SerdeInfo": serde,
            "Compressed": scan.compression != "none",
            "Parameters": dict(parameters),
        },
    }


class CrawlerRuntime:
    """Runs crawls for crawlers started through the emulator. One is installed per process at a time."""

    def __init__(self, root: Path, endpoint_url: str, min_duration_s: float = 0.0) -> None:
        self.root = Path(root)
        self.storage = LocalStorage(self.root)
        self.endpoint_url = endpoint_url
        self.min_duration_s = min_duration_s  # simulate AWS's 1-2 minute crawls in benchmarks
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def install(self) -> CrawlerRuntime:
        global _active
        from moto.glue import models

        with _install_lock:
            if not _originals:
                _originals["start_crawler"] = models.FakeCrawler.start_crawler
                _originals["as_dict"] = models.FakeCrawler.as_dict
                models.FakeCrawler.start_crawler = _hooked_start_crawler
                models.FakeCrawler.as_dict = _hooked_as_dict
            _active = self
        return self

    def uninstall(self) -> None:
        global _active
        with _install_lock:
            if _active is self:
                _active = None

    def join(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def start(self, crawler: Any) -> None:
        from moto.glue.exceptions import CrawlerRunningException
        from moto.glue.models import FakeCrawl

        with self._lock:
            if crawler.crawls and getattr(crawler.crawls[-1], "local_state", "DONE") in (
                "RUNNING",
                "STOPPING",
            ):
                raise CrawlerRunningException(f"Crawler with name {crawler.name} has already started")
            crawl = FakeCrawl(crawler.name)
            crawl.local_state = "RUNNING"
            crawl.local_status = None
            crawl.error_message = None
            crawler.crawls.append(crawl)
        thread = threading.Thread(
            target=self._crawl, args=(crawler, crawl), name=f"crawl-{crawler.name}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _crawl(self, crawler: Any, crawl: Any) -> None:
        # Like AWS, the catalog changes at the end of the crawl: a simulated crawl duration passes first.
        time.sleep(self.min_duration_s)
        try:
            self.crawl_once(crawler)
            status, error = "SUCCEEDED", None
        except Exception as exc:
            status, error = (
                "FAILED",
                str(exc) if isinstance(exc, CrawlError) else f"{type(exc).__name__}: {exc}",
            )
        crawl.local_state = "STOPPING"
        time.sleep(min(0.05, self.min_duration_s))
        crawl.error_message = error
        crawl.end_time = datetime.now(UTC)
        crawl.local_status = status
        crawl.status = "COMPLETED" if status == "SUCCEEDED" else "FAILED"
        crawler.crawl_elapsed_time = 0
        crawl.local_state = "DONE"

    def crawl_once(self, crawler: Any) -> None:
        """Scan every S3 target and write tables and partitions to the catalog."""
        import boto3

        glue = boto3.client(
            "glue",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        update = (crawler.schema_change_policy or {}).get("UpdateBehavior", "UPDATE_IN_DATABASE")
        new_only = (crawler.recrawl_policy or {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY"
        for target in (crawler.targets or {}).get("S3Targets", []):
            for scan in scan_target(
                self.storage, target["Path"], target.get("Exclusions", []), crawler.table_prefix or ""
            ):
                self._write(glue, crawler, scan, update, new_only)

    def _write(self, glue: Any, crawler: Any, scan: TableScan, update: str, new_only: bool) -> None:
        db = crawler.database_name
        wanted = table_input(scan, crawler.name)
        try:
            existing = glue.get_table(DatabaseName=db, Name=scan.name)["Table"]
        except glue.exceptions.EntityNotFoundException:
            existing = None
        if existing is None:
            glue.create_table(DatabaseName=db, TableInput=wanted)
        elif update == "UPDATE_IN_DATABASE" and not new_only:
            glue.update_table(DatabaseName=db, TableInput=wanted)
        sd = (existing or wanted)["StorageDescriptor"]
        known = {
            tuple(p["Values"])
            for page in glue.get_paginator("get_partitions").paginate(DatabaseName=db, TableName=scan.name)
            for p in page["Partitions"]
        }
        new = [
            {"Values": list(values), "StorageDescriptor": {**_partition_sd(sd), "Location": location}}
            for values, location in sorted(scan.partitions.items())
            if values not in known
        ]
        for i in range(0, len(new), 100):
            glue.batch_create_partition(
                DatabaseName=db, TableName=scan.name, PartitionInputList=new[i : i + 100]
            )


def _partition_sd(sd: dict[str, Any]) -> dict[str, Any]:
    keys = ("Columns", "InputFormat", "OutputFormat", "SerdeInfo", "Compressed", "Parameters")
    return {k: sd[k] for k in keys if k in sd}


# Patched onto moto.glue.models.FakeCrawler (same signatures as moto 5.2.5's methods).
def _hooked_start_crawler(self: Any) -> None:
    runtime = _active
    if runtime is None:
        return _originals["start_crawler"](self)
    runtime.start(self)
    return None


def _hooked_as_dict(self: Any) -> dict[str, Any]:
    data = _originals["as_dict"](self)
    local = [c for c in self.crawls if hasattr(c, "local_state")]
    if not local:
        return data
    current = local[-1]
    data["State"] = {"RUNNING": "RUNNING", "STOPPING": "STOPPING"}.get(current.local_state, "READY")
    finished = [c for c in local if c.local_state == "DONE"]
    if not finished:
        data.pop("LastCrawl", None)
        return data
    last = finished[-1]
    data["LastCrawl"] = {
        "Status": last.local_status,
        "LogGroup": last.log_group,
        "LogStream": last.log_stream,
        "MessagePrefix": last.message_prefix,
        "StartTime": last.start_time,
    }
    if last.error_message:
        data["LastCrawl"]["ErrorMessage"] = last.error_message
    return data
