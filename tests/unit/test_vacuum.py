"""`lake vacuum`: only run folders no partition points at, and older than the keep, are deleted."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from etl.spec import load_dataset
from etl.storage import LocalStorage, S3Storage
from etl.vacuum import (
    Published,
    VacuumError,
    describe,
    min_keep_days,
    plan_vacuum,
    read_manifests,
    run_folders,
    superseded_times,
    vacuum,
)

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
DATABASE = "lake_test_curated"
CURATED, STAGING = "s3://curated-bucket", "s3://staging-bucket"
P1, P2 = "ingest_date=2026-11-24", "ingest_date=2026-11-25"


@pytest.fixture
def spec(repo_root):
    return load_dataset(repo_root / "datasets" / "orders")


@pytest.fixture
def glue():
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_database(DatabaseInput={"Name": DATABASE})
        client.create_table(DatabaseName=DATABASE, TableInput={
            "Name": "orders", "PartitionKeys": [{"Name": "ingest_date", "Type": "string"}],
            "StorageDescriptor": {"Columns": [{"Name": "order_id", "Type": "string"}],
                                  "Location": f"{CURATED}/orders/"}})  # fmt: skip
        yield client


def publish(glue, partition: str, run: str, hours_ago: float | None = None) -> None:
    """Point the partition at `run`'s folder, as the publish step does `hours_ago` (None: without the
    `lake_published_at` parameter, as partitions published before it was recorded)."""
    value, location = partition.split("=", 1)[1], f"{CURATED}/orders/{partition}/run_id={run}/"
    parameters = {} if hours_ago is None else {
        "lake_published_at": (NOW - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")}
    partition_input = {"Values": [value], "StorageDescriptor": {"Location": location}, "Parameters": parameters}
    try:
        glue.create_partition(DatabaseName=DATABASE, TableName="orders", PartitionInput=partition_input)
    except glue.exceptions.AlreadyExistsException:
        glue.update_partition(DatabaseName=DATABASE, TableName="orders", PartitionValueList=[value],
                              PartitionInput=partition_input)  # fmt: skip


def land(storage: LocalStorage, uri: str, age_days: float, body: str = "x" * 10) -> str:
    storage.write_text(uri, body)
    stamp = (NOW - timedelta(days=age_days)).timestamp()
    os.utime(storage.local_path(uri), (stamp, stamp))
    return uri


def folder(partition: str, run: str) -> str:
    return f"{CURATED}/orders/{partition}/run_id={run}"


@pytest.fixture
def lake(tmp_path, glue):
    """P1 published at run-3; run-1 and run-2 superseded long ago, run-4 a failed candidate of yesterday; P2 never
    published (its only folder failed DQ 30 days ago); and objects outside any run folder."""
    storage = LocalStorage(tmp_path)
    for run, age in (("run-1", 40), ("run-2", 20), ("run-3", 20), ("run-4", 1)):
        land(storage, f"{folder(P1, run)}/part-0.parquet", age)
        land(storage, f"{STAGING}/footers/orders/{P1}/run_id={run}/footers.json", age)
        land(storage, f"{STAGING}/dq_stats/orders/{P1}/run_id={run}/stats.json", age)
    land(storage, f"{folder(P1, 'run-2')}/_SUCCESS", 20)
    land(storage, f"{folder(P2, 'run-5')}/part-0.parquet", 30)
    land(storage, f"{CURATED}/orders/_temporary/0/part-0.parquet", 60)  # not a run folder: never touched
    land(storage, f"{CURATED}/orders/{P1}/stray.parquet", 60)
    publish(glue, P1, "run-3")
    return storage


def test_vacuum__deletes_only_unpublished_folders_older_than_the_keep(lake, glue, spec):
    plan = vacuum(lake, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=7, minimum_days=1)

    assert [f.uri for f in plan.delete] == [folder(P1, "run-1"), folder(P1, "run-2"), folder(P2, "run-5")]
    assert [f.uri for f in plan.published] == [folder(P1, "run-3")]
    assert [f.uri for f in plan.recent] == [folder(P1, "run-4")]
    assert plan.bytes_freed == 40
    left = lake.list_keys(CURATED + "/")
    assert left == sorted([f"{CURATED}/orders/_temporary/0/part-0.parquet", f"{CURATED}/orders/{P1}/stray.parquet",
                           f"{folder(P1, 'run-3')}/part-0.parquet", f"{folder(P1, 'run-4')}/part-0.parquet"])
    # The deleted folders' footer indexes and DQ statistics go with them; the kept folders' stay.
    staging = {uri.split("/")[-2] for uri in lake.list_keys(STAGING + "/")}
    assert staging == {"run_id=run-3", "run_id=run-4"}


def test_vacuum__dry_run_deletes_nothing_and_plans_the_same(lake, glue, spec):
    before = lake.list_keys(CURATED + "/") + lake.list_keys(STAGING + "/")
    dry = vacuum(lake, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=7, minimum_days=1, dry_run=True)
    assert lake.list_keys(CURATED + "/") + lake.list_keys(STAGING + "/") == before
    assert [f.uri for f in dry.delete] == [folder(P1, "run-1"), folder(P1, "run-2"), folder(P2, "run-5")]


def test_vacuum__a_longer_keep_keeps_more(lake, glue, spec):
    plan = vacuum(lake, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=25, minimum_days=1, dry_run=True)
    assert [f.uri for f in plan.delete] == [folder(P1, "run-1"), folder(P2, "run-5")]


def manifest(storage: LocalStorage, execution: str, age_days: float, published: dict[str, str] | str,
             started_days: float | None = None) -> None:  # fmt: skip
    """An execution's batch manifest (etl/batch.py), written `age_days` ago by an execution started `started_days`
    ago (as the state machine writes it, `$$.Execution.StartTime`; without it, as older manifests were)."""
    if isinstance(published, str):
        land(storage, f"{STAGING}/manifests/orders/{execution}.json", age_days, published)
        return
    document = {"objects": [], "published": [{"partition": p, "location": loc} for p, loc in published.items()]}
    if started_days is not None:
        document["started_at"] = (NOW - timedelta(days=started_days)).isoformat().replace("+00:00", "Z")
    land(storage, f"{STAGING}/manifests/orders/{execution}.json", age_days, json.dumps(document))


def test_vacuum__keeps_an_old_folder_a_recent_execution_merges_onto(lake, glue, spec):
    """run-2 was written 20 days ago and superseded since; an execution started two days ago merged onto it (it may
    have failed and be redriven at its ETL, which reads run-2 again). run-1 is named only by an execution that started
    before the keep, and run-5's manifest names another dataset's folder of the same name layout: neither is kept."""
    manifest(lake, "exec-recent", 2, {P1: folder(P1, "run-2") + "/", P2: ""})
    manifest(lake, "exec-old", 10, {P1: folder(P1, "run-1") + "/"})
    manifest(lake, "exec-other", 1, {P2: f"{CURATED}/customers/{P2}/run_id=run-5/"})

    plan = vacuum(lake, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=7, minimum_days=1)

    assert [f.uri for f in plan.merge_bases] == [folder(P1, "run-2")]
    assert [f.uri for f in plan.delete] == [folder(P1, "run-1"), folder(P2, "run-5")]
    assert f"{folder(P1, 'run-2')}/part-0.parquet" in lake.list_keys(CURATED + "/")


@pytest.fixture
def chain(tmp_path, glue):
    """P1 fed by batch executions b1..b4, each merging onto the previous one's folder, all written within the
    keep; b4 is published. b4's manifest, written a day ago, names b3: b3 was published then, and b2 (which b3's
    manifest names) was superseded by then; b1 was by the time b3's manifest was written, 2 days ago. When b3 was
    superseded no manifest tells (b4 is a batch run: its publish time is not recorded)."""
    storage = LocalStorage(tmp_path)
    for run, age in (("b1", 4.0), ("b2", 3.0), ("b3", 2.0), ("b4", 1.0)):
        land(storage, f"{folder(P1, run)}/part-0.parquet", age - 0.01)
    manifest(storage, "b2", 3.0, {P1: folder(P1, "b1") + "/"}, started_days=3.001)
    manifest(storage, "b3", 2.0, {P1: folder(P1, "b2") + "/"}, started_days=2.001)
    manifest(storage, "b4", 1.0, {P1: folder(P1, "b3") + "/"}, started_days=1.001)
    publish(glue, P1, "b4")
    return storage


def test_vacuum__deletes_superseded_folders_before_the_keep(chain, glue, spec):
    """The manifests prove b1 and b2 superseded a day or more ago, and every execution that merges onto one of
    them has published its own folder since: they go at once, not after the 15-day keep. b3 waits out the keep."""
    plan = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1)

    assert [f.uri for f in plan.superseded] == [folder(P1, "b1"), folder(P1, "b2")]
    assert [f.uri for f in plan.delete] == [folder(P1, "b1"), folder(P1, "b2")]
    assert [f.uri for f in plan.recent] == [folder(P1, "b3")]
    assert chain.list_keys(CURATED + "/") == [f"{folder(P1, run)}/part-0.parquet" for run in ("b3", "b4")]
    summary = describe(plan, "orders", 15, dry_run=False)
    assert summary[0].endswith("superseded)")
    assert "2 of them superseded more than 6 hours ago" in summary[-1]


def test_vacuum__keeps_a_superseded_folder_an_unpublished_execution_merges_onto(chain, glue, spec):
    """b5 started an hour ago merging onto b4, then b6 (a manual re-run, which writes no manifest) replaced b4; b5
    has not published its folder: it may fail and be redriven at its ETL, which reads b4 again. The manifests prove
    nothing about b4, which waits out the keep."""
    land(chain, f"{folder(P1, 'b5')}/part-0.parquet", 0.03)
    land(chain, f"{folder(P1, 'b6')}/part-0.parquet", 0.02)
    manifest(chain, "b5", 0.04, {P1: folder(P1, "b4") + "/"}, started_days=0.041)
    publish(glue, P1, "b6")

    plan = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1)

    assert [f.uri for f in plan.recent] == [folder(P1, "b3"), folder(P1, "b4"), folder(P1, "b5")]
    assert [f.uri for f in plan.delete] == [folder(P1, "b1"), folder(P1, "b2")]
    # b7 started after b5's manifest was written and names b6: b4 is proven superseded 40 minutes ago, and still
    # kept six hours later, for b5; b3 is not held by anyone (b4 has published), so it goes then.
    manifest(chain, "b7", 0.028, {P1: folder(P1, "b6") + "/"}, started_days=0.029)
    later = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW + timedelta(hours=6), keep_days=15,
                   minimum_days=1, dry_run=True)  # fmt: skip
    assert [f.uri for f in later.superseded] == [folder(P1, "b3")]
    assert folder(P1, "b4") in [f.uri for f in later.recent]


def test_vacuum__a_folder_superseded_within_the_grace_is_kept(chain, glue, spec):
    """b7 published over b4, and b8, started 1 hour ago, names b7: b4 was superseded within the last hour, and a
    query planned on it may still run; so was b3 within the last 2 hours (b7 names b4). Six hours later both go: b7
    merges onto b4 but has published, so it does not hold b4."""
    land(chain, f"{folder(P1, 'b7')}/part-0.parquet", 0.1)
    manifest(chain, "b7", 2 / 24, {P1: folder(P1, "b4") + "/"}, started_days=2 / 24 + 0.001)
    manifest(chain, "b8", 1 / 24, {P1: folder(P1, "b7") + "/"}, started_days=1 / 24 + 0.001)
    publish(glue, P1, "b7")

    plan = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)

    assert [f.uri for f in plan.recent] == [folder(P1, "b3"), folder(P1, "b4")]
    assert [f.uri for f in plan.superseded] == [folder(P1, "b1"), folder(P1, "b2")]
    later = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW + timedelta(hours=6), keep_days=15,
                   minimum_days=1, dry_run=True)  # fmt: skip
    assert [f.uri for f in later.superseded] == [folder(P1, run) for run in ("b1", "b2", "b3", "b4")]


def test_vacuum__manifests_written_concurrently_prove_nothing(chain, spec):
    """b9 started before b4's manifest was written but wrote its own after, naming b2: it looked the partition up
    before b3 was published, so it does not prove b3 superseded half a day ago. It does not prove b2 current half a
    day ago either, but the vacuum does not need that: b2 is left unproven (named after every later start)."""
    manifest(chain, "b9", 0.5, {P1: folder(P1, "b2") + "/"}, started_days=1.002)
    published = {P1: Published(folder(P1, "b4"), None)}
    times = superseded_times(read_manifests(chain, STAGING, spec, NOW - timedelta(days=15)), published)
    assert times == {folder(P1, "b1"): NOW - timedelta(days=2.0) + timedelta(seconds=1)}  # S3 lists whole seconds


def test_vacuum__manifests_without_a_start_time_release_nothing_early(chain, glue, spec):
    for execution, age, base in (("b2", 3.0, "b1"), ("b3", 2.0, "b2"), ("b4", 1.0, "b3")):
        manifest(chain, execution, age, {P1: folder(P1, base) + "/"})
    plan = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)
    assert (plan.delete, len(plan.recent)) == ([], 3)
    assert superseded_times(read_manifests(chain, STAGING, spec, NOW - timedelta(days=15)), {}) == {}


def test_vacuum__a_manifest_with_a_bad_start_time_stops_it_naming_the_manifest(chain, glue, spec):
    land(chain, f"{STAGING}/manifests/orders/b5.json", 0.5, json.dumps({"objects": [], "started_at": "yesterday"}))
    with pytest.raises(VacuumError, match=r"batch manifest s3://staging-bucket/manifests/orders/b5.json is not "
                                        r"readable .*yesterday"):  # fmt: skip
        vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1)
    assert len(chain.list_keys(CURATED + "/")) == 4


def test_vacuum__an_old_folder_replaced_minutes_ago_waits_out_the_grace(tmp_path, glue, spec):
    """A partition unchanged for 20 days gets a late file: batch A merges onto its old folder F and published its own
    10 minutes ago. F is older than the keep and A is done with it, but queries planned before A published may still
    read it: F is kept until 6 hours after A published (the partition's lake_published_at), then goes."""
    storage = LocalStorage(tmp_path)
    land(storage, f"{folder(P1, 'F')}/part-0.parquet", 20)
    land(storage, f"{folder(P1, 'A')}/part-0.parquet", 0.01)
    manifest(storage, "A", 0.02, {P1: folder(P1, "F") + "/"}, started_days=0.021)
    publish(glue, P1, "A", hours_ago=10 / 60)

    plan = vacuum(storage, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)
    assert ([f.uri for f in plan.grace], plan.delete) == ([folder(P1, "F")], [])
    later = vacuum(storage, glue, DATABASE, spec, CURATED, STAGING, NOW + timedelta(hours=6), keep_days=15,
                   minimum_days=1, dry_run=True)  # fmt: skip
    assert [f.uri for f in later.superseded] == [folder(P1, "F")]
    # Without lake_published_at (published before it was recorded) no time is proven: A's manifest, written within
    # the keep, names F, so F may have been published within the grace, and it is kept.
    publish(glue, P1, "A")
    plan = vacuum(storage, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)
    assert ([f.uri for f in plan.grace], plan.delete) == ([folder(P1, "F")], [])


def test_vacuum__a_folder_a_manual_rerun_replaced_within_the_grace_is_kept(tmp_path, glue, spec):
    """A manual re-run writes no manifest: nothing names the old folder it replaced an hour ago, but the partition's
    lake_published_at says every other folder was superseded at most an hour ago. Without that parameter (a
    partition published before it was recorded) the folder goes by its age alone."""
    storage = LocalStorage(tmp_path)
    land(storage, f"{folder(P1, 'old')}/part-0.parquet", 20)
    land(storage, f"{folder(P1, 'rerun')}/part-0.parquet", 0.05)
    publish(glue, P1, "rerun", hours_ago=1)
    plan = vacuum(storage, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)
    assert ([f.uri for f in plan.grace], plan.delete) == ([folder(P1, "old")], [])
    publish(glue, P1, "rerun")
    plan = vacuum(storage, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)
    assert [f.uri for f in plan.delete] == [folder(P1, "old")]


def test_vacuum__the_publish_time_proves_the_folder_before_the_current_one_superseded(chain, glue, spec):
    """b3 has no later manifest naming another folder, but b4 was published (lake_published_at) 20 hours ago:
    b3 was superseded by then."""
    publish(glue, P1, "b4", hours_ago=20)
    plan = vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1, dry_run=True)
    assert [f.uri for f in plan.superseded] == [folder(P1, "b1"), folder(P1, "b2"), folder(P1, "b3")]


