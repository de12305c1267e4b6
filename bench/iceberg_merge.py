"""The curated layout the next step would switch to: does an Apache Iceberg MERGE stay proportional to its batch?

    python bench/iceberg_merge.py [--batches 24] [--files 20] [--rows 20000]

The batches of bench/incremental.py (20 files x 20,000 orders into one daily partition, 1% of each batch
updating orders of earlier batches, spread over the whole partition) go into an Iceberg table (format v2,
partitioned by ingest_date, in a Hadoop catalog on local disk: the Glue catalog's offline stand-in). Each batch
is read with Spark's CSV reader (typed schema), reduced to the latest version of each key, and MERGEd:
update the key when the batch's version is newer, insert it otherwise. Printed: the MERGE seconds of each
batch, batch 1 vs the last, and their ratio, for merge-on-read (position delete files: what would make the
write proportional to the batch) and, in the same process, copy-on-write for the last batch (what the
Parquet snapshots of today's design amount to).

This measures the table layout only: the ETL's validation, rejects, provenance and row accounting are not in
it (bench/incremental.py measures the real job). The runtime is the Iceberg Spark runtime jar from PyPI
(snowpark-connect-deps-iceberg, pinned in requirements.lock); nothing is downloaded at run time.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.etl_throughput import timed  # noqa: E402
from bench.incremental import PARTITION, write_batch  # noqa: E402
from etl.session import LOCAL_SPARK_CONF  # noqa: E402

SCHEMA = ("order_id STRING, customer_id STRING, order_ts TIMESTAMP, status STRING, currency STRING, "
          "amount DECIMAL(12,2), quantity INT, country STRING, updated_at TIMESTAMP")  # fmt: skip
TABLE = "lake.curated.orders"


def iceberg_spark(warehouse: Path):
    """A local Spark session with the Iceberg runtime jar and a Hadoop catalog `lake` at `warehouse`."""
    import snowpark_connect_deps_iceberg as iceberg_jars
    from pyspark.sql import SparkSession

    [runtime] = [j for j in iceberg_jars.list_jars() if j.name.startswith("iceberg-spark-runtime-3.5_2.12-")]
    builder = SparkSession.builder.appName("iceberg-merge-bench").master("local[2]")
    for key, value in LOCAL_SPARK_CONF.items():
        builder = builder.config(key, value)
    return (
        builder.config("spark.jars", str(runtime))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.sql.catalog.lake", "org.apache.iceberg.spark.SparkCatalog")
        .config("spark.sql.catalog.lake.type", "hadoop")
        .config("spark.sql.catalog.lake.warehouse", str(warehouse))
        .getOrCreate()
    )


def merge(spark, raw: Path, keys: list[str]) -> None:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    batch = spark.read.csv([str(raw / k) for k in keys], header=True, schema=SCHEMA)
    latest = Window.partitionBy("order_id").orderBy(F.col("updated_at").desc())
    batch = batch.withColumn("_rank", F.row_number().over(latest)).where("_rank = 1").drop("_rank")
    batch.withColumn("ingest_date", F.lit(PARTITION.split("=", 1)[1]).cast("date")).createOrReplaceTempView("batch")
    spark.sql(f"""
        MERGE INTO {TABLE} t USING batch b
        ON t.ingest_date = b.ingest_date AND t.order_id = b.order_id
        WHEN MATCHED AND b.updated_at >= t.updated_at THEN UPDATE SET *
        WHEN NOT MATCHED THEN INSERT *
    """)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per file")
    args = parser.parse_args(argv)

    work = ROOT / "build" / "bench" / "iceberg"
    shutil.rmtree(work, ignore_errors=True)
    raw = work / "raw-bucket"
    spark = iceberg_spark(work / "warehouse")
    spark.sparkContext.setLogLevel("ERROR")
    properties = ("'format-version'='2', 'write.merge.mode'='merge-on-read', "
                  "'write.update.mode'='merge-on-read', 'write.delete.mode'='merge-on-read'")  # fmt: skip
    spark.sql(f"CREATE TABLE {TABLE} ({SCHEMA}, ingest_date DATE) USING iceberg PARTITIONED BY (ingest_date) "
              f"TBLPROPERTIES ({properties})")  # fmt: skip
    # Warm-up: two full-size batches merged (a MERGE that inserts, one that updates) and then deleted, so that
    # JVM start, class loading, code generation and JIT stay out of batch 1 (with one tiny batch, batch 1 took
    # 4.7 s and batch 4 2.4 s).
    for warm in range(2):
        merge(spark, work / "warm-up", write_batch(work / "warm-up", warm, args.files, args.rows))
    spark.sql(f"DELETE FROM {TABLE} WHERE true")
    spark.sql(f"CALL lake.system.expire_snapshots(table => '{TABLE.removeprefix('lake.')}', retain_last => 1)")

    results = []
    for batch in range(args.batches):
        keys = write_batch(raw, batch, args.files, args.rows)
        seconds = timed(lambda: merge(spark, raw, keys))  # noqa: B023 (called right away)
        rows = spark.table(TABLE).count()
        [summary] = spark.sql(f"SELECT summary FROM {TABLE}.snapshots ORDER BY committed_at DESC LIMIT 1").first()
        written = {k: int(summary.get(k, 0)) for k in ("added-data-files", "added-position-delete-files",
                                                       "added-records", "removed-data-files")}  # fmt: skip
        results.append({"batch": batch + 1, "merge_seconds": round(seconds, 2), "table_rows": rows, **written})
        print(json.dumps(results[-1]), flush=True)

    spark.sql(f"ALTER TABLE {TABLE} SET TBLPROPERTIES ('write.merge.mode'='copy-on-write')")
    keys = write_batch(raw, args.batches, args.files, args.rows)
    copy_on_write = timed(lambda: merge(spark, raw, keys))
    spark.stop()
    first, last = results[0], results[-1]
    print(json.dumps({
        "batches": args.batches, "files_per_batch": args.files, "rows_per_file": args.rows,
        "first_merge_seconds": first["merge_seconds"], "last_merge_seconds": last["merge_seconds"],
        "last_over_first": round(last["merge_seconds"] / first["merge_seconds"], 2),
        "table_rows_after_last": last["table_rows"],
        "copy_on_write_merge_of_one_more_batch_seconds": round(copy_on_write, 2),
        "goal": "last/first <= 1.3 (merge-on-read)",
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
