"""The offline trigger: pattern matching, batching window, batch size, and the failure rule's message."""

import json

import pytest

from lake.local.trigger import (
    PIPE_TO_STEP_FUNCTIONS_MAX_CHARS,
    LocalTrigger,
    PipePayloadTooLarge,
    TriggerRoute,
    execution_status_event,
    matches_pattern,
    object_created_event,
    pipe_payload,
    render_input_transformer,
    render_pipe_template,
    routes_from_template,
    sqs_record,
)
from workflows.config import StageConfig
from workflows.trigger import PIPE_INPUT_TEMPLATE

MAX_KEY = "orders/ingest_date=2026-11-24/" + "k" * (1024 - len("orders/ingest_date=2026-11-24/"))

PATTERN = {
    "source": ["aws.s3"],
    "detail-type": ["Object Created"],
    "detail": {
        "bucket": {"name": ["raw"]},
        "object": {"key": [{"prefix": "orders/"}], "size": [{"numeric": [">", 0]}]},
    },
}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _trigger(batch_size=10, window=60):
    clock = FakeClock()
    started = []

    def start(arn, records):
        started.append((arn, records))
        return f"exec-{len(started)}"

    route = TriggerRoute("Pipe", PATTERN, "arn:queue", "arn:sm", window, batch_size)
    return LocalTrigger([route], start, clock=clock), clock, started


def test_publish__other_prefix_and_empty_objects_do_not_match():
    trigger, _, _ = _trigger()
    assert trigger.publish(object_created_event("raw", "orders/ingest_date=2026-11-24/a.csv", 10))
    assert not trigger.publish(object_created_event("raw", "customers/a.csv", 10))
    assert not trigger.publish(object_created_event("raw", "orders/ingest_date=2026-11-24/", 0))
    assert not trigger.publish(object_created_event("other-bucket", "orders/a.csv", 10))
    assert len(trigger.unmatched) == 3


def test_flush__waits_for_the_batching_window():
    trigger, clock, started = _trigger(window=60)
    trigger.publish(object_created_event("raw", "orders/ingest_date=2026-11-24/a.csv", 10))
    clock.now = 59
    assert trigger.flush() == []
    trigger.publish(object_created_event("raw", "orders/ingest_date=2026-11-24/b.csv", 10))
    clock.now = 60
    assert trigger.flush() == ["exec-1"]
    ((arn, payload),) = started
    assert arn == "arn:sm"
    records = json.loads(payload)
    keys = [json.loads(r["body"])["detail"]["object"]["key"] for r in records]
    assert keys == ["orders/ingest_date=2026-11-24/a.csv", "orders/ingest_date=2026-11-24/b.csv"]
    assert records[0]["eventSourceARN"] == "arn:queue"


def test_flush__full_batch_starts_before_the_window():
    trigger, _, started = _trigger(batch_size=2)
    for name in "abc":
        trigger.publish(object_created_event("raw", f"orders/ingest_date=2026-11-24/{name}.csv", 10))
    assert trigger.flush() == ["exec-1"]
    assert len(json.loads(started[0][1])) == 2
    assert trigger.flush(force=True) == ["exec-2"]
    assert len(json.loads(started[1][1])) == 1


