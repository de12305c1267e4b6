"""Incremental batches into one daily partition: does a batch cost the same when the partition has grown?

    python bench/incremental.py [--batches 24] [--files 20] [--rows 20000] [--updates both] [--no-full]

Each batch lands `files` new CSV objects of `rows` rows in the same partition; 1% of each batch's rows are
newer versions of orders of earlier batches, so the merge replaces rows. Where those orders are is what decides
the cost (etl/snapshot.py), so two feeds are measured:
- `recent`: the updated orders are from the previous batch (late status changes, corrections of a file sent an
  hour ago): only the files holding them are rewritten, the rest of the partition is carried as object copies;
- `spread`: the updated orders are anywhere in the day's earlier batches: every published file holds one, so
  the whole partition is rewritten, as in any copy-on-write table.
Every batch runs the real ETL job with a batch manifest, merged onto the previous batch's snapshot (what an
execution started by S3 events does), then the real DQ job on the candidate; both on real Spark, one session,
this process. Printed per feed: per batch ETL and ETL + DQ seconds, batch 1 vs the last, and their ratio
(goal: last/first <= 1.3), and the same against batch 1 run again after the feed (`first_warm`: the JIT keeps
speeding the job up for several batches after the warm-up, which flatters last/first). Reference in the same
process: a full reprocessing of every object of the partition after the last batch, which is what each execution
did before batch manifests (`lake rerun` still does it); its rows must equal the last batch's.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.etl_throughput import timed  # noqa: E402
from etl.job import run as run_etl  # noqa: E402
from etl.session import build_spark  # noqa: E402
from etl.storage import LocalStorage, read_json  # noqa: E402
from quality.job import result_uri  # noqa: E402
from quality.job import run as run_dq  # noqa: E402

PARTITION = "ingest_date=2026-11-24"
HEADER = "order_id,customer_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")
CURRENCIES = ("EUR", "USD", "GBP")
COUNTRIES = ("DE", "FR", "GB", "US", "ES", "IT", "NL", "PL")
UPDATE_EVERY = 100  # 1% of a batch's rows update an order of an earlier batch
JOB_ARGS = {"dataset": "orders", "partitions": PARTITION, "raw_uri": "s3://raw-bucket",
            "curated_uri": "s3://curated-bucket", "staging_uri": "s3://staging-bucket",
            "datasets_uri": "s3://artifacts/datasets"}  # fmt: skip


def updated_order(n: int, batch: int, files: int, rows: int, updates: str) -> int:
    """The earlier order that row `n` of `batch` (> 0) updates: one of the previous batch (`recent`) or of any
    earlier batch (`spread`). Targets are ids = 1 (mod UPDATE_EVERY): in every batch those rows are new orders
    (the rows = 0 are the updates), so every update replaces a published row; 7919 is prime, so the
    UPDATE_EVERY-th rows of a batch pick distinct orders."""
    slots = files * rows // UPDATE_EVERY  # new orders = 1 (mod UPDATE_EVERY) per batch
    pick = n // UPDATE_EVERY * 7919
    if updates == "recent":
        return (batch - 1) * files * rows + pick % slots * UPDATE_EVERY + 1
    return pick % (batch * slots) * UPDATE_EVERY + 1


def write_batch(raw: Path, batch: int, files: int, rows: int, updates: str = "spread",
                partition: str = PARTITION) -> list[str]:  # fmt: skip
    """`files` objects of `rows` orders each (`updates`: where 1% of them update earlier orders, see above, or
    "none"); returns their keys in the raw bucket."""
    folder = raw / "orders" / partition
    folder.mkdir(parents=True, exist_ok=True)
    keys = []
    for f in range(files):
        lines = [HEADER]
        for r in range(rows):
            n = (batch * files + f) * rows + r
            new = batch == 0 or r % UPDATE_EVERY or updates == "none"
            order = n if new else updated_order(n, batch, files, rows, updates)
            ts = f"2026-11-24 {batch % 24:02d}:{r // 60 % 60:02d}:{r % 60:02d}"
            lines.append(f"o-{order:010d},c-{n % 50_000:05d},{ts},{STATUSES[n % 5]},{CURRENCIES[n % 3]},"
                         f"{(n * 37) % 40_000 / 100 + 1:.2f},{n % 5 + 1},{COUNTRIES[n % 8]},{ts}\n")  # fmt: skip
        name = f"batch-{batch + 1:02d}-{f + 1:03d}.csv"
        (folder / name).write_text("".join(lines), encoding="utf-8")
        keys.append(f"orders/{partition}/{name}")
    return keys


def batch_args(storage: LocalStorage, run_id: str, keys: list[str], published: str | None,
               partition: str = PARTITION) -> dict[str, str]:  # fmt: skip
    """ETL/DQ job arguments of an execution whose batch is `keys`, merged onto the snapshot `published` (or
    onto nothing): writes its batch manifest, as the state machine does."""
    manifest = f"s3://staging-bucket/manifests/{run_id}.json"
    storage.write_text(manifest, json.dumps({"objects": keys,
                                             "published": [{"partition": partition, "location": published}]}))
    return {**JOB_ARGS, "partitions": partition, "run_id": run_id, "manifest_uri": manifest}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=24)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20_000, help="rows per file")
    parser.add_argument("--updates", choices=("recent", "spread", "both"), default="both",
                        help="where the orders a batch updates are (see above)")  # fmt: skip
    parser.add_argument("--no-full", action="store_true", help="skip the full-reprocessing reference run")
    args = parser.parse_args(argv)

    spark = build_spark("incremental-bench")
    spark.sparkContext.setLogLevel("ERROR")
    feeds = ("recent", "spread") if args.updates == "both" else (args.updates,)
    summaries = [run_feed(spark, feed, args) for feed in feeds]
    spark.stop()
    print(json.dumps(summaries, indent=2))
    return 0


def run_feed(spark, updates: str, args: argparse.Namespace) -> dict:
    """24 batches of one feed into a fresh lake; the summary of batch 1 vs the last."""
    lake = ROOT / "build" / "bench" / "incremental"
    shutil.rmtree(lake, ignore_errors=True)
    shutil.copytree(ROOT / "datasets" / "orders", lake / "artifacts" / "datasets" / "orders")
    storage = LocalStorage(lake)
    # Warm-up: two full-size batches (one onto nothing, one merged onto it) into another partition, so that JVM
    # start, class loading, code generation and JIT stay out of the timings of batch 1 and batch 2.
    warm = "ingest_date=2000-01-01"
    for batch, onto in ((0, None), (1, f"s3://curated-bucket/orders/{warm}/run_id=warm-up-1/")):
        keys = write_batch(lake / "raw-bucket", batch, args.files, args.rows, updates, partition=warm)
        warm_args = batch_args(storage, f"warm-up-{batch + 1}", keys, onto, partition=warm)
        run_etl(warm_args, storage, spark)
        run_dq(warm_args, storage, spark)

    published: str | None = None
    results = []
    for batch in range(args.batches):
        keys = write_batch(lake / "raw-bucket", batch, args.files, args.rows, updates)
        run_id = f"batch-{batch + 1:02d}"
        job_args = batch_args(storage, run_id, keys, published)
        start = time.perf_counter()
        metrics = run_etl(job_args, storage, spark)
        etl = time.perf_counter() - start
        run_dq({**JOB_ARGS, "run_id": run_id}, storage, spark)
        dq = time.perf_counter() - start - etl
        published = f"s3://curated-bucket/orders/{PARTITION}/run_id={run_id}/"
        part = metrics["per_partition"][PARTITION]
        results.append({"updates": updates, "batch": batch + 1, "run_id": run_id, "etl_seconds": round(etl, 2),
                        "dq_seconds": round(dq, 2), "etl_dq_seconds": round(etl + dq, 2),
                        "input_rows": metrics["input_rows"],
                        "carried_rows": metrics["carried_rows"], "partition_rows": metrics["output_rows"],
                        "copied_files": part["copied_files"], "rewritten_files": part["rewritten_files"],
                        "etl_stage_seconds": metrics["stage_seconds"]})  # fmt: skip
        print(json.dumps(results[-1]), flush=True)

    # Batch 1 again, into an empty partition after the feed: by now the JIT has compiled what batch 1 ran partly
    # interpreted, so this is the warm reference that last/first_warm compares against.
    warm_first = "ingest_date=2000-01-02"
    keys = write_batch(lake / "raw-bucket", 0, args.files, args.rows, updates, partition=warm_first)
    first_warm = timed(lambda: run_etl(batch_args(storage, "first-warm", keys, None, partition=warm_first), storage,
                                       spark))  # fmt: skip
    full = None
    if not args.no_full:
        full_metrics: dict = {}
        full = timed(lambda: full_metrics.update(run_etl({**JOB_ARGS, "run_id": "full"}, storage, spark)))
        assert full_metrics["output_rows"] == results[-1]["partition_rows"], "full reprocessing disagrees"
        stamps = ("lake_ingested_at", "lake_run_id")  # equal counts, and no row of one missing from the other
        merged = spark.read.parquet(storage.spark_path(published)).drop(*stamps)
        full_rows = spark.read.parquet(storage.spark_path(f"s3://curated-bucket/orders/{PARTITION}/run_id=full/"))
        assert merged.exceptAll(full_rows.drop(*stamps)).isEmpty(), "full reprocessing disagrees"
        # The last batch's DQ (its copies judged from kept partials) must judge what a scan of every row judges.
        incremental = read_json(storage, result_uri(JOB_ARGS["staging_uri"], "orders", results[-1]["run_id"]))
        scanned = run_dq({**JOB_ARGS, "run_id": "full"}, storage, spark)
        assert _judged(incremental) == _judged(scanned), "incremental DQ disagrees with a full evaluation"
    first, last_batch = results[0], results[-1]
    return {
        "updates": updates, "batches": args.batches, "files_per_batch": args.files, "rows_per_file": args.rows,
        "first_etl_seconds": first["etl_seconds"], "last_etl_seconds": last_batch["etl_seconds"],
        "last_over_first_etl": round(last_batch["etl_seconds"] / first["etl_seconds"], 2),
        # one batch's time swings by a third on this VM from one batch to the next; the median of the last four
        # is the same comparison with less of that noise
        "last4_median_over_first_etl": round(statistics.median(r["etl_seconds"] for r in results[-4:])
                                             / first["etl_seconds"], 2),  # fmt: skip
        "first_warm_etl_seconds": round(first_warm, 2),
        "last_over_first_warm_etl": round(last_batch["etl_seconds"] / first_warm, 2),
        # batch 1 merges onto nothing; from batch 2 on every batch pays the merge's fixed part (the key scan, the
        # batch's key hashes, a second write), so last/second is the growth with the partition alone
        "second_etl_seconds": results[min(1, len(results) - 1)]["etl_seconds"],
        "last_over_second_etl": round(last_batch["etl_seconds"] / results[min(1, len(results) - 1)]["etl_seconds"], 2),
        "first_dq_seconds": first["dq_seconds"], "last_dq_seconds": last_batch["dq_seconds"],
        "first_etl_dq_seconds": first["etl_dq_seconds"], "last_etl_dq_seconds": last_batch["etl_dq_seconds"],
        "last_over_first_etl_dq": round(last_batch["etl_dq_seconds"] / first["etl_dq_seconds"], 2),
        "partition_rows_after_last": last_batch["partition_rows"],
        "last_batch_files_copied_rewritten": [last_batch["copied_files"], last_batch["rewritten_files"]],
        "first_etl_stage_seconds": first["etl_stage_seconds"],
        "last_etl_stage_seconds": last_batch["etl_stage_seconds"],
        "full_reprocessing_after_last_seconds": round(full, 2) if full else None,
        "goal": "last/first <= 1.3",
    }  # fmt: skip


def _judged(document: dict) -> list:
    """A DQ result's verdicts: outcome, row count, and each rule's outcome and metrics (to 9 significant digits:
    merged partial moments and a single pass differ in the last bits of a float)."""
    def rounded(value):
        return float(f"{value:.9g}") if isinstance(value, float) else value

    return [document["outcome"], document["row_count"],
            [(r["rule"], r["outcome"], {k: rounded(v) for k, v in r["metrics"].items()}) for r in document["rules"]]]


if __name__ == "__main__":
    raise SystemExit(main())
