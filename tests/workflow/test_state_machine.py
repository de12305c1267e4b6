"""The synthesized state machine, executed in the emulator: the path taken and the message sent per case."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lake.local.glue_runtime import SimulatedJob
from lake.local.simulated import dq_result_writer
from tests.workflow.conftest import CSV

PARTITION = "ingest_date=2026-11-24"
HAPPY_TAIL = [
    "Crawl succeeded?", "Look up published partitions", "Get published partition", "Not published yet",
    "Batch or re-run?", "Batch manifest", "Write batch manifest", "Use batch manifest", "Run ETL job",
    "Run data quality job", "Read data quality result", "Any partition passed?", "Get curated table",
    "Publish partitions", "Partition passed?", "Get partition", "Still unpublished?", "Create partition",
    "Record metrics (published)", "All partitions passed?", "Notify success", "Published",
]  # fmt: skip


def _records(bucket, *keys, size=10):
    """The execution input the Pipe sends: its input template applied to each SQS record of the batch."""
    from lake.local.trigger import object_created_event, pipe_payload, sqs_record
    from workflows.trigger import PIPE_INPUT_TEMPLATE

    events = [sqs_record(object_created_event(bucket, key, size), "arn:q") for key in keys]
    return pipe_payload(events, PIPE_INPUT_TEMPLATE)


def _job_runs(pipeline, job_name):
    return pipeline.cloud.client("glue").get_job_runs(JobName=job_name)["JobRuns"]


def _messages(pipeline):
    return [m["message"] for m in pipeline.outbox()]


def test_execution__happy_path_publishes_and_notifies(make_pipeline, job_names):
    pipeline = make_pipeline()
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)

    assert result.status == "SUCCEEDED", result.failed_states()
    visited = result.visited
    assert visited[:6] == ["Manual or S3 events?", "Read object events", "Objects outside partition folders?",
                           "Any data objects?", "Deduplicate partitions", "One dataset?"]  # fmt: skip
    assert visited[6:12] == ["Known dataset?", "Settings (orders)", "Check raw partitions", "Get raw partition",
                             "Raw partition is new", "New partitions?"]  # fmt: skip
    assert visited[12] == "Start crawler"
    assert visited[-len(HAPPY_TAIL) :] == HAPPY_TAIL, " | ".join(visited)
    execution_name = result.arn.rsplit(":", 1)[-1]
    partition = pipeline.cloud.client("glue").get_partition(
        DatabaseName="lake_local_curated", TableName="orders", PartitionValues=["2026-11-24"]
    )["Partition"]
    assert partition["StorageDescriptor"]["Location"].endswith(f"/orders/{PARTITION}/run_id={execution_name}/")
    (message,) = _messages(pipeline)
    assert f'Dataset orders - partitions ["{PARTITION}"] passed data quality and are published.' in message
    assert "Rows: 3 read, 1 written, 1 rejected, 1 duplicates removed." in message
    assert "Data quality: Passed (12 rules passed, 0 failed over 1 partitions). Failed rules: []" in message
    assert "Quarantined objects (unreadable, not processed): 0 []" in message
    assert "Raw table crawl: ok" in message
    assert f"Details: s3://{pipeline.bucket('StorageStaging')}/runs/orders/{execution_name}/dq_result.json" in message
    assert f"Re-run: lake rerun orders --partition {PARTITION}" in message
    (etl_run,) = _job_runs(pipeline, job_names["etl"])
    assert json.loads(etl_run["Arguments"]["--partitions"]) == [PARTITION]
    assert etl_run["Arguments"]["--run_id"] == execution_name
    transitions = len(visited)
    print(f"\nstate transitions, happy path (1 object, 1 partition, local poll interval): {transitions}")


def test_execution__second_publish_switches_the_partition(make_pipeline):
    pipeline = make_pipeline()
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (first,) = pipeline.drain(timeout=120)
    (second,) = [pipeline.wait(pipeline.start_manual("orders", [PARTITION], name="rerun-1"), timeout=120)]
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert "Switch partition" in second.visited and "Create partition" not in second.visited
    assert "Newer than published?" in second.visited
    location = pipeline.cloud.client("glue").get_partition(
        DatabaseName="lake_local_curated", TableName="orders", PartitionValues=["2026-11-24"]
    )["Partition"]["StorageDescriptor"]["Location"]
    assert location.endswith("/run_id=rerun-1/")


def test_execution__known_partition_skips_the_crawl(make_pipeline):
    pipeline = make_pipeline()
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (first,) = pipeline.drain(timeout=120)
    pipeline.put_raw("orders", PARTITION, "b.csv", CSV)
    (second,) = pipeline.drain(timeout=120)
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED")
    assert "Start crawler" in first.visited
    assert "Start crawler" not in second.visited
    new_at = second.visited.index("New partitions?")
    assert second.visited[new_at + 1] == "Look up published partitions"
    crawler = pipeline.cloud.physical_name("CatalogCrawlerorders", "AWS::Glue::Crawler")
    assert pipeline.cloud.client("glue").get_crawler(Name=crawler)["Crawler"]["LastCrawl"]["Status"] == "SUCCEEDED"
    print(f"\nstate transitions, known partition (crawl skipped): {len(second.visited)}")


def test_execution__duplicate_events_for_one_partition_run_etl_once(make_pipeline, job_names):
    pipeline = make_pipeline()
    for name in ("a.csv", "b.csv", "c.csv"):
        pipeline.put_raw("orders", PARTITION, name, CSV)
    pipeline.put_raw("orders", "ingest_date=2026-11-25", "d.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "SUCCEEDED"
    (etl_run,) = _job_runs(pipeline, job_names["etl"])
    assert sorted(json.loads(etl_run["Arguments"]["--partitions"])) == [PARTITION, "ingest_date=2026-11-25"]


def test_trigger__objects_outside_dataset_prefixes_start_nothing(make_pipeline, job_names):
    pipeline = make_pipeline()
    pipeline.put_raw("customers", PARTITION, "a.csv", CSV)
    pipeline.put_raw("orders", PARTITION, "", b"")  # zero-byte "folder" marker
    assert pipeline.drain() == []
    assert len(pipeline.trigger.unmatched) == 2


def test_execution__ignored_keys_in_a_batch_end_without_work(make_pipeline, job_names):
    pipeline = make_pipeline()
    payload = _records(pipeline.bucket("StorageRaw"), "orders/ingest_date=2026-11-24/_temporary/0/part-0.csv",
                       "orders/ingest_date=2026-11-24/x.csv.tmp", "orders/ingest_date=2026-11-24/.hidden",
                       "customers/a.csv")  # fmt: skip
    arn = pipeline.cloud.client("stepfunctions").start_execution(
        stateMachineArn=pipeline.state_machine_arn, input=payload)["executionArn"]  # fmt: skip
    result = pipeline.wait(arn, timeout=60)
    assert result.status == "SUCCEEDED"
    assert result.visited[-1] == "Nothing to process"
    assert _job_runs(pipeline, job_names["etl"]) == []
    assert _messages(pipeline) == []


def test_execution__objects_outside_partition_folders_are_reported_not_processed(make_pipeline, job_names):
    """Regression: `orders/loose.csv` was given the event day's partition, but the ETL lists only partition
    folders, so the run failed with FileNotFoundError on AWS (the simulated ETL here never noticed)."""
    pipeline = make_pipeline()
    pipeline.put_raw("orders", None, "loose.csv", CSV)
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "SUCCEEDED"
    assert "Notify: objects outside partition folders" in result.visited
    (etl_run,) = _job_runs(pipeline, job_names["etl"])
    assert json.loads(etl_run["Arguments"]["--partitions"]) == [PARTITION]
    notice = next(m for m in pipeline.outbox() if "outside partition folders" in m["subject"])
    assert '["orders/loose.csv"]' in notice["message"]
    assert "orders/ingest_date=<value>/" in notice["message"]


def test_execution__only_unpartitioned_objects_notify_and_end(make_pipeline, job_names):
    pipeline = make_pipeline()
    pipeline.put_raw("orders", None, "loose.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert (result.status, result.visited[-1]) == ("SUCCEEDED", "Nothing to process")
    assert _job_runs(pipeline, job_names["etl"]) == []
    assert ["orders/loose.csv" in m for m in _messages(pipeline)] == [True]


def test_execution__crawler_already_running_waits_then_crawls_again(make_pipeline):
    pipeline = make_pipeline(crawl_min_duration_s=1.5)
    crawler = pipeline.cloud.physical_name("CatalogCrawlerorders", "AWS::Glue::Crawler")
    pipeline.cloud.client("glue").start_crawler(Name=crawler)  # a crawl started before the new partition lands
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "SUCCEEDED"
    visited = result.visited
    assert visited.count("Start crawler") == 2
    first_start = visited.index("Start crawler")
    assert visited[first_start + 1] == "Crawl already running"
    assert "Restart crawler" in visited
    assert visited.index("Restart crawler") < len(visited) - 1 - visited[::-1].index("Start crawler")


def test_execution__failed_crawl_does_not_block_the_etl_and_is_reported(make_pipeline, job_names, monkeypatch):
    """The ETL lists S3 itself; a crawl that fails (here: forced) must not hold back the partition."""
    from lake.local.crawler import CrawlError, CrawlerRuntime

    def fail(self, crawler):
        raise CrawlError("cannot read s3://raw/orders/ingest_date=2026-11-24/broken.parquet: not a Parquet file")

    monkeypatch.setattr(CrawlerRuntime, "crawl_once", fail)
    pipeline = make_pipeline()
    pipeline.put_raw("orders", PARTITION, "broken.parquet", b"this is not parquet")
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "SUCCEEDED", result.failed_states()
    assert "Note crawl error" in result.visited
    assert len(_job_runs(pipeline, job_names["etl"])) == 1
    crawler = pipeline.cloud.physical_name("CatalogCrawlerorders", "AWS::Glue::Crawler")
    last_crawl = pipeline.cloud.client("glue").get_crawler(Name=crawler)["Crawler"]["LastCrawl"]
    (message,) = _messages(pipeline)
    assert f"Raw table crawl: crawler {crawler} ended its last crawl {last_crawl['Status']}: " \
           f"{last_crawl['ErrorMessage']}" in message  # fmt: skip
    assert "broken.parquet" in last_crawl["ErrorMessage"]


def test_execution__poll_bound_reached(make_pipeline):
    pipeline = make_pipeline(crawl_min_duration_s=30)
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "FAILED"
    assert result.error == "CrawlerPollTimeout"
    assert result.visited.count("Get crawler") == 8  # crawler_max_polls of the local stage
    assert any("was not READY after 8 polls" in m for m in _messages(pipeline))


def test_execution__transient_concurrency_error_is_retried(make_pipeline, job_names):
    pipeline = make_pipeline(etl=SimulatedJob(duration_s=0.1, reject_starts=1))
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "SUCCEEDED"
    assert result.visited.count("Run ETL job") == 1
    assert len(_job_runs(pipeline, job_names["etl"])) == 1


def test_execution__etl_failure_fails_at_its_state_and_is_reported(make_pipeline):
    error = "ValueError: datasets/orders/dataset.yaml: format: bad"
    pipeline = make_pipeline(etl=SimulatedJob(duration_s=0.1, outcome="FAILED", error=error))
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "FAILED"
    assert result.visited[-1] == "Run ETL job"
    assert result.error == "States.TaskFailed"
    assert "datasets/orders/dataset.yaml: format: bad" in result.cause
    (message,) = _messages(pipeline)
    name = result.arn.rsplit(":", 1)[-1]
    assert f"Pipeline execution {name} ended with status FAILED." in message
    assert "datasets/orders/dataset.yaml: format: bad" in message  # the Glue job run's ErrorMessage
    assert f"Retry from the failed state: lake redrive {name}" in message


def test_execution__data_quality_failure_quarantines_and_alerts(make_pipeline):
    pipeline = make_pipeline(dq=SimulatedJob(duration_s=0.1, writes=dq_result_writer("all")))
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert result.status == "FAILED"
    assert result.error == "DataQualityFailed"
    assert result.visited[-3:] == ["Record metrics (quarantined)", "Notify: Data quality failed", "Data quality failed"]
    assert "Publish partitions" not in result.visited
    partitions = pipeline.cloud.client("glue").get_partitions(DatabaseName="lake_local_curated", TableName="orders")
    assert partitions["Partitions"] == []
    (message,) = _messages(pipeline)
    assert f'partitions ["{PARTITION}"] failed data quality and stay unpublished (quarantined)' in message
    assert "(10 rules passed, 2 failed over 1 partitions)" in message
    assert f"Re-run: lake rerun orders --partition {PARTITION}" in message


def test_execution__failing_partition_is_quarantined_and_passing_one_published(make_pipeline):
    bad = "ingest_date=2026-11-25"
    pipeline = make_pipeline(dq=SimulatedJob(duration_s=0.1, writes=dq_result_writer((bad,))))
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    pipeline.put_raw("orders", bad, "b.csv", CSV)
    (result,) = pipeline.drain(timeout=120)
    assert (result.status, result.error) == ("FAILED", "DataQualityFailed")
    assert result.visited[-5:] == ["Create partition", "Record metrics (published)", "All partitions passed?",
                                   "Notify: Data quality failed", "Data quality failed"]  # fmt: skip
    assert result.visited.count("Create partition") == 1
    partitions = pipeline.cloud.client("glue").get_partitions(DatabaseName="lake_local_curated", TableName="orders")
    assert [p["Values"] for p in partitions["Partitions"]] == [["2026-11-24"]]
    (message,) = _messages(pipeline)
    assert f'partitions ["{bad}"] failed data quality and stay unpublished (quarantined); ' \
           f'partitions ["{PARTITION}"] passed and are published.' in message  # fmt: skip
    assert f"Re-run: lake rerun orders --partition {bad}" in message


def test_execution__manual_unknown_dataset_fails_clearly(make_pipeline):
    pipeline = make_pipeline()
    result = pipeline.wait(pipeline.start_manual("customers", [PARTITION]), timeout=60)
    assert (result.status, result.error) == ("FAILED", "UnknownDataset")
    assert "configured: orders" in result.cause


def _curated_partition(pipeline, value="2026-11-24"):
    return pipeline.cloud.client("glue").get_partition(
        DatabaseName="lake_local_curated", TableName="orders", PartitionValues=[value]
    )["Partition"]


def test_execution__concurrent_publishes_of_one_new_partition_both_succeed(make_pipeline, monkeypatch):
    """Both executions look the partition up before either creates it (forced with barriers), so one
    CreatePartition fails with AlreadyExists; before the fix that failed the execution.

    The first barrier holds both ETL runs until both are running, so both pre-ETL lookups of the published
    snapshot are done; every curated lookup after it is a publish lookup, and the second barrier holds those
    two until both are made. Counting calls instead raced on a slow machine (one execution published before
    the other had looked up its snapshot)."""
    import threading

    from moto.glue.models import GlueBackend

    original = GlueBackend.get_partition
    publish_lookups = {"armed": False, "count": 0}
    lock = threading.Lock()

    def arm():  # run by the barrier before it releases either ETL run
        with lock:
            publish_lookups["armed"] = True

    both_etl_running = threading.Barrier(2, action=arm, timeout=60)
    both_looked_up = threading.Barrier(2, timeout=60)

    def etl_writes(args, root):
        both_etl_running.wait()

    def get_partition(self, database_name, table_name, values):
        if database_name == "lake_local_curated":
            with lock:
                held = publish_lookups["armed"] and publish_lookups["count"] < 2
                publish_lookups["count"] += held
            if held:
                both_looked_up.wait()
        return original(self, database_name, table_name, values)

    monkeypatch.setattr(GlueBackend, "get_partition", get_partition)
    pipeline = make_pipeline(etl=SimulatedJob(duration_s=0.1, writes=etl_writes))
    arns = [pipeline.start_manual("orders", [PARTITION], name=f"concurrent-{i}") for i in range(2)]
    results = [pipeline.wait(arn, timeout=120) for arn in arns]
    assert [r.status for r in results] == ["SUCCEEDED", "SUCCEEDED"], [r.failed_states() for r in results]
    assert publish_lookups["count"] == 2
    conflicts = [s for r in results for s in r.states if s.error == "Glue.AlreadyExistsException"]
    assert [s.name for s in conflicts] == ["Create partition"]
    staging = pipeline.storage
    bucket = pipeline.bucket("StorageStaging")
    snapshots = {r.name: json.loads(staging.read_text(f"s3://{bucket}/runs/orders/{r.name}/dq_summary.json"))
                 ["etl"]["ingested_at"] for r in results}  # fmt: skip
    newest = max(snapshots, key=snapshots.get)
    partition = _curated_partition(pipeline)
    assert partition["StorageDescriptor"]["Location"].endswith(f"/run_id={newest}/")
    assert partition["Parameters"]["lake_snapshot_at"] == snapshots[newest]


def test_execution__older_snapshot_never_replaces_a_newer_published_one(make_pipeline):
    """A run whose ETL listed the raw objects earlier (it was held up, e.g. behind the crawler) must not switch
    the partition back to its older data after a later run published."""
    snapshots = iter(["2026-11-24T12:00:00+00:00", "2026-11-24T11:00:00+00:00"])

    def write(args, root):
        dq_result_writer(ingested_at=next(snapshots))(args, root)

    pipeline = make_pipeline(dq=SimulatedJob(duration_s=0.1, writes=write))
    newer = pipeline.wait(pipeline.start_manual("orders", [PARTITION], name="newer"), timeout=120)
    older = pipeline.wait(pipeline.start_manual("orders", [PARTITION], name="older"), timeout=120)
    assert (newer.status, older.status) == ("SUCCEEDED", "SUCCEEDED")
    assert "Newer data already published" in older.visited and "Switch partition" not in older.visited
    assert _curated_partition(pipeline)["StorageDescriptor"]["Location"].endswith("/run_id=newer/")


def _task_errors(pipeline, execution_arn: str) -> list[tuple[str, str]]:
    """(state, error) of every failed task attempt, retried or not, from the execution's history."""
    from lake.executions import history

    state, found = None, []
    for event in history(pipeline.cloud.client("stepfunctions"), execution_arn):
        if event["type"].endswith("StateEntered"):
            state = event["stateEnteredEventDetails"]["name"]
        elif event["type"] == "TaskFailed":
            found.append((state, event["taskFailedEventDetails"]["error"]))
    return found