def test_vacuum__a_start_within_a_second_of_a_manifest_write_proves_nothing(tmp_path, spec):
    """S3 lists LastModified in whole seconds: a manifest listed at 10:00:00 may have been written at 10:00:00.9, after
    an execution started at 10:00:00.5 looked up another folder."""
    storage = LocalStorage(tmp_path)
    manifest(storage, "A", 1.0, {P1: folder(P1, "F") + "/"})
    manifest(storage, "B", 0.9, {P1: folder(P1, "G") + "/"}, started_days=1.0 - 0.5 / 86400)
    manifests = read_manifests(storage, STAGING, spec, NOW - timedelta(days=15))
    assert superseded_times(manifests, {}) == {}
    manifest(storage, "B", 0.9, {P1: folder(P1, "G") + "/"}, started_days=1.0 - 1 / 86400)
    manifests = read_manifests(storage, STAGING, spec, NOW - timedelta(days=15))
    assert folder(P1, "F") in superseded_times(manifests, {})


def test_vacuum__a_manifest_naming_the_folder_itself_proves_nothing_about_it(tmp_path, spec):
    """Only a manifest naming *another* folder proves F replaced: one whose recorded start comes after its own write
    (a skewed clock, a hand-edited manifest) and that names F again proves nothing."""
    storage = LocalStorage(tmp_path)
    manifest(storage, "A", 1.0, {P1: folder(P1, "F") + "/"}, started_days=1.001)
    manifest(storage, "B", 0.9, {P1: folder(P1, "F") + "/"}, started_days=0.5)
    assert superseded_times(read_manifests(storage, STAGING, spec, NOW - timedelta(days=15)), {}) == {}


