"""The trigger path offline: S3 `Object Created` events -> the rule's pattern -> a per-dataset queue ->
the Pipe's batching window -> one execution per batch; and execution status changes -> the failure
rule's input transformer -> SNS.

Event patterns are matched with moto's own EventBridge matcher, made at least as strict as AWS on null values
(lake/local/moto_compat.py, defect 8); the routes (pattern, batch window, batch size, state machine) come from the
synthesized template, so the offline trigger behaves as deployed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lake.local.moto_compat import strict_event_pattern

ACCOUNT = "123456789012"
REGION = "us-east-1"
# "Step Functions state machine (262,144 characters)": the whole batch a Pipe sends to Step Functions.
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html
PIPE_TO_STEP_FUNCTIONS_MAX_CHARS = 262_144
# SQS receipt handles are opaque base64 strings of several hundred characters (the ReceiveMessage examples in
# the SQS API reference are ~380); moto's are 32 characters, which understated every record's size.
RECEIPT_HANDLE_CHARS = 384


def object_created_event(bucket: str, key: str, size: int, when: datetime | None = None) -> dict:
    """An EventBridge event exactly as S3 sends it for a PutObject."""
    when = when or datetime.now(UTC)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:s3:::{bucket}"],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {
                "key": key,
                "size": size,
                "etag": hashlib.md5(key.encode()).hexdigest(),
                "sequencer": "0",
            },
            "request-id": uuid.uuid4().hex[:16].upper(),
            "requester": ACCOUNT,
            "source-ip-address": "127.0.0.1",
            "reason": "PutObject",
        },
    }


def _receipt_handle() -> str:
    raw = b"".join(uuid.uuid4().bytes for _ in range(RECEIPT_HANDLE_CHARS // 16 + 1))
    return "AQEB" + base64.b64encode(raw).decode()[: RECEIPT_HANDLE_CHARS - 4]


def sqs_record(event: dict, queue_arn: str) -> dict:
    """How a Pipe hands one SQS message to its target, at its real size."""
    body = json.dumps(event)
    now = str(int(time.time() * 1000))
    return {
        "messageId": str(uuid.uuid4()),
        "receiptHandle": _receipt_handle(),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now,
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": now,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


_PIPE_PLACEHOLDER = re.compile(r'"<(\$[^>]*)>"|<(\$[^>]*)>')


def render_pipe_template(template: str, record: dict) -> Any:
    """A Pipe target InputTemplate applied to one SQS record, as Pipes do: a JSON body is parsed implicitly
    (`$.body.<field>`); a quoted `"<$.path>"` becomes the value as a JSON string, an unquoted one the JSON value.
    Only the placeholder forms this project uses (whole values) are supported: anything else raises."""
    document = dict(record)
    with contextlib.suppress(TypeError, ValueError):
        document["body"] = json.loads(record["body"])

    def substitute(match: re.Match) -> str:
        quoted, bare = match[1], match[2]
        value = _lookup(document, quoted or bare)
        if quoted is not None:
            return json.dumps("" if value is None else value if isinstance(value, str) else json.dumps(value))
        return json.dumps(value)

    return json.loads(_PIPE_PLACEHOLDER.sub(substitute, template))


def pipe_payload(records: list[dict], template: str | None) -> str:
    """What a Pipe sends to a Step Functions target for one batch: the JSON array of (transformed) records.
    Raises PipePayloadTooLarge beyond the documented 262,144 characters."""
    items = [render_pipe_template(template, r) for r in records] if template else records
    payload = json.dumps(items)
    if len(payload) > PIPE_TO_STEP_FUNCTIONS_MAX_CHARS:
        raise PipePayloadTooLarge(
            f"batch of {len(records)} records is {len(payload)} characters; a Pipe sends at most "
            f"{PIPE_TO_STEP_FUNCTIONS_MAX_CHARS} to Step Functions"
        )
    return payload


class PipePayloadTooLarge(ValueError):
    """The Pipe cannot invoke its target with this batch: it is retried, then dead-lettered."""


def matches_pattern(pattern: dict, event: dict) -> bool:
    """EventBridge pattern matching: moto's matcher, at least as strict as AWS on null values (moto_compat defect 8)."""
    return strict_event_pattern().load(json.dumps(pattern)).matches_event(event)


@dataclass
class TriggerRoute:
    """One dataset's rule + queue + pipe, resolved from the template."""

    name: str
    pattern: dict
    queue_arn: str
    state_machine_arn: str
    batch_window_seconds: float
    batch_size: int
    input_template: str | None = None
    pending: list[dict] = field(default_factory=list)
    first_arrival: float | None = None
    dead_letters: list[tuple[dict, str]] = field(default_factory=list)

    def matches(self, event: dict) -> bool:
        return matches_pattern(self.pattern, event)


