"""Object storage behind one interface, so job code never branches on where it runs.

In AWS the lake's URIs are `s3://bucket/key`. Offline, a bucket is a folder: `s3://bucket/key` maps to
`<lake root>/bucket/key`. Jobs receive the lake root as an explicit `--lake_root` argument (absent in
Glue), and pass every URI through `Storage.spark_path` before handing it to Spark.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/a/b` -> (`bucket`, `a/b`). Raises ValueError naming the URI when it is not S3."""
    parsed = urlparse(uri)
    if parsed.scheme not in ("s3", "s3a") or not parsed.netloc:
        raise ValueError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def join_uri(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts if p)])


class Storage(Protocol):
    def spark_path(self, uri: str) -> str: ...
    def read_text(self, uri: str) -> str: ...
    def write_text(self, uri: str, text: str) -> None: ...
    def exists(self, uri: str) -> bool: ...
    def list_keys(self, uri: str) -> list[str]: ...
    def copy(self, source_uri: str, target_uri: str) -> None: ...
    def list_objects(self, uri: str) -> list[StoredObject]: ...
    def delete(self, uris: list[str]) -> None: ...  # a missing object is not an error (as S3's DeleteObjects)
    def put_file(self, path: str, uri: str) -> None: ...  # a local file uploaded as the object
    def get_file(self, uri: str, path: str) -> str: ...  # the object as a local file (at `path`, or where it is)


@dataclass(frozen=True)
class StoredObject:
    uri: str
    size: int
    modified: datetime  # timezone-aware (UTC)


@dataclass(frozen=True)
class LocalStorage:
    """Buckets as folders under `root`."""

    root: Path

    def local_path(self, uri: str) -> Path:
        bucket, key = split_s3_uri(uri)
        return self.root / bucket / key

    def spark_path(self, uri: str) -> str:
        # Not Path.as_uri(): Hadoop does not decode it, and `%3D` instead of `=` breaks Hive-style folders.
        return "file://" + self.local_path(uri).absolute().as_posix()

    def read_text(self, uri: str) -> str:
        return self.local_path(uri).read_text(encoding="utf-8")

    def write_text(self, uri: str, text: str) -> None:
        path = self.local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)  # atomic, like an S3 PUT: readers see the old or the new object

    def exists(self, uri: str) -> bool:
        return self.local_path(uri).exists()

    def list_keys(self, uri: str) -> list[str]:
        """Object URIs under a prefix, sorted."""
        base = self.local_path(uri)
        if base.is_file():
            return [uri]
        if not base.is_dir():
            return []
        bucket, _ = split_s3_uri(uri)
        bucket_root = self.root / bucket
        return sorted(f"s3://{bucket}/{p.relative_to(bucket_root).as_posix()}" for p in base.rglob("*") if p.is_file())

    def copy(self, source_uri: str, target_uri: str) -> None:
        self.put_file(str(self.local_path(source_uri)), target_uri)

    def get_file(self, uri: str, path: str) -> str:
        return str(self.local_path(uri))  # already a local file

    def put_file(self, path: str, uri: str) -> None:
        target = self.local_path(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")  # hidden: a reader of the folder never sees a partial file
        shutil.copyfile(path, tmp)
        tmp.replace(target)

    def list_objects(self, uri: str) -> list[StoredObject]:
        """Objects under a prefix with their size and modification time, sorted by URI."""
        objects = []
        for key in self.list_keys(uri):
            stat = self.local_path(key).stat()
            objects.append(StoredObject(key, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC)))
        return objects

    def delete(self, uris: list[str]) -> None:
        """Delete the objects, and the folders they leave empty: S3 has no folders, a prefix without objects is gone."""
        for uri in uris:
            path = self.local_path(uri)
            path.unlink(missing_ok=True)
            bucket_root = self.root / split_s3_uri(uri)[0]
            folder = path.parent
            while folder != bucket_root and folder.is_relative_to(bucket_root):
                try:
                    folder.rmdir()  # only if empty
                except OSError:  # not empty (or already gone): the folders above are not empty either
                    break
                folder = folder.parent