def test_vacuum__a_bad_publish_time_stops_it_naming_the_partition(chain, glue, spec):
    glue.update_partition(DatabaseName=DATABASE, TableName="orders", PartitionValueList=[P1[12:]], PartitionInput={
        "Values": [P1[12:]], "StorageDescriptor": {"Location": folder(P1, "b4") + "/"},
        "Parameters": {"lake_published_at": "tuesday"}})  # fmt: skip
    with pytest.raises(VacuumError, match=r"partition \['2026-11-24'\] of lake_test_curated.orders: "
                                        r"lake_published_at 'tuesday' is not an ISO 8601 time"):  # fmt: skip
        vacuum(chain, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=15, minimum_days=1)
    assert len(chain.list_keys(CURATED + "/")) == 4


def test_vacuum__an_unreadable_recent_manifest_stops_it_naming_the_manifest(lake, glue, spec):
    manifest(lake, "exec-broken", 1, '{"objects": [], "published": [')
    before = lake.list_keys(CURATED + "/")
    with pytest.raises(VacuumError, match=r"batch manifest s3://staging-bucket/manifests/orders/exec-broken.json is "
                                        r"not readable .*nothing was deleted"):
        vacuum(lake, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=7, minimum_days=1)
    assert lake.list_keys(CURATED + "/") == before


