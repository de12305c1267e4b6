"""Driver-side helpers that look at raw objects without Spark: list partitions, read a file's first line.

Only the first bytes of an object are fetched (a ranged GET on S3), so planning a run costs one small
request per raw object, never a scan of the whole raw zone.
"""

from __future__ import annotations

import codecs
import csv
import json
import zlib
from dataclasses import dataclass
from typing import Any

from etl.spec import DatasetSpec, normalise_column_name
from etl.storage import LocalStorage, S3Storage, Storage, join_uri

HEAD_BYTES = 256 * 1024
BOM = "\ufeff"


@dataclass(frozen=True)
class RawObject:
    """One raw object of a run: its s3:// URI and the partition (`key=value`) it belongs to."""

    uri: str
    partition: str

    @property
    def partition_value(self) -> str:
        return self.partition.split("=", 1)[1]


def parse_partitions(text: str | list[str], partition_key: str) -> list[str]:
    """`ingest_date=2026-11-24,ingest_date=2026-11-25` (or the JSON array the state machine passes,
    `["ingest_date=2026-11-24"]`) -> list, validated, de-duplicated, order kept."""
    if isinstance(text, str) and text.lstrip().startswith("["):
        try:
            text = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"bad --partitions {text!r}: not a JSON array of strings") from error
    items = text.split(",") if isinstance(text, str) else [str(i) for i in text]
    partitions: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or key != partition_key or not value or "/" in value:
            raise ValueError(f"bad partition {item!r}: expected {partition_key}=<value>")
        if item not in partitions:
            partitions.append(item)
    if not partitions:
        raise ValueError("no partitions given")
    return partitions


def is_hidden(uri: str) -> bool:
    name = uri.rsplit("/", 1)[-1]
    return name.startswith((".", "_"))


def list_partition_objects(
    storage: Storage, raw_uri: str, spec: DatasetSpec, partitions: list[str]
) -> dict[str, list[RawObject]]:
    """Objects of only the given partitions. A partition without objects raises FileNotFoundError."""
    result: dict[str, list[RawObject]] = {}
    for partition in partitions:
        prefix = join_uri(raw_uri, spec.name, partition) + "/"
        uris = [u for u in storage.list_keys(prefix) if not is_hidden(u)]
        if not uris:
            raise FileNotFoundError(f"no raw objects for partition {partition} under {prefix}")
        result[partition] = [RawObject(uri, partition) for uri in uris]
    return result


def is_gzip(uri: str, spec: DatasetSpec) -> bool:
    if spec.compression == "gzip":
        return True
    if spec.compression == "none":
        return False
    return uri.lower().endswith((".gz", ".gzip"))


def read_head(storage: Storage, uri: str, max_bytes: int = HEAD_BYTES) -> bytes:
    """The first `max_bytes` bytes of an object (compressed as stored)."""
    if isinstance(storage, LocalStorage):
        with storage.local_path(uri).open("rb") as handle:
            return handle.read(max_bytes)
    if isinstance(storage, S3Storage):
        from etl.storage import split_s3_uri

        bucket, key = split_s3_uri(uri)
        response: Any = storage.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}")
        return response["Body"].read()
    return storage.read_text(uri).encode("utf-8")[:max_bytes]


def first_line(storage: Storage, uri: str, spec: DatasetSpec) -> str | None:
    """The first non-blank line of an object (BOM and line ending stripped); None for an empty object."""
    data = read_head(storage, uri)
    if is_gzip(uri, spec) and data:
        try:
            data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data)
        except zlib.error as error:
            raise ValueError(f"{uri}: not a valid gzip file ({error})") from error
    encoding = spec.reader_option("encoding", "UTF-8") or "UTF-8"
    text = codecs.decode(data, encoding, errors="replace")
    for line in text.splitlines():
        line = line.removeprefix(BOM)
        if line.strip():
            return line
    return None


def split_header(line: str, spec: DatasetSpec) -> list[str]:
    """Header line -> normalised column names (duplicates after normalisation get a `__<n>` suffix)."""
    delimiter = spec.reader_option("delimiter", ",") or ","
    quote = spec.reader_option("quote", '"') or '"'
    fields = next(csv.reader([line], delimiter=delimiter, quotechar=quote))
    names: list[str] = []
    for field in fields:
        name = normalise_column_name(field)
        candidate, n = name, 1
        while candidate in names:
            n += 1
            candidate = f"{name}__{n}"
        names.append(candidate)
    return names
