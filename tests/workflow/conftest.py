"""Execute the synthesized state machine offline: the `local` stage's template, deployed into moto."""

from __future__ import annotations

import os

import pytest

from lake.local.glue_runtime import SimulatedJob
from lake.local.runtime import LocalPipeline, synthesize
from lake.local.simulated import dq_result_writer
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
        pipeline.stop()