def _fail_once(monkeypatch, cls, method: str, error, when=lambda self, *args: True) -> dict:
    """Make `cls.method` raise `error()` on its first call for which `when(self, *args)` holds."""
    original = getattr(cls, method)
    left = {"count": 1}

    def failing(self, *args, **kwargs):
        if left["count"] and when(self, *args):
            left["count"] -= 1
            raise error()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, failing)
    return left


def test_execution__throttled_catalog_call_is_retried(make_pipeline, monkeypatch):
    """Glue's model defines ThrottlingException, so a throttled aws-sdk:glue call is `Glue.ThrottlingException`."""
    from moto.core.exceptions import JsonRESTError
    from moto.glue.models import GlueBackend

    throttling = lambda: JsonRESTError("ThrottlingException", "Rate exceeded")  # noqa: E731
    left = _fail_once(monkeypatch, GlueBackend, "get_table", throttling,
                      when=lambda _, database, table: database == "lake_local_curated")  # fmt: skip
    pipeline = make_pipeline()
    result = pipeline.wait(pipeline.start_manual("orders", [PARTITION]), timeout=120)
    assert result.status == "SUCCEEDED", result.failed_states()
    assert left["count"] == 0
    # Not-found lookups are caught by design (new partitions); the one other failed attempt is the throttled one.
    errors = [e for _, e in _task_errors(pipeline, result.arn) if e != "Glue.EntityNotFoundException"]
    assert errors == ["Glue.ThrottlingException"]


