"""Make moto's Glue `StartCrawler` really crawl the lake folders (DuckDB infers the schemas).

`CrawlerRuntime(root, endpoint_url).install()` hooks `moto.glue.models.FakeCrawler`: a start runs a
background crawl (RUNNING -> STOPPING -> READY) that reads each S3 target (a lake folder), makes one
table per dataset folder (the first path segment after the target; TablePrefix prepended) with
Glue/Hive column types, Hive-style partition keys, location, classification and Athena-compatible
SerDe/Input/OutputFormat, and registers its partitions. A start while a crawl runs raises
CrawlerRunningException. LastCrawl reports SUCCEEDED/FAILED, with ErrorMessage on FAILED.

Objects the crawler cannot read or classify do not fail the crawl; they are left out of the table, as AWS
documents for the real crawler:

- Each object is classified on its own. "If no classifier returns a certainty greater than 0.0, AWS Glue
  returns the default classification string of UNKNOWN", and "To be classified as CSV, the table schema
  must have at least two columns and two rows of data" (built-in classifiers, GZIP among the compressed
  formats that can be classified):
  https://docs.aws.amazon.com/glue/latest/dg/add-classifier.html
  So a zero-byte object, a header-only CSV, a single-column CSV or an object no reader understands is
  classified UNKNOWN here. Only the beginning of an object is sampled to classify it ("the crawler reads
  either the first 1,000 records or the first megabyte of each file"):
  https://repost.aws/knowledge-center/glue-crawler-detect-schema
  A truncated gzip object is therefore classified from the part that decompresses; an object that is not
  valid UTF-8 is read with the invalid bytes replaced (the CSV classifier rules name no encoding).
- Objects are grouped into a table only if their data is compatible: "whether the data is of the same
  format (for example, JSON), the same compression type (for example, GZIP) ... With this option
  [CombineCompatibleSchemas], the crawler still considers data compatibility":
  https://docs.aws.amazon.com/glue/latest/dg/crawler-grouping-policy.html
  The table takes the format and compression of most of its objects. UNKNOWN objects and objects of
  another format or compression type (a stray .json among CSVs, a .csv.gz among plain CSVs) do not
  change its columns and do not register partitions. The real crawler "creates multiple tables when your
  source data files don't use these same configurations", and its logs identify the files that cause it
  (https://repost.aws/knowledge-center/glue-crawler-multiple-tables); AWS does not document the names of
  those extra tables, so this emulator creates none and records each left-out object in the crawl's log
  instead: CloudWatch Logs group `LastCrawl.LogGroup`, stream `LastCrawl.LogStream`, each line starting
  with `[LastCrawl.MessagePrefix]`, as for a real crawl
  (https://docs.aws.amazon.com/glue/latest/webapi/API_LastCrawlInfo.html).
- Compatible objects with other columns are merged by name: a reordered-columns object changes nothing,
  and an extra column is appended when the schema change policy updates the table.
"""

from __future__ import annotations

import contextlib
import csv
import fnmatch
import io
import itertools
import logging
import re
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.storage import LocalStorage, join_uri

