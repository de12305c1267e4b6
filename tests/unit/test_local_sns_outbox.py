"""lake.local.sns_outbox: every SNS publish also lands in <root>/_outbox/sns.jsonl."""

from __future__ import annotations

import pytest

from lake.executions import run_definition
from lake.local import sns_outbox
from lake.local.emulator import Emulator


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


def test_publish__api_and_state_machine_append_to_outbox(emu, tmp_path):
    sns_outbox.install(tmp_path)
    try:
        sns = emu.client("sns")
        topic = sns.create_topic(Name="alerts")["TopicArn"]
        sns.publish(TopicArn=topic, Subject="hello", Message="first")
        definition = {
            "StartAt": "P",
            "States": {
                "P": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::sns:publish",
                    "Parameters": {"TopicArn": topic, "Subject": "from sfn", "Message.$": "$.text"},
                    "End": True,
                }
            },
        }
        assert (
            run_definition(emu.client("stepfunctions"), definition, {"text": "second"}).status == "SUCCEEDED"
        )
    finally:
        sns_outbox.uninstall(tmp_path)
    messages = sns_outbox.read_outbox(tmp_path)
    assert [(m["topic_arn"], m["subject"], m["message"]) for m in messages] == [
        (topic, "hello", "first"),
        (topic, "from sfn", "second"),
    ]
    assert all(m["timestamp"] for m in messages)


def test_read_outbox__empty_when_nothing_published(tmp_path):
    assert sns_outbox.read_outbox(tmp_path) == []