@pytest.mark.filterwarnings("ignore:Exception\\(CloudWatchException\\) with code Throttling:UserWarning")
def test_execution__s3_slow_down_and_cloudwatch_throttling_retried_under_their_aws_names(make_pipeline, monkeypatch):
    """S3's 503 SlowDown and CloudWatch's `Throttling` are codes their service models do not define, so the emulator
    (like Step Functions on AWS) reports the service's base exception: `S3.S3Exception` and
    `CloudWatch.CloudWatchException` (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html,
    https://github.com/cdklabs/construct-hub/pull/1904). A retrier on `S3.SlowDownException` never fires."""
    from moto.cloudwatch.exceptions import CloudWatchException
    from moto.cloudwatch.models import CloudWatchBackend
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    # The GetObject request handler: the backend's get_object also serves moto's own PutObject.
    slow_down = _fail_once(monkeypatch, S3Response, "get_object",
                           lambda: S3ClientError("SlowDown", "Please reduce your request rate."),
                           when=lambda response: response.path.endswith("/dq_summary.json"))  # fmt: skip
    throttled = _fail_once(monkeypatch, CloudWatchBackend, "put_metric_data",
                           lambda: CloudWatchException("Throttling", "Rate exceeded"))  # fmt: skip
    pipeline = make_pipeline()
    result = pipeline.wait(pipeline.start_manual("orders", [PARTITION]), timeout=120)
    assert result.status == "SUCCEEDED", result.failed_states()
    assert (slow_down["count"], throttled["count"]) == (0, 0)
    errors = [(state, e) for state, e in _task_errors(pipeline, result.arn) if e != "Glue.EntityNotFoundException"]
    assert errors == [("Read data quality result", "S3.S3Exception"),
                      ("Record metrics (published)", "CloudWatch.CloudWatchException")]