_log = logging.getLogger(__name__)
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
UNKNOWN = "UNKNOWN"
SAMPLE_BYTES = 1024 * 1024  # the crawler reads "the first 1,000 records or the first megabyte of each file"
SAMPLE_RECORDS = 1000
_CSV_DELIMITERS = ",|\t;\x01"  # the built-in CSV classifier's delimiters
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
    """(classification, compressionType) from a file name; classification None: no classifier handles it."""
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
        # null_padding: a short (truncated) last row would otherwise make the sniffer see one column.
        "csv": "read_csv(?, auto_detect=true, hive_partitioning=false, null_padding=true)",
        "json": "read_json_auto(?, hive_partitioning=false)",
        "parquet": "read_parquet(?, hive_partitioning=false)",
    }
    try:
        with duckdb.connect() as con:
            rows = con.execute(f"DESCRIBE SELECT * FROM {readers[classification]}", [str(path)]).fetchall()
    except Exception as exc:
        raise CrawlError(f"cannot read {path}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc
    return [(str(r[0]).lower(), hive_type(str(r[1]))) for r in rows]


@dataclass(frozen=True)
class Head:
    """The beginning of an object, decompressed: what the classifiers sample."""

    data: bytes
    whole: bool  # the sample is the entire object
    problem: str | None = None  # why reading stopped before the end (a corrupt or truncated gzip stream)


def read_head(path: Path, compression: str) -> Head:
    """Up to SAMPLE_BYTES of an object's content; a broken gzip stream yields what decompressed before it."""
    with path.open("rb") as fh:
        if compression != "gzip" or path.stat().st_size == 0:
            data = fh.read(SAMPLE_BYTES + 1)
            return Head(data[:SAMPLE_BYTES], len(data) <= SAMPLE_BYTES)
        stream = zlib.decompressobj(zlib.MAX_WBITS | 16)
        out = bytearray()
        while len(out) <= SAMPLE_BYTES and not stream.eof and (chunk := fh.read(64 * 1024)):
            try:
                out += stream.decompress(chunk)
            except zlib.error as exc:
                return Head(bytes(out[:SAMPLE_BYTES]), False, f"corrupt gzip stream ({exc})")
        if len(out) > SAMPLE_BYTES:
            return Head(bytes(out[:SAMPLE_BYTES]), False)
        if not stream.eof:
            return Head(bytes(out), False, "gzip stream ends early (truncated object)")
        return Head(bytes(out), not stream.unused_data and not fh.read(1))


@dataclass(frozen=True)
class Classified:
    """An object's classification (UNKNOWN when no built-in classifier recognises it) and its columns."""

    path: Path
    classification: str
    compression: str
    columns: tuple[tuple[str, str], ...] = ()
    note: str = ""  # why it is UNKNOWN, or how it was read when the whole object could not be


def csv_shape(sample: bytes) -> tuple[int, int]:
    """(records, columns of the first record) in a CSV sample, with the delimiter the first line uses most."""
    text = sample.decode("utf-8", errors="replace")
    first = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(_CSV_DELIMITERS, key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    records = [r for r in itertools.islice(reader, SAMPLE_RECORDS) if any(f.strip() for f in r)]
    return len(records), len(records[0]) if records else 0


def classify(path: Path) -> Classified:
    """Classify one object as the built-in classifiers do; never raises for unreadable content."""
    classification, compression = file_format(path)
    if classification is None:
        return Classified(path, UNKNOWN, compression, note="no built-in classifier handles this file type")
    if classification == "parquet":  # the Parquet classifier reads the schema at the end of the file
        try:
            return Classified(path, classification, compression, tuple(infer_columns(path, classification)))
        except CrawlError as exc:
            return Classified(path, UNKNOWN, compression, note=_reason(exc))
    head = read_head(path, compression)
    sample = head.data if head.whole else head.data[: head.data.rfind(b"\n") + 1]  # whole records only
    if not sample.strip():
        return Classified(path, UNKNOWN, compression, note=head.problem or "no data (empty object)")
    if classification == "csv":
        rows, columns = csv_shape(sample)
        if rows < 2 or columns < 2:
            note = f"{rows} row(s) of {columns} column(s); the CSV classifier needs at least two of each"
            return Classified(path, UNKNOWN, compression, note=note)
    try:
        return Classified(path, classification, compression, tuple(infer_columns(path, classification)))
    except CrawlError as exc:
        whole_object_error = _reason(exc)
    try:
        columns = _infer_sample(sample, classification)
    except CrawlError:
        return Classified(path, UNKNOWN, compression, note=whole_object_error)
    note = f"{head.problem or whole_object_error}; classified from its first {len(sample)} bytes"
    return Classified(path, classification, compression, tuple(columns), note)


def _reason(exc: CrawlError) -> str:
    """The reader's error without the local path (the log line names the object by its S3 URI)."""
    cause = exc.__cause__
    return f"cannot read: {type(cause).__name__}: {str(cause).splitlines()[0]}" if cause else str(exc)


def _infer_sample(sample: bytes, classification: str) -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"sample.{classification}"
        path.write_text(sample.decode("utf-8", errors="replace"), encoding="utf-8")
        return infer_columns(path, classification)


@dataclass
class TableScan:
    name: str
    location: str
    classification: str
    compression: str
    columns: list[tuple[str, str]] = field(default_factory=list)
    partition_keys: list[str] = field(default_factory=list)
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)  # values -> location


@dataclass(frozen=True)
class SkippedObject:
    """An object left out of its table: classified UNKNOWN, or data not compatible with the table's."""

    uri: str
    table: str
    classification: str
    compression: str
    table_format: tuple[str, str] | None  # the table's (classification, compression); None: no table
    note: str = ""

    @property
    def message(self) -> str:
        found = f"classification {self.classification}, compression {self.compression}"
        if self.note:
            found += f" ({self.note})"
        if self.table_format is None:
            return f"{self.uri}: {found}; no object in its folder could be classified, table {self.table} not created"
        if self.classification == UNKNOWN:
            return f"{self.uri}: {found}; not added to table {self.table}"
        fmt, compression = self.table_format
        return (
            f"{self.uri}: {found}; not added to table {self.table} (classification {fmt}, compression "
            f"{compression}): a table only combines objects of the same format and compression type"
        )


@dataclass
class TargetScan:
    tables: list[TableScan] = field(default_factory=list)
    skipped: list[SkippedObject] = field(default_factory=list)


def table_name(raw: str, prefix: str = "") -> str:
    return prefix + re.sub(r"[^0-9a-z_]+", "_", raw.lower()).strip("_")


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(("_", ".")) for part in rel.parts)


