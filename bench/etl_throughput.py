"""ETL throughput vs plain Spark (read CSV -> write Parquet) and DuckDB, on the same input.

    python bench/etl_throughput.py [--size-gb 1.0] [--quick]

The input (orders CSV, see lake/sample_data.py --size-gb) is cached in build/bench/input-<size>.
All runs use this process; the Spark runs share one Spark session. Goal: ETL <= 1.5x plain Spark.

A second reference, typed Spark, is Spark's own CSV reader given the dataset's column types, writing Parquet: the
cheapest way Spark offers to produce the typed columns the ETL produces (with laxer rules: a decimal is rounded to
its scale, nothing is rejected with a reason, no key is de-duplicated). Its ratio to plain Spark is the share of
the budget that typing the columns takes before any of the ETL's own work.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from etl.job import run  # noqa: E402
from etl.session import build_spark  # noqa: E402
from etl.spec import DatasetSpec, load_deployed_dataset  # noqa: E402
from etl.storage import LocalStorage  # noqa: E402


def _generator():
    from lake import sample_data

    return sample_data


def prepare(size_gb: float) -> tuple[Path, dict]:
    lake = ROOT / "build" / "bench" / f"input-{size_gb:g}gb"
    marker = lake / "summary.json"
    if not marker.exists():
        shutil.rmtree(lake, ignore_errors=True)
        summary = _generator().generate_size(lake / "raw-bucket", size_gb, file_mb=64 if size_gb >= 0.5 else 16)
        datasets = lake / "artifacts" / "datasets" / "orders"
        datasets.mkdir(parents=True)
        shutil.copy(ROOT / "datasets" / "orders" / "dataset.yaml", datasets / "dataset.yaml")
        marker.write_text(json.dumps(summary))
    return lake, json.loads(marker.read_text())


def typed_reader_options(spec: DatasetSpec) -> tuple[str, dict[str, str]]:
    """The dataset's columns as a DDL schema, and the CSV options that parse them (one format per type)."""
    options = {"header": "true", "sep": spec.reader_option("delimiter", ",") or ",",
               "quote": spec.reader_option("quote", '"') or '"', "escape": spec.reader_option("escape", "\\") or "\\"}
    for kind, option in (("timestamp", "timestampFormat"), ("date", "dateFormat")):
        formats = {c.format for c in spec.columns if c.type == kind and c.format}
        if len(formats) > 1:
            raise ValueError(f"typed Spark reference: the {kind} columns have several formats {sorted(formats)}; "
                             f"Spark's CSV reader takes one {option}")
        if formats:
            options[option] = formats.pop()
    return ", ".join(f"`{c.name}` {c.type}" for c in spec.columns), options


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="0.05 GB smoke run")
    args = parser.parse_args(argv)
    size = 0.05 if args.quick else args.size_gb
    lake, summary = prepare(size)
    out = ROOT / "build" / "bench" / "out"
    shutil.rmtree(out, ignore_errors=True)
    raw_glob = str(lake / "raw-bucket" / "orders" / "ingest_date=2026-11-24" / "*.csv")
    spark = build_spark("etl-bench")
    spark.sparkContext.setLogLevel("ERROR")
    storage = LocalStorage(lake)
    job_args = {
        "dataset": "orders", "partitions": "ingest_date=2026-11-24", "run_id": "bench",
        "raw_uri": "s3://raw-bucket", "curated_uri": "s3://curated-bucket", "staging_uri": "s3://staging-bucket",
        "datasets_uri": "s3://artifacts/datasets",
    }
    spark.read.csv(raw_glob, header=True).limit(1).collect()  # warm up the JVM and file listing
    plain = timed(lambda: spark.read.csv(raw_glob, header=True).write.mode("overwrite")
                  .parquet(str(out / "plain")))
    schema, options = typed_reader_options(load_deployed_dataset(storage, job_args["datasets_uri"], "orders"))
    typed = timed(lambda: spark.read.schema(schema).options(**options).csv(raw_glob).write.mode("overwrite")
                  .parquet(str(out / "typed")))
    metrics: dict = {}
    etl = timed(lambda: metrics.update(run(job_args, storage, spark)))
    spark.stop()

    import duckdb

    duck_out = out / "duckdb.parquet"
    duck = timed(lambda: duckdb.connect().execute(
        f"COPY (SELECT * FROM read_csv('{raw_glob}', header=true)) TO '{duck_out}' (FORMAT parquet)"))
    gb = summary["bytes"] / 1024**3
    print(json.dumps({
        "input_gb": round(gb, 3), "input_rows": summary["rows"], "files": len(summary["files"]),
        "etl_seconds": round(etl, 1), "plain_spark_seconds": round(plain, 1), "duckdb_seconds": round(duck, 1),
        "typed_spark_seconds": round(typed, 1),
        "etl_over_plain_spark": round(etl / plain, 2), "typed_spark_over_plain_spark": round(typed / plain, 2),
        "etl_over_typed_spark": round(etl / typed, 2), "etl_mb_per_s": round(gb * 1024 / etl, 1),
        "etl_rows": {k: metrics[k] for k in ("input_rows", "output_rows", "rejected_rows", "duplicates_removed")},
        "etl_stage_seconds": metrics["stage_seconds"],
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