def test_execution__dq_result_of_many_partitions_stays_under_the_payload_limit(make_pipeline):
    """The full DQ result grows with partitions x rules (~0.4 KB per rule result); the state machine reads the
    compact summary, so 100 partitions with every rule reported stay far below 256 KiB per state."""
    partitions = [f"ingest_date=2026-08-{day:02d}" for day in range(1, 32)] + \
                 [f"ingest_date=2026-09-{day:02d}" for day in range(1, 31)] + \
                 [f"ingest_date=2026-10-{day:02d}" for day in range(1, 32)] + \
                 [f"ingest_date=2026-11-{day:02d}" for day in range(1, 9)]  # fmt: skip
    failing = tuple(partitions[:40])
    pipeline = make_pipeline(dq=SimulatedJob(duration_s=0.1, writes=dq_result_writer(
        failing, rules_failed_per_partition=12, quarantined=tuple(
            {"object": f"s3://raw/orders/{p}/bad.csv.gz", "partition": p, "reason": "corrupt gzip"}
            for p in failing))))  # fmt: skip
    result = pipeline.wait(pipeline.start_manual("orders", partitions, name="many"), timeout=300)
    assert (result.status, result.error) == ("FAILED", "DataQualityFailed"), result.failed_states()
    bucket = pipeline.bucket("StorageStaging")
    full = pipeline.storage.read_text(f"s3://{bucket}/runs/orders/many/dq_result.json")
    summary = pipeline.storage.read_text(f"s3://{bucket}/runs/orders/many/dq_summary.json")
    assert len(full) > 256 * 1024 > 20 * len(summary)
    (message,) = [m for m in _messages(pipeline) if "failed data quality" in m]
    assert "Quarantined objects (unreadable, not processed): 40 [" in message
    assert len(_curated_partitions(pipeline)) == 60