def test_vacuum__a_folder_is_as_young_as_its_newest_object(tmp_path, spec):
    storage = LocalStorage(tmp_path)
    land(storage, f"{folder(P1, 'run-1')}/part-0.parquet", 30)
    land(storage, f"{folder(P1, 'run-1')}/part-1.parquet", 2)  # still being written to two days ago
    plan = plan_vacuum(run_folders(storage, CURATED, spec), {}, NOW, keep_days=7, minimum_days=1)
    assert (plan.delete, [f.uri for f in plan.recent]) == ([], [folder(P1, "run-1")])


def test_vacuum__keep_shorter_than_the_longest_execution_is_refused(lake, glue, spec):
    # the 14-day redrive window plus the longest execution, in whole days
    assert (min_keep_days(240), min_keep_days(2880), min_keep_days(2881)) == (15, 16, 17)
    with pytest.raises(VacuumError, match=r"keep of 16 days: keep at least 17 days, the redrive window"):
        vacuum(lake, glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=16, minimum_days=min_keep_days(2881))
    assert len(lake.list_keys(CURATED + "/")) == 8  # nothing deleted


def test_vacuum__without_a_curated_table_names_it(tmp_path, spec):
    with mock_aws():
        glue = boto3.client("glue", region_name="us-east-1")
        glue.create_database(DatabaseInput={"Name": DATABASE})
        with pytest.raises(VacuumError, match=rf"table {DATABASE}.orders does not exist"):
            vacuum(LocalStorage(tmp_path), glue, DATABASE, spec, CURATED, STAGING, NOW, keep_days=7, minimum_days=1)


