"""etl.storage: the two Storage implementations behave alike for what the jobs use."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from etl.storage import LocalStorage, S3Storage


def test_local_copy__copies_the_bytes_and_leaves_no_temporary_file(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.write_text("s3://curated/a/part-0.parquet", "data")
    storage.copy("s3://curated/a/part-0.parquet", "s3://curated/b/part-0.parquet")
    assert storage.read_text("s3://curated/b/part-0.parquet") == "data"
    assert storage.list_keys("s3://curated/b/") == ["s3://curated/b/part-0.parquet"]
    assert [p.name for p in (tmp_path / "curated" / "b").iterdir()] == ["part-0.parquet"]


def test_local_copy__a_missing_source_fails_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="curated/a/missing.parquet"):
        LocalStorage(tmp_path).copy("s3://curated/a/missing.parquet", "s3://curated/b/x.parquet")


@mock_aws
def test_s3_copy__copies_server_side_and_lists_like_local():
    client = boto3.client("s3", region_name="eu-west-1")
    client.create_bucket(Bucket="curated", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    storage = S3Storage(client)
    storage.write_text("s3://curated/a/part-0.parquet", "data")
    storage.copy("s3://curated/a/part-0.parquet", "s3://curated/b/part-0.parquet")
    assert storage.read_text("s3://curated/b/part-0.parquet") == "data"
    assert storage.list_keys("s3://curated/b/") == ["s3://curated/b/part-0.parquet"]


def test_local_delete__leaves_no_empty_folder_behind_as_s3_has_none(tmp_path):
    storage = LocalStorage(tmp_path)
    for key in ("orders/d=1/run_id=a/part-0.parquet", "orders/d=1/run_id=a/part-1.parquet",
                "orders/d=1/run_id=b/part-0.parquet"):  # fmt: skip
        storage.write_text(f"s3://curated/{key}", "data")
    storage.delete(["s3://curated/orders/d=1/run_id=a/part-0.parquet"])
    assert (tmp_path / "curated" / "orders" / "d=1" / "run_id=a").is_dir()  # still holds part-1
    storage.delete(["s3://curated/orders/d=1/run_id=a/part-1.parquet", "s3://curated/orders/d=1/missing.parquet"])
    assert not (tmp_path / "curated" / "orders" / "d=1" / "run_id=a").exists()
    assert storage.list_keys("s3://curated/") == ["s3://curated/orders/d=1/run_id=b/part-0.parquet"]
    storage.delete(["s3://curated/orders/d=1/run_id=b/part-0.parquet"])
    assert [p.name for p in tmp_path.iterdir()] == ["curated"] and not any((tmp_path / "curated").iterdir())