def _curated_partitions(pipeline):
    return pipeline.cloud.client("glue").get_partitions(DatabaseName="lake_local_curated", TableName="orders")[
        "Partitions"]


def test_execution__aborted_execution_is_reported(make_pipeline):
    """Stopped as from the console (no error, no cause): the status event carries `"error": null`, which only
    a rule without an `error` filter reports (the local matcher is strict on nulls, see test_offline_trigger.py)."""
    import time

    pipeline = make_pipeline(crawl_min_duration_s=30)
    arn = pipeline.start_manual("orders", [PARTITION], name="to-abort")
    time.sleep(2)
    pipeline.cloud.client("stepfunctions").stop_execution(executionArn=arn)
    result = pipeline.wait(arn, timeout=60)
    assert (result.status, result.error) == ("ABORTED", None)
    (message,) = _messages(pipeline)
    assert "Pipeline execution to-abort ended with status ABORTED." in message
    assert "lake show to-abort" in message


def test_execution__timed_out_execution_is_reported(make_pipeline):
    """The deployed definition with a 2 s execution timeout (the stage's is 45 min): TIMED_OUT, `"error": null`."""
    pipeline = make_pipeline(crawl_min_duration_s=30)
    sfn = pipeline.cloud.client("stepfunctions")
    definition = json.loads(sfn.describe_state_machine(stateMachineArn=pipeline.state_machine_arn)["definition"])
    definition["TimeoutSeconds"] = 2
    sfn.update_state_machine(stateMachineArn=pipeline.state_machine_arn, definition=json.dumps(definition))
    result = pipeline.wait(pipeline.start_manual("orders", [PARTITION], name="to-time-out"), timeout=60)
    assert (result.status, result.error) == ("TIMED_OUT", None)
    (message,) = _messages(pipeline)
    assert "Pipeline execution to-time-out ended with status TIMED_OUT." in message
    assert "lake show to-time-out" in message