def test_s3_storage__lists_sizes_and_times_and_deletes_in_a_versioned_bucket():
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="curated-bucket")
        s3.put_bucket_versioning(Bucket="curated-bucket", VersioningConfiguration={"Status": "Enabled"})
        storage = S3Storage(s3)
        uris = [f"s3://curated-bucket/orders/k={n}/part.parquet" for n in range(3)]
        for n, uri in enumerate(uris):
            s3.put_object(Bucket="curated-bucket", Key=uri.split("/", 3)[3], Body=b"x" * (n + 1))
        listed = storage.list_objects("s3://curated-bucket/orders/")
        assert [(o.uri, o.size) for o in listed] == [(u, n + 1) for n, u in enumerate(uris)]
        assert all(o.modified.tzinfo is not None for o in listed)

        storage.delete(uris[:2])
        assert storage.list_keys("s3://curated-bucket/orders/") == uris[2:]
        versions = s3.list_object_versions(Bucket="curated-bucket", Prefix="orders/")
        assert len(versions["Versions"]) == 3  # the deleted objects' data stays, as noncurrent versions


def test_cli_vacuum__local_lake_dry_run_then_delete(tmp_path, glue):
    import argparse

    from rich.console import Console

    from lake.cli import cmd_vacuum
    from lake.context import LakeContext, StackResources

    storage = LocalStorage(tmp_path / "lake")
    old = datetime.now(UTC) - timedelta(days=16)  # the local stage's timeout: the minimum keep is 15 days
    for run in ("run-1", "run-2"):
        uri = land(storage, f"{folder(P1, run)}/part-0.parquet", 0)
        os.utime(storage.local_path(uri), (old.timestamp(), old.timestamp()))
    publish(glue, P1, "run-2")
    resources = StackResources("arn:machine", ("orders",), DATABASE, "staging-bucket", "raw-bucket", "curated-bucket",
                               "workgroup")  # fmt: skip
    ctx = LakeContext(resources, lambda service: glue, local_root=tmp_path)

    def run(*flags: str) -> str:
        console = Console(record=True, width=200)
        args = argparse.Namespace(dataset="orders", keep_days=None, dry_run="--dry-run" in flags, stage=None)
        assert cmd_vacuum(ctx, args, console) == 0
        return console.export_text()

    assert f"would delete {P1}/run_id=run-1 (1 objects" in run("--dry-run")
    assert len(storage.list_keys(CURATED + "/")) == 2
    printed = run()
    assert "orders: deleted 1 run folders" in printed
    assert ("kept 1 published, 0 younger than 15 days, 0 that an execution may still merge onto and 0 maybe "
            "superseded less than 6 hours ago") in printed
    assert storage.list_keys(CURATED + "/") == [f"{folder(P1, 'run-2')}/part-0.parquet"]


