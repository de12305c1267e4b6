"""Unit tests of etl.transforms on tiny inline frames."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from etl import transforms as tf
from etl.readers import parse_partitions
from etl.spec import parse_dataset

pytestmark = pytest.mark.spark

SPEC = parse_dataset(
    {
        "name": "orders",
        "columns": [
            {"name": "order_id", "type": "string", "nullable": False},
            {"name": "amount", "type": "decimal(12,2)", "nullable": False},
            {"name": "quantity", "type": "int"},
            {"name": "ok", "type": "boolean"},
            {"name": "day", "type": "date", "format": "dd.MM.yyyy"},
            {"name": "updated_at", "type": "timestamp", "format": "yyyy-MM-dd HH:mm:ss"},
        ],
        "primary_key": ["order_id"],
        "deduplicate_by": "updated_at",
    },
    Path("inline.yaml"),
)


def raw_frame(spark, rows):
    """rows: (order_id, amount, quantity, ok, day, updated_at, source, problem)."""
    data = [
        (
            r[6] if len(r) > 6 else "s3://raw/orders/ingest_date=d/a.csv",
            "d",
            *r[:6],
            ",".join(map(str, r[:6])),
            None,
            r[7] if len(r) > 7 else None,
        )
        for r in rows
    ]
    return spark.createDataFrame(data, tf.raw_schema(SPEC))


def test_enforce_schema__casts_valid_values(spark):
    df = tf.enforce_schema(
        raw_frame(spark, [("o1", " 12.5 ", "3", "true", "24.11.2026", "2026-11-24 10:00:00")]), SPEC
    )
    [row] = df.collect()
    assert row[tf.REASON] is None
    assert (row.amount, row.quantity, row.ok) == (Decimal("12.50"), 3, True)
    assert row.day.isoformat() == "2026-11-24"
    assert row.updated_at == datetime(2026, 11, 24, 10, 0, 0)
    assert dict(df.dtypes)["amount"] == "decimal(12,2)"


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (("o1", "1.234", "1", None, None, None), "column amount: '1.234' is not decimal(12,2)"),
        (("o1", "1", "1.0", None, None, None), "column quantity: '1.0' is not int"),
        (("o1", "1", "99999999999", None, None, None), "column quantity: '99999999999' is not int"),
        (("o1", "1", None, "maybe", None, None), "column ok: 'maybe' is not boolean"),
        (("o1", "1", None, None, "2026-11-24", None), "column day: '2026-11-24' is not date (dd.MM.yyyy)"),
        ((None, None, None, None, None, None), "column order_id: is null; column amount: is null"),
    ],
)
def test_enforce_schema__bad_value_rejected_with_reason(spark, values, reason):
    [row] = tf.enforce_schema(raw_frame(spark, [values]), SPEC).collect()
    assert row[tf.REASON] == reason


def test_enforce_schema__structural_problem_wins(spark):
    df = raw_frame(
        spark,
        [("o1", "abc", None, None, None, None, "s3://x/a", "malformed CSV row: expected 6 fields, got 2")],
    )
    [row] = tf.enforce_schema(df, SPEC).collect()
    assert row[tf.REASON] == "malformed CSV row: expected 6 fields, got 2"


def test_deduplicate__latest_then_object_name_wins(spark):
    rows = [
        ("o1", "1", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/b.csv"),
        ("o1", "2", None, None, None, "2026-11-24 12:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
        ("o2", "3", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
        ("o2", "4", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/b.csv"),
    ]
    valid = tf.valid_rows(tf.for_cache(tf.enforce_schema(raw_frame(spark, rows), SPEC)))
    result = sorted((r.order_id, str(r.amount)) for r in tf.deduplicate(valid, SPEC).collect())
    assert result == [("o1", "2.00"), ("o2", "4.00")]


def test_deduplicate__ranking_only_repeated_keys_gives_the_same_winners(spark):
    rows = [
        ("o1", "1", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/b.csv"),
        ("o1", "2", None, None, None, "2026-11-24 12:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
        ("o2", "3", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
        ("o3", "5", None, None, None, "2026-11-24 09:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
        ("o3", "6", None, None, None, "2026-11-24 09:00:00", "s3://raw/orders/ingest_date=d/a.csv"),  # same object
    ]
    valid = tf.with_key_hash(tf.valid_rows(tf.for_cache(tf.enforce_schema(raw_frame(spark, rows), SPEC))), SPEC)
    repeated = tf.repeated_hashes(tf.hash_counts(valid))
    o1_o3 = valid.where("order_id IN ('o1', 'o3')").select(tf.KEY_HASH).distinct()
    assert sorted(r[0] for r in repeated.collect()) == sorted(r[0] for r in o1_o3.collect())
    assert tf.duplicate_counts(valid.join(repeated, tf.KEY_HASH, "left_semi"), SPEC) == {"d": 2}
    partial = tf.deduplicate(valid, SPEC, repeated)
    full = tf.deduplicate(valid, SPEC)
    winners = sorted((r.order_id, str(r.amount)) for r in partial.collect())
    assert winners == sorted((r.order_id, str(r.amount)) for r in full.collect())
    assert [w for w in winners if w[0] != "o3"] == [("o1", "2.00"), ("o2", "3.00")]


def test_deduplicate__keys_sharing_a_hash_keep_their_own_winners_and_count_no_duplicate(spark):
    """A key hash shared by two different keys (forced here by hashing the partition alone) puts both keys among
    the contested ones: each keeps its own winner, and no row is counted as a duplicate."""
    rows = [
        ("o1", "1", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
        ("o2", "2", None, None, None, "2026-11-24 10:00:00", "s3://raw/orders/ingest_date=d/a.csv"),
    ]
    valid = tf.valid_rows(tf.for_cache(tf.enforce_schema(raw_frame(spark, rows), SPEC)))
    colliding = valid.withColumn(tf.KEY_HASH, F.xxhash64(SPEC.partition_key))
    repeated = tf.repeated_hashes(tf.hash_counts(colliding))
    assert repeated.count() == 1
    assert tf.duplicate_counts(colliding.join(repeated, tf.KEY_HASH, "left_semi"), SPEC) == {"d": 0}
    assert sorted(r.order_id for r in tf.deduplicate(colliding, SPEC, repeated).collect()) == ["o1", "o2"]


def test_repeated_hashes__published_rows_count_only_where_the_batch_has_their_key(spark):
    """A published key repeats when the batch brings it again; published keys the batch lacks are not contested
    (each published key is there once), and the batch's own repeats are, published or not."""
    def hashed(keys: list[str]):
        return spark.createDataFrame([("d", k) for k in keys], "ingest_date string, order_id string").transform(
            lambda df: tf.with_key_hash(df, SPEC))

    batch, published = hashed(["o1", "o2", "o2"]), hashed(["o1", "o3", "o4"])
    expected = sorted(r[0] for r in hashed(["o1", "o2"]).select(tf.KEY_HASH).collect())
    for broadcast in (True, False):
        repeated = tf.repeated_hashes(tf.hash_counts(batch), published, broadcast=broadcast)
        assert sorted(r[0] for r in repeated.collect()) == expected


