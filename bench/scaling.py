"""ETL time for one NEW partition as the lake grows: work must be proportional to the new data only.

    python bench/scaling.py [--checkpoints 1,10,50,100] [--rows 2000] [--repeats 2] [--quick]

Writes small raw `orders` partitions (one CSV each) into a LocalStorage lake under build/bench/scaling. At each
checkpoint the lake holds that many raw partitions (and as many curated ones: earlier partitions get a copy of
a real ETL output, so the curated zone grows too), and the real ETL (`etl.job.run`, in-process, one Spark
session) runs for only the newest partition. Prints the time per checkpoint and the ratio last/first
(goal: flat, about 1.0). Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl import transforms as tf  # noqa: E402
from etl.job import load_spec, run  # noqa: E402
from etl.session import build_spark  # noqa: E402
from etl.storage import LocalStorage  # noqa: E402

WORK = ROOT / "build" / "bench" / "scaling"
HEADER = "order_id,customer_id,order_ts,status,currency,amount,quantity,country,updated_at\n"
STATUSES = ("placed", "paid", "shipped", "delivered", "cancelled")
START = date(2026, 1, 1)
URIS = {"raw_uri": "s3://raw-bucket", "curated_uri": "s3://curated-bucket", "staging_uri": "s3://staging-bucket",
        "datasets_uri": "s3://artifacts/datasets"}  # fmt: skip


def partition_name(index: int) -> str:
    return f"ingest_date={START + timedelta(days=index - 1):%Y-%m-%d}"


def write_partition(lake: Path, index: int, rows: int) -> None:
    """One raw CSV of `rows` orders (a few duplicates and one bad amount, like real exports)."""
    day = START + timedelta(days=index - 1)
    lines = [HEADER]
    for n in range(rows):
        order = n - 1 if n % 500 == 499 else n  # a later version of the previous order
        ts = f"{day:%Y-%m-%d} {n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}"
        amount = "x1" if n == rows // 2 else f"{(n * 37) % 40_000 / 100 + 1:.2f}"
        lines.append(f"o-{index:03d}-{order:07d},c-{n % 5000:05d},{ts},{STATUSES[n % 5]},EUR,{amount},"
                     f"{n % 5 + 1},DE,{ts}\n")  # fmt: skip
    folder = lake / "raw-bucket" / "orders" / partition_name(index)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "orders-0001.csv").write_text("".join(lines), encoding="utf-8")


def seed_curated(storage: LocalStorage, spec: object, source_partition: str, index: int) -> None:
    """Give partition `index` a curated output (a copy of a real run's files), so the curated zone grows too."""
    source = storage.local_path(tf.curated_partition_uri(URIS["curated_uri"], spec, source_partition, "warmup"))
    target = storage.local_path(tf.curated_partition_uri(URIS["curated_uri"], spec, partition_name(index), "seed"))
    if not target.exists():
        shutil.copytree(source, target)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoints", default="1,10,50,100", help="lake sizes (partitions), ascending")
    parser.add_argument("--rows", type=int, default=2000, help="rows per raw partition")
    parser.add_argument("--repeats", type=int, default=2, help="ETL runs per checkpoint (the minimum is kept)")
    parser.add_argument("--quick", action="store_true", help="checkpoints 1,5,10, one run each")
    args = parser.parse_args(argv)
    if args.quick:
        args.checkpoints, args.repeats = "1,5,10", 1
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",")})

    began = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    datasets = WORK / "artifacts" / "datasets" / "orders"
    datasets.mkdir(parents=True)
    shutil.copy(ROOT / "datasets" / "orders" / "dataset.yaml", datasets / "dataset.yaml")
    storage = LocalStorage(WORK)
    spec = load_spec(storage, URIS["datasets_uri"], "orders")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell")
    spark = build_spark("scaling-bench")
    spark.sparkContext.setLogLevel("ERROR")

    # Warm-up on an extra partition outside the measured range: JVM start, class loading, first-query planning.
    write_partition(WORK, 0, args.rows)
    run({**URIS, "dataset": "orders", "partitions": partition_name(0), "run_id": "warmup"}, storage, spark)
    print(f"spark up and warm-up ETL done in {time.monotonic() - began:.1f} s", flush=True)

    written, results = 0, []
    for checkpoint in checkpoints:
        for index in range(written + 1, checkpoint + 1):
            write_partition(WORK, index, args.rows)
            if index < checkpoint:
                seed_curated(storage, spec, partition_name(0), index)
        written = checkpoint
        newest = partition_name(checkpoint)
        times, metrics = [], {}
        for attempt in range(args.repeats):
            job_args = {**URIS, "dataset": "orders", "partitions": newest, "run_id": f"cp{checkpoint}-{attempt}"}
            start = time.perf_counter()
            metrics = run(job_args, storage, spark)
            times.append(time.perf_counter() - start)
        # Counts leave out the warm-up partition (ingest_date=2025-12-31).
        raw_files = sum(1 for p in (WORK / "raw-bucket" / "orders").rglob("*.csv")) - 1
        curated = sum(1 for p in (WORK / "curated-bucket" / "orders").glob("ingest_date=*")) - 1
        results.append((checkpoint, min(times)))
        print(f"lake {checkpoint:>4} raw partitions ({raw_files} raw files, {curated} curated partitions): ETL of "
              f"the newest partition {min(times):6.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)}; "
              f"read {metrics['input_rows']} rows, wrote {metrics['output_rows']}, partitions {metrics['partitions']})",
              flush=True)  # fmt: skip
    spark.stop()
    first, last = results[0][1], results[-1][1]
    print(f"\nratio last/first ({results[-1][0]} vs {results[0][0]} partitions): {last / first:.2f}  "
          f"(goal: flat, ~1.0: the ETL lists and reads only the new partition's prefix)")
    print(f"wall time {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