def job_args(**overrides: str) -> dict[str, str]:
    return {"dataset": "orders", "curated_uri": CURATED, "staging_uri": STAGING, "datasets_uri": "s3://assets/datasets",
            "curated_database": DATABASE, "min_keep_days": "7", "JOB_RUN_ID": "jr_1", **overrides}  # fmt: skip


def test_vacuum_job__dry_run_reports_and_deletes_nothing_then_a_run_deletes(lake, glue, repo_root):
    from etl.vacuum_job import report_uri, run

    lake.write_text("s3://assets/datasets/orders/dataset.yaml",
                    (repo_root / "datasets" / "orders" / "dataset.yaml").read_text())  # fmt: skip
    before = lake.list_keys(CURATED + "/")
    _, dry = run(job_args(dry_run="true"), lake, glue, NOW)
    assert lake.list_keys(CURATED + "/") == before
    assert [d["folder"] for d in dry["deleted"]] == [f"{P1}/run_id=run-1", f"{P1}/run_id=run-2", f"{P2}/run_id=run-5"]

    _, done = run(job_args(JOB_RUN_ID="jr_2"), lake, glue, NOW)
    assert (done["dry_run"], done["keep_days"], done["bytes_freed"]) == (False, 7.0, 40)
    assert len(lake.list_keys(CURATED + "/")) == len(before) - 4
    assert json.loads(lake.read_text(report_uri(STAGING, "orders", "jr_2"))) == done


def test_vacuum_job__bad_argument_names_it_and_deletes_nothing(lake, glue):
    from etl.vacuum_job import run

    with pytest.raises(ValueError, match=r"job argument --keep_days: 'two weeks' is not a number of days"):
        run(job_args(keep_days="two weeks"), lake, glue, NOW)
    with pytest.raises(ValueError, match=r"job argument --dry_run: 'yes' is neither true nor false"):
        run(job_args(dry_run="yes"), lake, glue, NOW)
    assert len(lake.list_keys(CURATED + "/")) == 8