def routes_from_template(resources: dict[str, Any]) -> list[TriggerRoute]:
    """Pair each resolved AWS::Pipes::Pipe with the rule that targets its source queue.

    `resources` maps logical ids to resources whose properties have been resolved to local names/ARNs.
    """
    rules = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    routes = []
    for logical_id, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::Pipes::Pipe":
            continue
        pipe = resource["Properties"]
        queue_arn = pipe["Source"]
        rule = next((r for r in rules if any(t["Arn"] == queue_arn for t in r.get("Targets", []))), None)
        if rule is None:
            raise ValueError(f"no EventBridge rule targets the source queue of pipe {logical_id}")
        sqs_parameters = pipe.get("SourceParameters", {}).get("SqsQueueParameters", {})
        routes.append(
            TriggerRoute(
                name=logical_id,
                pattern=rule["EventPattern"],
                queue_arn=queue_arn,
                state_machine_arn=pipe["Target"],
                batch_window_seconds=float(sqs_parameters.get("MaximumBatchingWindowInSeconds", 0)),
                batch_size=int(sqs_parameters.get("BatchSize", 10)),
                input_template=pipe.get("TargetParameters", {}).get("InputTemplate"),
            )
        )
    return routes


class LocalTrigger:
    """Queues matching events per route and starts one execution per batch (window elapsed or batch full).

    `start_execution(state_machine_arn, payload) -> execution_arn`, where `payload` is the JSON text the Pipe
    sends (see `pipe_payload`). A batch the Pipe cannot send (too large) goes to the route's dead letters with
    the reason, as SQS moves it to the DLQ after `maxReceiveCount` failed attempts. Thread-safe; `flush()` is
    called by a background ticker (`lake up`) or directly (tests, `lake demo`).
    """

    def __init__(
        self,
        routes: list[TriggerRoute],
        start_execution: Callable[[str, list[dict]], str],
        clock: Callable[[], float] = time.monotonic,
        window_scale: float = 1.0,
    ) -> None:
        self.routes = routes
        self._start = start_execution
        self._clock = clock
        self._window_scale = window_scale
        self._lock = threading.Lock()
        self.unmatched: list[dict] = []
        self.started: list[str] = []

    def publish(self, event: dict) -> bool:
        """Deliver one event; False when no rule matched (the event is dropped, as EventBridge does)."""
        with self._lock:
            matched = [route for route in self.routes if route.matches(event)]
            for route in matched:
                if not route.pending:
                    route.first_arrival = self._clock()
                route.pending.append(sqs_record(event, route.queue_arn))
            if not matched:
                self.unmatched.append(event)
        return bool(matched)

    def flush(self, force: bool = False) -> list[str]:
        """Start executions for every batch that is due; `force` ignores the batching window."""
        started = []
        with self._lock:
            for route in self.routes:
                while route.pending and (force or self._due(route)):
                    batch, route.pending = (
                        route.pending[: route.batch_size],
                        route.pending[route.batch_size :],
                    )
                    route.first_arrival = self._clock() if route.pending else None
                    try:
                        payload = pipe_payload(batch, route.input_template)
                    except PipePayloadTooLarge as error:
                        route.dead_letters.extend((record, str(error)) for record in batch)
                        continue
                    started.append(self._start(route.state_machine_arn, payload))
        self.started.extend(started)
        return started

    def _due(self, route: TriggerRoute) -> bool:
        if len(route.pending) >= route.batch_size:
            return True
        if route.first_arrival is None:
            return False
        return self._clock() - route.first_arrival >= route.batch_window_seconds * self._window_scale


_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def _lookup(document: Any, path: str) -> Any:
    value = document
    for part in path.removeprefix("$.").split(".") if path != "$" else []:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def render_input_transformer(transformer: dict, event: dict) -> str:
    """Apply an EventBridge InputTransformer (InputPathsMap + InputTemplate) to an event."""
    values = {name: _lookup(event, path) for name, path in transformer.get("InputPathsMap", {}).items()}

    def substitute(match: re.Match) -> str:
        value = values.get(match[1])
        if value is None:
            return ""
        text = value if isinstance(value, str) else json.dumps(value)
        return json.dumps(text)[1:-1]  # placed inside the template's quoted strings

    rendered = _PLACEHOLDER.sub(substitute, transformer["InputTemplate"])
    lines = [json.loads(line) if line.startswith('"') else line for line in rendered.splitlines()]
    return "\n".join(lines)


def execution_status_event(execution: dict, state_machine_arn: str) -> dict:
    """The `Step Functions Execution Status Change` event for a finished execution (describe_execution)."""

    def iso(value: Any) -> Any:
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Step Functions Execution Status Change",
        "source": "aws.states",
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [execution["executionArn"]],
        "detail": {
            "executionArn": execution["executionArn"],
            "stateMachineArn": state_machine_arn,
            "name": execution["name"],
            "status": execution["status"],
            "startDate": iso(execution.get("startDate")),
            "stopDate": iso(execution.get("stopDate")),
            "input": execution.get("input"),
            "output": execution.get("output"),
            "error": execution.get("error"),
            "cause": execution.get("cause"),
        },
    }
