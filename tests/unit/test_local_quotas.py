"""The offline Step Functions fails where AWS fails: payload quotas, uncatchable terminal errors, history limit.

Each case passes on plain moto 5.2.5 (which accepts the call, catches the error or keeps running) and
fails the way AWS documents it here; the pages are cited in lake/local/quotas.py.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from lake.executions import run_definition
from lake.local import quotas
from lake.local.emulator import Emulator


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def sfn(emu):
    return emu.client("stepfunctions")


@pytest.fixture(scope="module")
def pass_machine(sfn):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    return sfn.create_state_machine(
        name="quota-pass", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/r"
    )["stateMachineArn"]


def _input_of(size_bytes: int) -> str:
    """A JSON document of exactly `size_bytes` UTF-8 bytes, padded with a two-byte character."""
    skeleton = json.dumps({"pad": ""})
    room = size_bytes - len(skeleton.encode())
    text = json.dumps({"pad": "é" * (room // 2) + "x" * (room % 2)}, ensure_ascii=False)
    assert len(text.encode()) == size_bytes
    return text


def test_start_execution__input_of_256_kib_is_accepted(sfn, pass_machine):
    started = sfn.start_execution(stateMachineArn=pass_machine, input=_input_of(quotas.MAX_PAYLOAD_BYTES))
    assert started["executionArn"]


def test_start_execution__input_over_256_kib_of_utf8_is_rejected_before_an_execution_exists(sfn, pass_machine):
    """262,144 bytes is the limit whatever the character count: 131,100 two-byte characters are over it."""
    before = len(sfn.list_executions(stateMachineArn=pass_machine)["executions"])
    with pytest.raises(ClientError) as raised:
        sfn.start_execution(stateMachineArn=pass_machine, input=_input_of(quotas.MAX_PAYLOAD_BYTES + 1))
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Member must have length less than or equal to 262144" in raised.value.response["Error"]["Message"]
    assert len(sfn.list_executions(stateMachineArn=pass_machine)["executions"]) == before


def _read_object_task(bucket: str, key: str, **handling) -> dict:
    return {
        "StartAt": "Read",
        "States": {
            "Read": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
                "Parameters": {"Bucket": bucket, "Key": key},
                "End": True,
                **handling,
            },
            "Handled": {"Type": "Succeed"},
        },
    }


@pytest.fixture(scope="module")
def big_object(emu):
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="quota-bucket")
    s3.put_object(Bucket="quota-bucket", Key="big.json", Body=b"x" * (quotas.MAX_PAYLOAD_BYTES + 10))
    return "quota-bucket", "big.json"


@pytest.mark.parametrize(
    "handling",
    [
        {"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}]},
        {"Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2, "IntervalSeconds": 1}]},
    ],
    ids=["catch", "retry"],
)
def test_task_result_over_256_kib__fails_the_execution_even_under_states_all(sfn, big_object, handling):
    result = run_definition(sfn, _read_object_task(*big_object, **handling), timeout=60)
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert [e["type"] for e in _history(sfn, result.arn)].count("TaskScheduled") == 1  # not retried
    assert [s.name for s in result.states] == ["Read"]  # not caught


def test_data_limit_exceeded__named_explicitly_is_still_caught(sfn, big_object):
    handling = {"Catch": [{"ErrorEquals": ["States.DataLimitExceeded"], "Next": "Handled"}]}
    result = run_definition(sfn, _read_object_task(*big_object, **handling), timeout=60)
    assert result.status == "SUCCEEDED"


def test_states_all__still_catches_ordinary_errors(sfn):
    handling = {"Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}]}
    result = run_definition(sfn, _read_object_task("no-such-bucket", "k", **handling), timeout=60)
    assert result.status == "SUCCEEDED"


def _counting_loop(iterations: int) -> dict:
    """1 ExecutionStarted + Init (2) + Pad (2) + 4 per iteration + Done (2) + the execution's end event."""
    return {
        "StartAt": "Init",
        "States": {
            "Init": {"Type": "Pass", "Result": {"i": 0}, "Next": "Pad"},
            "Pad": {"Type": "Pass", "Next": "Inc"},
            "Inc": {"Type": "Pass", "Parameters": {"i.$": "States.MathAdd($.i, 1)"}, "Next": "More?"},
            "More?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.i", "NumericLessThan": iterations, "Next": "Inc"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
        },
    }


def _history(sfn, arn: str) -> list[dict]:
    events, kwargs = [], {}
    while True:
        page = sfn.get_execution_history(executionArn=arn, maxResults=1000, **kwargs)
        events += page["events"]
        if "nextToken" not in page:
            return events
        kwargs = {"nextToken": page["nextToken"]}


def test_history_limit__is_the_documented_25000_events():
    assert quotas.MAX_HISTORY_EVENTS == 25_000


@pytest.fixture
def small_history_limit(monkeypatch):
    """The rule is the same at any limit; 1,000 events keep the test fast (25,000 take ~30 s here)."""
    monkeypatch.setattr(quotas, "MAX_HISTORY_EVENTS", 1_000)
    return 1_000


def test_history_limit__an_execution_whose_last_event_is_the_limit_succeeds(sfn, small_history_limit):
    iterations = (small_history_limit - 8) // 4
    result = run_definition(sfn, _counting_loop(iterations), timeout=120)
    assert result.status == "SUCCEEDED"
    events = _history(sfn, result.arn)
    assert (len(events), events[-1]["type"]) == (small_history_limit, "ExecutionSucceeded")


def test_history_limit__one_more_event_fails_the_execution_with_the_aws_cause(sfn, small_history_limit):
    iterations = (small_history_limit - 8) // 4 + 1
    result = run_definition(sfn, _counting_loop(iterations), timeout=120)
    assert (result.status, result.error) == ("FAILED", "States.Runtime")
    assert result.cause == "The execution reached the maximum number of history events (25000)."
    events = _history(sfn, result.arn)
    assert (len(events), events[-1]["type"]) == (small_history_limit, "ExecutionFailed")


def test_task_parameters_over_256_kib__fail_the_task_before_the_call(sfn, emu, big_object):
    """The input (150 KiB) is within the quota; the Parameters built from it twice are not."""
    bucket, _ = big_object
    body = "States.Format('{}{}', $.big, $.big)"
    put = {"Bucket": bucket, "Key": "twice.txt", "Body.$": body}
    definition = {
        "StartAt": "Put",
        "States": {"Put": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:putObject", "Parameters": put,
                           "End": True}},
    }  # fmt: skip
    result = run_definition(sfn, definition, {"big": "x" * (150 * 1024)}, timeout=60)
    assert (result.status, result.error) == ("FAILED", "States.DataLimitExceeded")
    assert "Contents" not in emu.client("s3").list_objects_v2(Bucket=bucket, Prefix="twice.txt")
