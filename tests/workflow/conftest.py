"""Execute the synthesized state machine offline: the `local` stage's template, deployed into moto."""

from __future__ import annotations

import json
import os

import pytest

from etl.storage import LocalStorage
from lake.local.glue_runtime import SimulatedJob
from lake.local.runtime import LocalPipeline, synthesize
from lake.local.template import physical_resources

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

CSV = b"order_id,customer_id,order_ts,status,currency,amount,quantity,country,updated_at\n" \
      b"o-1,c-1,2026-11-24 10:00:00,paid,EUR,10.50,1,DE,2026-11-24 10:00:00\n"  # fmt: skip


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    return synthesize("local", tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def job_names(local_stack):
    physical = physical_resources(local_stack.template)
    return {
        "etl": next(p.ref for lid, p in physical.items() if lid.startswith("JobsEtlJob")),
        "dq": next(p.ref for lid, p in physical.items() if lid.startswith("JobsDataQualityJob")),
    }


def dq_result_writer(failing: tuple[str, ...] | str = (), rules_failed_per_partition: int = 2):
    """What the DQ job writes, for runs that simulate Glue instead of running Spark.

    `failing`: the partitions that fail their rules ("all" for every partition of the run).
    """

    def write(args: dict[str, str], root) -> None:
        dataset, run_id, partitions = args["--dataset"], args["--run_id"], json.loads(args["--partitions"])
        failed = list(partitions) if failing == "all" else [p for p in partitions if p in failing]
        passed = [p for p in partitions if p not in failed]
        document = {
            "dataset": dataset,
            "run_id": run_id,
            "partitions": partitions,
            "outcome": "Failed" if failed else "Passed",
            "partitions_passed": passed,
            "partitions_failed": failed,
            "passed_count": len(passed),
            "failed_count": len(failed),
            "rules_passed": 12 * len(partitions) - rules_failed_per_partition * len(failed),
            "rules_failed": rules_failed_per_partition * len(failed),
            "row_count": len(partitions),
            "rules": [],
            "etl": {"input_rows": 3, "output_rows": 1, "rejected_rows": 1, "duplicates_removed": 1},
        }
        LocalStorage(root).write_text(f"{args['--staging_uri']}/runs/{dataset}/{run_id}/dq_result.json",
                                      json.dumps(document))  # fmt: skip

    return write


@pytest.fixture
def make_pipeline(tmp_path, local_stack, job_names):
    """Build a started LocalPipeline with simulated Glue jobs; stopped after the test."""
    started = []

    def make(etl: SimulatedJob | None = None, dq: SimulatedJob | None = None, crawl_min_duration_s: float = 0.2):
        jobs = {
            job_names["etl"]: etl or SimulatedJob(duration_s=0.1),
            job_names["dq"]: dq or SimulatedJob(duration_s=0.1, writes=dq_result_writer()),
        }
        pipeline = LocalPipeline(tmp_path / "lake", local_stack, simulated_jobs=jobs,
                                 crawl_min_duration_s=crawl_min_duration_s).start()  # fmt: skip
        started.append(pipeline)
        return pipeline

    yield make
    for pipeline in started:
        pipeline.cloud.stop()