def test_routes_from_template__pairs_pipe_with_rule_of_its_queue():
    resources = {
        "Rule": {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": PATTERN, "Targets": [{"Arn": "arn:q"}]}},
        "Other": {"Type": "AWS::Events::Rule", "Properties": {"EventPattern": {"source": ["x"]}, "Targets": []}},
        "Pipe": {
            "Type": "AWS::Pipes::Pipe",
            "Properties": {
                "Source": "arn:q",
                "Target": "arn:sm",
                "SourceParameters": {"SqsQueueParameters": {"BatchSize": 500, "MaximumBatchingWindowInSeconds": 30}},
            },
        },
    }
    (route,) = routes_from_template(resources)
    assert (route.pattern, route.state_machine_arn, route.batch_size, route.batch_window_seconds) == (
        PATTERN,
        "arn:sm",
        500,
        30.0,
    )


def test_render_input_transformer__multiline_text():
    transformer = {
        "InputPathsMap": {"detail-name": "$.detail.name", "detail-status": "$.detail.status"},
        "InputTemplate": '"Execution <detail-name> ended <detail-status>."\n"Look: lake show <detail-name>"',
    }
    event = {"detail": {"name": "run-1", "status": "FAILED"}}
    assert render_input_transformer(transformer, event) == "Execution run-1 ended FAILED.\nLook: lake show run-1"


def test_sqs_record__has_the_size_of_a_real_pipe_record():
    """Real receipt handles are hundreds of characters; moto's 32-character ones understated each record
    (~1.1 KB instead of ~1.6 KB), which hid that 200 raw records exceed the Pipe's 262,144 characters."""
    record = sqs_record(object_created_event("raw", "orders/ingest_date=2026-11-24/a.csv", 10), "arn:q")
    assert len(record["receiptHandle"]) >= 300
    assert len(json.dumps(record)) > 1400


def test_pipe_payload__without_the_input_template_a_full_batch_is_refused():
    """Regression for the defect: the whole SQS records were sent and a full batch was over the limit, so the
    Pipe failed, retried the batch 5 times and dead-lettered it."""
    records = [sqs_record(object_created_event("raw", f"orders/ingest_date=2026-11-24/{i:04}.csv", 10), "arn:q")
               for i in range(StageConfig.batch_size)]  # fmt: skip
    with pytest.raises(PipePayloadTooLarge, match="at most 262144"):
        pipe_payload(records, None)


def test_pipe_payload__template_keeps_a_full_batch_of_longest_keys_under_both_limits():
    """Pipes → Step Functions carries at most 262,144 characters and StartExecution 256 KiB of UTF-8:
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html,
    https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html. S3 keys are at most 1,024 bytes,
    bucket names 63 characters."""
    bucket = "b" * 63
    records = [sqs_record(object_created_event(bucket, MAX_KEY[:-4] + f"{i:04}", 10**12), "arn:q")
               for i in range(StageConfig.batch_size)]  # fmt: skip
    payload = pipe_payload(records, PIPE_INPUT_TEMPLATE)
    assert len(payload) <= PIPE_TO_STEP_FUNCTIONS_MAX_CHARS
    assert len(payload.encode("utf-8")) <= 256 * 1024
    items = json.loads(payload)
    assert len(items) == StageConfig.batch_size
    assert set(items[0]) == {"bucket", "key", "size", "time"}


def test_render_pipe_template__takes_fields_from_the_parsed_body_and_escapes_strings():
    key = 'orders/ingest_date=2026-11-24/we"ird \\ näme.csv'
    record = sqs_record(object_created_event("raw", key, 42), "arn:q")
    item = render_pipe_template(PIPE_INPUT_TEMPLATE, record)
    assert item == {"bucket": "raw", "key": key, "size": 42, "time": json.loads(record["body"])["time"]}


def test_flush__a_batch_too_large_for_the_pipe_is_dead_lettered_not_started():
    trigger, _, started = _trigger(batch_size=300)
    trigger.routes[0].input_template = None  # the raw records, as before the input template
    for i in range(300):
        trigger.publish(object_created_event("raw", f"orders/ingest_date=2026-11-24/{i}.csv", 10))
    assert trigger.flush(force=True) == []
    assert started == []
    assert len(trigger.routes[0].dead_letters) == 300
    assert "at most 262144" in trigger.routes[0].dead_letters[0][1]


def _status_event(status: str, error: str | None = None) -> dict:
    execution = {"executionArn": "arn:aws:states:us-east-1:123456789012:execution:sm:run", "name": "run",
                 "status": status, **({"error": error, "cause": "why"} if error else {})}  # fmt: skip
    return execution_status_event(execution, "arn:aws:states:us-east-1:123456789012:stateMachine:sm")


@pytest.mark.parametrize("status", ["TIMED_OUT", "ABORTED"])
@pytest.mark.parametrize(
    "error_filter",
    [{"anything-but": ["DataQualityFailed"]}, {"anything-but": "DataQualityFailed"}, {"anything-but": {"prefix": "X"}},
     {"exists": False}, {"exists": True}, {"prefix": ""}, ""],
)  # fmt: skip
def test_matches_pattern__a_null_error_is_matched_by_null_only(status, error_filter):
    """A timed-out or aborted execution's event carries `"error": null`
    (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html). EventBridge matches a null with `[null]`
    and documents no other operator that does (eb-create-pattern-operators.html, eb-event-patterns-null-values.html);
    the local matcher takes the stricter reading, so a rule relying on an `error` filter fails here as it may on AWS."""
    event = _status_event(status)
    assert event["detail"]["error"] is None
    assert not matches_pattern({"detail": {"status": [status], "error": [error_filter]}}, event)
    assert matches_pattern({"detail": {"status": [status], "error": [None]}}, event)
    assert matches_pattern({"detail": {"status": [status]}}, event)


def test_matches_pattern__anything_but_and_exists_on_present_and_absent_values():
    failed = _status_event("FAILED", "States.TaskFailed")
    assert matches_pattern({"detail": {"error": [{"anything-but": ["DataQualityFailed"]}]}}, failed)
    assert not matches_pattern({"detail": {"error": [{"anything-but": ["States.TaskFailed"]}]}}, failed)
    assert matches_pattern({"detail": {"error": [{"anything-but": {"prefix": "Data"}}]}}, failed)
    assert matches_pattern({"detail": {"error": [{"exists": True}]}}, failed)
    assert matches_pattern({"detail": {"missing": [{"exists": False}]}}, failed)
    assert not matches_pattern({"detail": {"missing": [{"anything-but": ["x"]}]}}, failed)
    typed = {"detail": {"flag": True, "count": 5, "code": "5"}}
    assert not matches_pattern({"detail": {"flag": [{"anything-but": ["x"]}]}}, typed)  # booleans: stricter
    assert not matches_pattern({"detail": {"flag": [{"numeric": [">", 0]}]}}, typed)
    assert matches_pattern({"detail": {"count": [{"anything-but": [4]}]}}, typed)
    assert not matches_pattern({"detail": {"count": [{"anything-but": ["4"]}]}}, typed)  # other type: stricter
    assert matches_pattern({"detail": {"code": [{"anything-but": ["4"]}]}}, typed)
