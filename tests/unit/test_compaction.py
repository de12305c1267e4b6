"""Compaction: a batch rewrites many small untouched published files as one instead of copying each of them."""

from __future__ import annotations

import pytest

import etl.snapshot as snap
from etl.footers import Footer
from etl.job import run
from etl.snapshot import PublishedFile, Snapshot, plan_compaction, size_tier
from etl.spec import load_dataset
from tests.unit.test_etl_job import (
    HEADER,
    PART,
    curated_files,
    curated_rows,
    data_of,
    job_args,
    make_lake,
    run_batch,
    snapshot,
)


@pytest.fixture
def spec(repo_root):
    return load_dataset(repo_root / "datasets" / "orders")


def published(name: str, rows: int, first_id: int | None = None, touched: bool = False) -> PublishedFile:
    ranges = {"order_id": (f"o{first_id:06d}", f"o{first_id + rows - 1:06d}")} if first_id is not None else {}
    return PublishedFile(f"s3://curated/orders/{PART}/run_id=r/{name}.parquet",
                         Footer(name, rows, None, ranges), 0, touched)  # fmt: skip


def names(snapshot_: Snapshot) -> list[str]:
    return [f.footer.path for f in snapshot_.compacted]


def test_size_tier__how_many_merges_of_eight_a_file_is_from_the_target():
    target = 2_000_000
    assert [size_tier(rows, target) for rows in (2_000_000, 250_001, 250_000, 31_250, 31_251, 16_667, 1)] == [
        0, 0, 1, 2, 1, 2, 6]  # fmt: skip
    assert size_tier(0, target) == 0


def test_plan_compaction__eight_small_untouched_files_of_a_tier_merge_in_key_order(spec):
    small = [published(f"s{i}", 16_667, first_id=i * 20_000) for i in range(9)]
    files = (*reversed(small), published("big", 1_500_000, first_id=900_000), published("hot", 16_667, touched=True))
    planned = plan_compaction(Snapshot(PART, "s3://x", files), budget=1_000_000, spec=spec)
    assert names(planned) == [f"s{i}" for i in range(9)]  # all nine fit the 1M budget; never the big or touched one
    assert [f.footer.path for f in planned.copied] == ["big"]


def test_plan_compaction__fewer_than_eight_or_over_the_budget_is_left_alone(spec):
    seven = tuple(published(f"s{i}", 16_667, first_id=i * 20_000) for i in range(7))
    assert plan_compaction(Snapshot(PART, "s3://x", seven), 1_000_000, spec).compacted == ()
    # Eight files of 200k rows are 1.6M rows: over a 1M budget, within a 2M one.
    eight = tuple(published(f"m{i}", 200_000, first_id=i * 200_000) for i in range(8))
    assert plan_compaction(Snapshot(PART, "s3://x", eight), 1_000_000, spec).compacted == ()
    assert len(plan_compaction(Snapshot(PART, "s3://x", eight), 2_000_000, spec).compacted) == 8


def test_plan_compaction__the_smallest_tier_goes_first(spec):
    tiny = [published(f"t{i}", 1_000, first_id=i * 1_000) for i in range(8)]
    mid = [published(f"m{i}", 100_000, first_id=10**6 + i * 100_000) for i in range(8)]
    planned = plan_compaction(Snapshot(PART, "s3://x", (*mid, *tiny)), 1_000_000, spec)
    assert names(planned) == [f"t{i}" for i in range(8)]


ORDERS = [f"o{n},c{n},2026-11-24 10:00:00,placed,EUR,{n}.00,1,DE,2026-11-24 10:00:{n:02d}\n" for n in range(1, 7)]


@pytest.fixture
def fanin_three(monkeypatch):
    monkeypatch.setattr(snap, "COMPACT_FANIN", 3)


def test_run__many_small_published_files_are_compacted_not_copied(spark, tmp_path, repo_root, fanin_three):
    """Batches of one new order each: with a fan-in of 3, the fourth batch finds three small untouched files and
    writes their rows, unchanged (provenance included), as one file; the result equals a full reprocessing."""
    storage = make_lake(tmp_path, repo_root, {f"{PART}/{n}.csv": (HEADER + ORDERS[n]).encode() for n in range(5)})
    metrics = [run_batch(spark, storage, tmp_path, "run-0", [f"{PART}/0.csv"], None)]
    for n in range(1, 5):
        metrics.append(run_batch(spark, storage, tmp_path, f"run-{n}", [f"{PART}/{n}.csv"], snapshot(f"run-{n - 1}")))
    per_run = [(m["per_partition"][PART]["copied_files"], m["per_partition"][PART]["compacted_files"],
                m["per_partition"][PART]["compacted_rows"]) for m in metrics]  # fmt: skip
    assert per_run == [(0, 0, 0), (1, 0, 0), (2, 0, 0), (0, 3, 3), (2, 0, 0)]
    assert [len(curated_files(tmp_path, run_id=f"run-{n}")) for n in range(5)] == [1, 2, 3, 2, 3]

    before = {r.order_id: r for r in curated_rows(spark, tmp_path, run_id="run-2")}
    after = {r.order_id: r for r in curated_rows(spark, tmp_path, run_id="run-3")}
    assert {k: before[k] for k in ("o1", "o2", "o3")} == {k: after[k] for k in ("o1", "o2", "o3")}  # stamps kept
    run({**job_args(run_id="full"), "manifest_uri": "none"}, storage, spark)
    assert data_of(curated_rows(spark, tmp_path, run_id="run-4")) == data_of(
        curated_rows(spark, tmp_path, run_id="full"))  # fmt: skip


def test_run__compacted_rows_that_go_missing_fail_the_run(spark, tmp_path, repo_root, fanin_three, monkeypatch):
    storage = make_lake(tmp_path, repo_root, {f"{PART}/{n}.csv": (HEADER + ORDERS[n]).encode() for n in range(4)})
    run_batch(spark, storage, tmp_path, "run-0", [f"{PART}/0.csv"], None)
    for n in range(1, 3):
        run_batch(spark, storage, tmp_path, f"run-{n}", [f"{PART}/{n}.csv"], snapshot(f"run-{n - 1}"))
    monkeypatch.setattr(snap, "compact", lambda *args, **kwargs: None)
    with pytest.raises(RuntimeError, match=rf"row accounting does not balance for {PART}: .* 3 rows were carried "
                                           r"from the published snapshot .* but 1 were written"):  # fmt: skip
        run_batch(spark, storage, tmp_path, "run-3", [f"{PART}/3.csv"], snapshot("run-2"))