def test_failure_rule__reports_an_execution_started_from_another_process(make_pipeline):
    """`lake --local rerun` in another terminal starts the execution with its own client and never waits
    for it; as on AWS, the status rule (not the caller) reports the failure."""
    import time

    import boto3

    pipeline = make_pipeline()
    other_process = boto3.client("stepfunctions", endpoint_url=pipeline.cloud.endpoint_url, region_name="us-east-1",
                                 aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    other_process.start_execution(stateMachineArn=pipeline.state_machine_arn, name="rerun-elsewhere",
                                  input=json.dumps({"dataset": "customers", "partitions": [PARTITION]}))  # fmt: skip
    deadline = time.monotonic() + 60
    while not _messages(pipeline) and time.monotonic() < deadline:
        time.sleep(0.2)
    (message,) = _messages(pipeline)
    assert "Pipeline execution rerun-elsewhere ended with status FAILED." in message
    assert "UnknownDataset" in message


def _etl_arguments() -> tuple[list[dict[str, str]], SimulatedJob]:
    seen: list[dict[str, str]] = []
    return seen, SimulatedJob(duration_s=0.1, writes=lambda args, root: seen.append(dict(args)))


def _read(pipeline, uri: str) -> dict:
    return json.loads(pipeline.storage.read_text(uri))


def test_execution__a_batch_run_reads_only_its_objects_merged_onto_the_published_snapshot(make_pipeline):
    """An execution started by S3 events writes a manifest of its batch and of the snapshot it merges onto; a
    manual re-run reprocesses whole partitions; the second batch publishes over the snapshot it merged onto."""
    etl_args, etl = _etl_arguments()
    pipeline = make_pipeline(etl=etl)
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (first,) = pipeline.drain(timeout=120)
    pipeline.put_raw("orders", PARTITION, "b.csv", CSV)
    (second,) = pipeline.drain(timeout=120)
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED"), second.failed_states()
    curated = pipeline.bucket("StorageCurated")
    first_folder = f"s3://{curated}/orders/{PARTITION}/run_id={first.name}/"

    manifests = [_read(pipeline, args["--manifest_uri"]) for args in etl_args]
    sfn = pipeline.cloud.client("stepfunctions")
    for manifest, execution in zip(manifests, (first, second), strict=True):  # what the vacuum orders them by
        started = datetime.fromisoformat(manifest.pop("started_at"))
        assert started == sfn.describe_execution(executionArn=execution.arn)["startDate"]
    assert manifests[0] == {"objects": [f"orders/{PARTITION}/a.csv"], "published": [{"partition": PARTITION,
                                                                                    "location": ""}]}
    assert manifests[1] == {"objects": [f"orders/{PARTITION}/b.csv"], "published": [{"partition": PARTITION,
                                                                                    "location": first_folder}]}
    assert etl_args[1]["--manifest_uri"] == (f"s3://{pipeline.bucket('StorageStaging')}/manifests/orders/"
                                             f"{second.name}.json")  # fmt: skip
    assert "Switch partition" in second.visited
    partition = _curated_partition(pipeline)
    assert partition["StorageDescriptor"]["Location"].endswith(f"/run_id={second.name}/")
    # When it was switched: every other folder of the partition was superseded by then (etl/vacuum.py).
    published_at = datetime.fromisoformat(partition["Parameters"]["lake_published_at"])
    assert sfn.describe_execution(executionArn=second.arn)["startDate"] <= published_at <= datetime.now(UTC)

    rerun = pipeline.wait(pipeline.start_manual("orders", [PARTITION], name="rerun"), timeout=120)
    assert rerun.status == "SUCCEEDED", rerun.failed_states()
    assert etl_args[2]["--manifest_uri"] == "none"
    assert "Reprocess whole partitions" in rerun.visited and "Write batch manifest" not in rerun.visited


def test_execution__snapshot_replaced_while_merging_starts_a_full_rerun_instead_of_publishing(make_pipeline):
    """Another run publishes the partition while this batch is merged onto the earlier snapshot: publishing
    this run would drop the other run's rows, so it starts a full re-run of the partition, which publishes."""
    glue = {}

    def publish_meanwhile(args, root):
        if args["--manifest_uri"] != "none" and glue.get("armed"):
            partition = _curated_partition(pipeline)
            partition["StorageDescriptor"]["Location"] = partition["StorageDescriptor"]["Location"].replace(
                f"run_id={glue['first']}", "run_id=other-run")
            glue["client"].update_partition(
                DatabaseName="lake_local_curated", TableName="orders", PartitionValueList=[PARTITION.split("=")[1]],
                PartitionInput={k: partition[k] for k in ("Values", "StorageDescriptor", "Parameters")})

    pipeline = make_pipeline(etl=SimulatedJob(duration_s=0.1, writes=publish_meanwhile))
    glue["client"] = pipeline.cloud.client("glue")
    pipeline.put_raw("orders", PARTITION, "a.csv", CSV)
    (first,) = pipeline.drain(timeout=120)
    glue.update(armed=True, first=first.name)
    pipeline.put_raw("orders", PARTITION, "b.csv", CSV)
    (second,) = pipeline.drain(timeout=120)
    assert second.status == "SUCCEEDED", second.failed_states()
    assert "Re-run partition (published meanwhile)" in second.visited and "Switch partition" not in second.visited

    sfn = pipeline.cloud.client("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=pipeline.state_machine_arn)["executions"]
    [rerun_arn] = [e["executionArn"] for e in executions if e["name"] not in (first.name, second.name)]
    rerun = pipeline.wait(rerun_arn, timeout=120)
    assert rerun.status == "SUCCEEDED", rerun.failed_states()
    started_with = json.loads(sfn.describe_execution(executionArn=rerun_arn)["input"])
    assert (started_with["dataset"], started_with["partitions"], started_with["requeued_by"]) == (
        "orders", [PARTITION], second.name)
    assert "Reprocess whole partitions" in rerun.visited and "Switch partition" in rerun.visited
    assert _curated_partition(pipeline)["StorageDescriptor"]["Location"].endswith(f"/run_id={rerun.name}/")