def scan_target(storage: LocalStorage, target: str, exclusions: list[str], prefix: str = "") -> TargetScan:
    """One TableScan per dataset folder under an S3 target path, and the objects left out of them."""
    base = storage.local_path(target)
    result = TargetScan()
    if not base.is_dir():
        return result
    groups: dict[str, list[tuple[Path, Path]]] = {}
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        rel = path.relative_to(base)
        if _is_hidden(rel) or any(fnmatch.fnmatch(rel.as_posix(), pat) for pat in exclusions):
            continue
        direct = len(rel.parts) == 1 or "=" in rel.parts[0]
        key = "" if direct else rel.parts[0]
        groups.setdefault(key, []).append((path, rel if direct else Path(*rel.parts[1:])))
    for folder, files in groups.items():
        name = table_name(folder or base.name, prefix)
        location = join_uri(target, folder) + "/" if folder else target.rstrip("/") + "/"
        objects = [(classify(path), rel) for path, rel in files]
        fmt = _table_format([obj for obj, _ in objects])
        scan = TableScan(name, location, *fmt) if fmt else None
        for obj, rel in objects:
            if scan is not None and (obj.classification, obj.compression) == fmt:
                _add_file(scan, obj, rel)
            else:
                uri = join_uri(target, obj.path.relative_to(base).as_posix())
                result.skipped.append(SkippedObject(uri, name, obj.classification, obj.compression, fmt, obj.note))
        if scan is not None:
            result.tables.append(scan)
    return result


def _table_format(objects: list[Classified]) -> tuple[str, str] | None:
    """The (classification, compression) most objects share; on a tie, that of the first object."""
    counts = Counter((o.classification, o.compression) for o in objects if o.classification != UNKNOWN)
    return counts.most_common(1)[0][0] if counts else None


def _add_file(scan: TableScan, obj: Classified, rel: Path) -> None:
    segments = [p.split("=", 1) for p in rel.parts[:-1] if "=" in p]
    keys = [k.lower() for k, _ in segments]
    if not scan.partition_keys and keys:
        scan.partition_keys = keys
    if keys and keys == scan.partition_keys:
        values = tuple(v for _, v in segments)
        scan.partitions.setdefault(values, join_uri(scan.location, *(f"{k}={v}" for k, v in segments)) + "/")
    known = {c for c, _ in scan.columns}
    for column, kind in obj.columns:
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
        skipped: list[SkippedObject] = []
        try:
            report = self.crawl_once(crawler)
            skipped = report.skipped if report is not None else []  # a benchmark's stand-in returns None
            status, error = "SUCCEEDED", None
        except Exception as exc:
            status, error = (
                "FAILED",
                str(exc) if isinstance(exc, CrawlError) else f"{type(exc).__name__}: {exc}",
            )
        crawl.local_state = "STOPPING"
        self._write_log(crawl, skipped, error)
        time.sleep(min(0.05, self.min_duration_s))
        crawl.error_message = error
        crawl.end_time = datetime.now(UTC)
        crawl.local_status = status
        crawl.status = "COMPLETED" if status == "SUCCEEDED" else "FAILED"
        crawler.crawl_elapsed_time = 0
        crawl.local_state = "DONE"

    def _client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def _write_log(self, crawl: Any, skipped: list[SkippedObject], error: str | None) -> None:
        """The crawl's warnings and error, to CloudWatch Logs where LastCrawl points (and this module's logger)."""
        lines = [f"[{crawl.message_prefix}] WARN : {s.message}" for s in skipped]
        if error:
            lines.append(f"[{crawl.message_prefix}] ERROR : {error}")
        crawl.local_log = lines
        if not lines:
            return
        for line in lines:
            _log.info("%s %s", crawl.log_stream, line)  # the log stream is where operators read it
        from botocore.exceptions import BotoCoreError, ClientError

        logs = self._client("logs")
        try:
            for create, kwargs in (
                (logs.create_log_group, {"logGroupName": crawl.log_group}),
                (logs.create_log_stream, {"logGroupName": crawl.log_group, "logStreamName": crawl.log_stream}),
            ):
                with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
                    create(**kwargs)
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line} for line in lines]
            logs.put_log_events(logGroupName=crawl.log_group, logStreamName=crawl.log_stream, logEvents=events)
        except (BotoCoreError, ClientError) as exc:
            _log.warning("crawl log not written to CloudWatch Logs: %s", exc)

    def crawl_once(self, crawler: Any) -> TargetScan:
        """Scan every S3 target and write tables and partitions to the catalog; return what was left out."""
        glue = self._client("glue")
        update = (crawler.schema_change_policy or {}).get("UpdateBehavior", "UPDATE_IN_DATABASE")
        new_only = (crawler.recrawl_policy or {}).get("RecrawlBehavior") == "CRAWL_NEW_FOLDERS_ONLY"
        report = TargetScan()
        for target in (crawler.targets or {}).get("S3Targets", []):
            scan = scan_target(self.storage, target["Path"], target.get("Exclusions", []), crawler.table_prefix or "")
            for table in scan.tables:
                self._write(glue, crawler, table, update, new_only)
            report.tables += scan.tables
            report.skipped += scan.skipped
        return report

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