def test_enforce_schema__iso_timestamp_checked_for_shape_and_calendar(spark):
    values = ["2026-11-24 10:00:00", "2026-02-30 10:00:00", "2026-11-24 25:00:00", "2026-11-24T10:00:00",
              "2026-11-24", "2026-11-24 10:00:00.5"]  # fmt: skip
    frame = tf.enforce_schema(raw_frame(spark, [("o1", "1", None, None, None, v) for v in values]), SPEC)
    got = [(r.updated_at, r[tf.REASON]) for r in frame.collect()]
    assert got[0] == (datetime(2026, 11, 24, 10, 0), None)
    assert [reason for _, reason in got[1:]] == [
        f"column updated_at: '{v}' is not timestamp (yyyy-MM-dd HH:mm:ss)" for v in values[1:]
    ]


def test_stamp_and_add_provenance__columns_and_values(spark):
    valid = tf.enforce_schema(raw_frame(spark, [("o1", "1", None, None, None, None)]), SPEC)
    out = tf.add_provenance(tf.stamp_provenance(valid, "run-9", datetime(2026, 11, 24, 18, 0, tzinfo=UTC)), SPEC)
    assert out.columns == [
        "order_id",
        "amount",
        "quantity",
        "ok",
        "day",
        "updated_at",
        "lake_source_object",
        "lake_ingested_at",
        "lake_run_id",
        "ingest_date",
    ]
    [row] = out.collect()
    assert (row.lake_source_object, row.lake_run_id) == ("s3://raw/orders/ingest_date=d/a.csv", "run-9")
    assert row.lake_ingested_at == datetime(2026, 11, 24, 18, 0)


def test_file_count__scales_with_rows():
    assert (tf.file_count(0), tf.file_count(10), tf.file_count(2_000_001)) == (1, 1, 2)


def test_write_tasks__one_for_a_small_part_else_at_least_the_cores():
    small, cores = tf.SMALL_PART_ROWS, 8
    assert [tf.write_tasks(n, cores) for n in (0, small, small + 1, 20_000_000)] == [1, 1, 8, 10]


def test_write_curated__a_small_part_in_one_file_a_large_one_in_one_per_core(spark, tmp_path):
    from etl.storage import LocalStorage

    valid = tf.enforce_schema(raw_frame(spark, [(f"o{n}", "1", None, None, None, None) for n in range(40)]), SPEC)
    rows = tf.add_provenance(tf.stamp_provenance(valid, "r", datetime(2026, 11, 24, tzinfo=UTC)), SPEC).repartition(4)
    storage = LocalStorage(tmp_path)

    def files(claimed_rows: int, run: str) -> int:
        tf.write_curated([(rows, claimed_rows)], storage, "s3://curated", SPEC, run, ["ingest_date=d"])
        folder = tf.curated_partition_uri("s3://curated", SPEC, "ingest_date=d", run)
        return sum(1 for k in storage.list_keys(folder + "/") if k.endswith(".parquet"))

    assert files(40, "small") == 1
    assert files(tf.SMALL_PART_ROWS + 1, "large") == spark.sparkContext.defaultParallelism == 2


def test_parse_partitions__validates_key():
    assert parse_partitions("ingest_date=a, ingest_date=b,ingest_date=a", "ingest_date") == [
        "ingest_date=a",
        "ingest_date=b",
    ]
    with pytest.raises(ValueError, match="bad partition 'day=a'"):
        parse_partitions("day=a", "ingest_date")
