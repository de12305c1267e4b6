"""Glue job durations derived from the real ETL and DQ jobs measured on this machine (for bench/burst.py).

    python bench/job_model.py [--batch-rows 100000] [--snapshot-rows 1000000]

Calibration, real Spark, one session, this process (after a warm-up run that keeps JVM start, class loading
and code generation out of the timings):
  1. a run on one row                          -> the fixed cost of a warm run (listing, planning, small writes)
  2. a batch of `batch_rows` onto nothing      -> seconds per batch row (read, parse, cast, dedupe, write)
  3. a batch of `batch_rows` new orders merged onto a published snapshot of `snapshot_rows`: it touches no
     published file               -> seconds per published row (the scan of the snapshot's keys, the file copies)
  4. a batch whose 1% updates are spread over that snapshot: it touches every published file
                                               -> seconds per rewritten row (read, merge and write it again)
and the DQ job (each timing the median of DQ_REPEATS runs) on the results of 1 (its fixed cost), of the snapshot
(seconds per fresh row: every file was written by the run) and of 3 (seconds per carried row: the snapshot's files
are copies, judged from the partial aggregates kept when the snapshot was judged, quality/evaluate.py).
An ETL run's duration is then fixed + batch rows x per batch row + published rows x per published row + rewritten
rows x per rewritten row (etl/snapshot.py: a batch rewrites the published files holding keys it updates); a DQ
run's, fixed + fresh rows (the batch's and the rewritten ones) x per fresh row + carried rows x per carried row.

On AWS (ASSUMPTIONS, printed by `describe`): a Glue worker's vCPU runs the job as fast as a core here; one worker
is the driver, so the work spreads over (workers - 1) x vCPUs per worker; and a run pays a start-up before the
script runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.etl_throughput import timed  # noqa: E402
from bench.incremental import HEADER, PARTITION, batch_args, write_batch  # noqa: E402

# https://docs.aws.amazon.com/glue/latest/dg/add-job.html (worker types): G.1X = 4 vCPU, G.2X = 8 vCPU per worker.
VCPUS_PER_WORKER = {"G.1X": 4, "G.2X": 8, "G.4X": 16, "G.8X": 32}
ASSUMED_AWS_JOB_START_S = 30  # ASSUMPTION: Glue 5.0 start-up before the script runs (not measurable offline)
CALIBRATION_ROWS_PER_FILE = 10_000
# The DQ per-carried-row term is a small difference of two timings (0.38 us, then 0.89 us per row in two runs of
# stop 23, moving the batched monthly cost by about $270): each DQ timing is the median of this many runs.
DQ_REPEATS = 5


def median_timed(fn, repeats: int = DQ_REPEATS) -> float:
    """The median of `repeats` timings of `fn` (a DQ run re-judges the same candidate: same result, same work)."""
    return statistics.median(timed(fn) for _ in range(repeats))


@dataclass(frozen=True)
class JobModel:
    """Seconds of the real jobs on this machine (`local_cores` cores), per term."""

    local_cores: int
    etl_fixed_s: float
    etl_s_per_batch_row: float
    etl_s_per_published_row: float
    etl_s_per_rewritten_row: float
    dq_fixed_s: float
    dq_s_per_fresh_row: float
    dq_s_per_carried_row: float
    curated_bytes_per_row: float  # Parquet bytes of a curated row (the snapshot's folder / its rows)
    measured: dict  # the raw calibration timings the terms come from

    def etl_local_s(self, batch_rows: float, published_rows: float, rewritten_rows: float) -> float:
        published = published_rows * self.etl_s_per_published_row + rewritten_rows * self.etl_s_per_rewritten_row
        return self.etl_fixed_s + batch_rows * self.etl_s_per_batch_row + published

    def dq_local_s(self, fresh_rows: float, carried_rows: float) -> float:
        return self.dq_fixed_s + fresh_rows * self.dq_s_per_fresh_row + carried_rows * self.dq_s_per_carried_row

    @staticmethod
    def aws_cores(worker_type: str, workers: int) -> int:
        """Executor cores of a Glue job: one worker is the driver."""
        return max(1, workers - 1) * VCPUS_PER_WORKER[worker_type]

    def on_aws(self, local_s: float, worker_type: str, workers: int) -> float:
        """A duration measured here as it would run on `workers` Glue workers of `worker_type` (assumptions above)."""
        return ASSUMED_AWS_JOB_START_S + local_s * self.local_cores / self.aws_cores(worker_type, workers)

    def describe(self) -> str:
        return (f"ETL {self.etl_fixed_s:.2f} s + {self.etl_s_per_batch_row * 1e6:.2f} us per batch row + "
                f"{self.etl_s_per_published_row * 1e6:.2f} us per published row it merges onto + "
                f"{self.etl_s_per_rewritten_row * 1e6:.2f} us per published row it rewrites; DQ "
                f"{self.dq_fixed_s:.2f} s + {self.dq_s_per_fresh_row * 1e6:.2f} us per fresh row + "
                f"{self.dq_s_per_carried_row * 1e6:.3f} us per carried row; {self.curated_bytes_per_row:.1f} bytes "
                f"of Parquet per curated row (measured on "
                f"{self.local_cores} cores here). On AWS, ASSUMED: a Glue vCPU as fast as a core here, one worker "
                f"is the driver, {ASSUMED_AWS_JOB_START_S} s start-up per run")  # fmt: skip


def calibrate(work: Path, batch_rows: int = 100_000, snapshot_rows: int = 1_000_000, spark=None) -> JobModel:
    """Measure the terms of `JobModel` with the real ETL and DQ jobs (see the module docstring)."""
    from etl.job import run as run_etl
    from etl.session import build_spark
    from etl.storage import LocalStorage
    from quality.job import run as run_dq

    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(ROOT / "datasets" / "orders", work / "artifacts" / "datasets" / "orders")
    storage = LocalStorage(work)
    own_session = spark is None
    spark = spark or build_spark("job-model")
    spark.sparkContext.setLogLevel("ERROR")
    raw = work / "raw-bucket"

    def one_row(name: str) -> list[str]:
        folder = raw / "orders" / PARTITION
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(HEADER + "o-x,c-1,2026-11-24 00:00:00,paid,EUR,1.00,1,DE,2026-11-24 00:00:00\n")
        return [f"orders/{PARTITION}/{name}"]

    warm = batch_args(storage, "warm-up", one_row("warm-up.csv"), None)
    run_etl(warm, storage, spark)
    run_dq(warm, storage, spark)
    tiny = batch_args(storage, "tiny", one_row("tiny.csv"), None)
    etl_tiny = timed(lambda: run_etl(tiny, storage, spark))
    dq_tiny = median_timed(lambda: run_dq(tiny, storage, spark))

    files = max(1, batch_rows // CALIBRATION_ROWS_PER_FILE)
    snapshot_batches = max(1, snapshot_rows // (files * CALIBRATION_ROWS_PER_FILE))
    # write_batch numbers orders by batch: batch 0 holds new orders only, later ones update 1% of earlier orders
    alone = batch_args(storage, "alone", write_batch(raw, 0, files, CALIBRATION_ROWS_PER_FILE), None)
    etl_alone = timed(lambda: run_etl(alone, storage, spark))
    dq_alone = median_timed(lambda: run_dq(alone, storage, spark))
    snapshot_keys = [k for b in range(1, snapshot_batches + 1) for k in write_batch(raw, b, files,
                                                                                     CALIBRATION_ROWS_PER_FILE)]
    snapshot = batch_args(storage, "snapshot", snapshot_keys, None)
    carried = run_etl(snapshot, storage, spark)["output_rows"]
    snapshot_bytes = sum(o.size for o in storage.list_objects(f"s3://curated-bucket/orders/{PARTITION}/run_id=snapshot/")
                         if o.uri.endswith(".parquet"))  # fmt: skip
    dq_snapshot = median_timed(lambda: run_dq(snapshot, storage, spark))
    published = f"s3://curated-bucket/orders/{PARTITION}/run_id=snapshot/"
    new_keys = write_batch(raw, snapshot_batches + 2, files, CALIBRATION_ROWS_PER_FILE, updates="none")
    onto = batch_args(storage, "new-orders-onto-snapshot", new_keys, published)
    onto_metrics: dict = {}
    etl_onto = timed(lambda: onto_metrics.update(run_etl(onto, storage, spark)))
    dq_new_onto = median_timed(lambda: run_dq(onto, storage, spark))
    spread_keys = write_batch(raw, snapshot_batches + 1, files, CALIBRATION_ROWS_PER_FILE, updates="spread")
    spread = batch_args(storage, "updates-onto-snapshot", spread_keys, published)
    metrics: dict = {}
    etl_spread = timed(lambda: metrics.update(run_etl(spread, storage, spark)))
    dq_onto = median_timed(lambda: run_dq(spread, storage, spark))
    cores = spark.sparkContext.defaultParallelism
    if own_session:
        spark.stop()

    rows = files * CALIBRATION_ROWS_PER_FILE
    partition_rows = metrics["output_rows"]
    touched = metrics["per_partition"][PARTITION]
    if touched["copied_files"]:
        raise RuntimeError(f"calibration: the spread updates left {touched['copied_files']} published files untouched")
    if onto_metrics["per_partition"][PARTITION]["rewritten_files"]:
        raise RuntimeError("calibration: the new orders rewrote published files")
    measured = {"etl_one_row_s": etl_tiny, "dq_one_row_s": dq_tiny, "batch_rows": rows, "etl_batch_alone_s": etl_alone,
                "dq_batch_alone_s": dq_alone, "snapshot_rows": carried, "etl_new_orders_onto_snapshot_s": etl_onto,
                "etl_updates_onto_snapshot_s": etl_spread, "dq_snapshot_s": dq_snapshot,
                "dq_new_orders_onto_snapshot_s": dq_new_onto, "dq_after_spread_updates_s": dq_onto,
                "partition_rows_after_merge": partition_rows}  # fmt: skip
    per_published = max(0.0, etl_onto - etl_alone) / carried
    per_fresh = max(0.0, dq_snapshot - dq_tiny) / carried
    return JobModel(
        local_cores=cores,
        etl_fixed_s=etl_tiny,
        etl_s_per_batch_row=max(0.0, etl_alone - etl_tiny) / rows,
        etl_s_per_published_row=per_published,
        etl_s_per_rewritten_row=max(0.0, (etl_spread - etl_alone) / carried - per_published),
        dq_fixed_s=dq_tiny,
        dq_s_per_fresh_row=per_fresh,
        dq_s_per_carried_row=max(0.0, dq_new_onto - dq_tiny - rows * per_fresh) / carried,
        curated_bytes_per_row=snapshot_bytes / carried,
        measured={k: round(v, 3) if isinstance(v, float) else v for k, v in measured.items()},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--snapshot-rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    model = calibrate(ROOT / "build" / "bench" / "job-model", args.batch_rows, args.snapshot_rows)
    print(json.dumps(asdict(model), indent=2))
    print(model.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
