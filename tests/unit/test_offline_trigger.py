"""The offline trigger: pattern matching, batching window, batch size, and the failure rule's message."""

import json

from lake.local.trigger import (
    LocalTrigger,
    TriggerRoute,
    object_created_event,
    render_input_transformer,
    routes_from_template,
)

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
    ((arn, records),) = started
    assert arn == "arn:sm"
    keys = [json.loads(r["body"])["detail"]["object"]["key"] for r in records]
    assert keys == ["orders/ingest_date=2026-11-24/a.csv", "orders/ingest_date=2026-11-24/b.csv"]
    assert records[0]["eventSourceARN"] == "arn:queue"


def test_flush__full_batch_starts_before_the_window():
    trigger, _, started = _trigger(batch_size=2)
    for name in "abc":
        trigger.publish(object_created_event("raw", f"orders/ingest_date=2026-11-24/{name}.csv", 10))
    assert trigger.flush() == ["exec-1"]
    assert len(started[0][1]) == 2
    assert trigger.flush(force=True) == ["exec-2"]
    assert len(started[1][1]) == 1


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