@dataclass(frozen=True)
class S3Storage:
    """Real S3 through an injected boto3 client."""

    client: Any

    def spark_path(self, uri: str) -> str:
        split_s3_uri(uri)
        return uri

    def read_text(self, uri: str) -> str:
        bucket, key = split_s3_uri(uri)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")

    def write_text(self, uri: str, text: str) -> None:
        bucket, key = split_s3_uri(uri)
        self.client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))

    def exists(self, uri: str) -> bool:
        bucket, key = split_s3_uri(uri)
        response = self.client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        return response.get("KeyCount", 0) > 0

    def list_keys(self, uri: str) -> list[str]:
        bucket, prefix = split_s3_uri(uri)
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(f"s3://{bucket}/{o['Key']}" for o in page.get("Contents", []))
        return sorted(keys)

    def copy(self, source_uri: str, target_uri: str) -> None:
        """Server-side copy (CopyObject, or UploadPartCopy above the multipart threshold): the bytes stay in S3;
        the target gets the bucket's default encryption."""
        source_bucket, source_key = split_s3_uri(source_uri)
        bucket, key = split_s3_uri(target_uri)
        self.client.copy({"Bucket": source_bucket, "Key": source_key}, bucket, key)

    def get_file(self, uri: str, path: str) -> str:
        bucket, key = split_s3_uri(uri)
        self.client.download_file(bucket, key, path)
        return path

    def put_file(self, path: str, uri: str) -> None:
        """PutObject, multipart above boto3's threshold; the object gets the bucket's default encryption."""
        bucket, key = split_s3_uri(uri)
        self.client.upload_file(path, bucket, key)

    def list_objects(self, uri: str) -> list[StoredObject]:
        bucket, prefix = split_s3_uri(uri)
        objects: list[StoredObject] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects.extend(StoredObject(f"s3://{bucket}/{o['Key']}", o["Size"], o["LastModified"])
                           for o in page.get("Contents", []))  # fmt: skip
        return sorted(objects, key=lambda o: o.uri)

    def delete(self, uris: list[str]) -> None:
        """DeleteObjects, 1,000 keys per request (its limit); a key it could not delete raises, naming it. In a
        versioned bucket each becomes a noncurrent version (restorable until the lifecycle expires it)."""
        by_bucket: dict[str, list[str]] = {}
        for uri in uris:
            bucket, key = split_s3_uri(uri)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), 1000):
                chunk = [{"Key": k} for k in keys[start : start + 1000]]
                response = self.client.delete_objects(Bucket=bucket, Delete={"Objects": chunk, "Quiet": True})
                errors = response.get("Errors")
                if errors:
                    first = errors[0]
                    raise RuntimeError(f"could not delete s3://{bucket}/{first['Key']}: {first.get('Code')} "
                                       f"{first.get('Message')} ({len(errors)} keys failed)")  # fmt: skip


class LazyS3Client:
    """A boto3 S3 client made on first use, and dropped when pickled: a Spark task can carry an S3Storage built on
    it and makes its own client on the executor (a boto3 client itself cannot be pickled)."""

    def __init__(self) -> None:
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return getattr(self._client, name)

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._client = None


def for_tasks(storage: Storage) -> Storage:
    """The storage as Spark tasks can carry it (pickled to the executors)."""
    return S3Storage(LazyS3Client()) if isinstance(storage, S3Storage) else storage


def storage_for(lake_root: str | None, s3_client_factory: Any = None) -> Storage:
    """LocalStorage when a lake root is given (offline), else S3Storage."""
    if lake_root:
        return LocalStorage(Path(lake_root))
    if s3_client_factory is None:
        import boto3

        s3_client_factory = lambda: boto3.client("s3")  # noqa: E731
    return S3Storage(s3_client_factory())


def delete_prefix(storage: Storage, uri: str) -> None:
    """Delete every object under the folder `uri`."""
    storage.delete(storage.list_keys(uri.rstrip("/") + "/"))


def write_json(storage: Storage, uri: str, document: Any) -> None:
    storage.write_text(uri, json.dumps(document, indent=2, sort_keys=True, default=str) + "\n")


def read_json(storage: Storage, uri: str) -> Any:
    return json.loads(storage.read_text(uri))
