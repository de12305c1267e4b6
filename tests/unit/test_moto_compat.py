"""Each moto 5.2.5 defect patched by lake.local.moto_compat, reproduced with a tiny ASL definition.

Without the shim every `test_*__patched` case fails (see the comment on the patch it exercises).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from lake.executions import run_definition
from lake.local import moto_compat
from lake.local.emulator import ACCOUNT_ID, REGION, Emulator


@pytest.fixture(scope="module")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def sfn(emu):
    return emu.client("stepfunctions")


def _task(resource: str, parameters: dict, **extra) -> dict:
    return {
        "StartAt": "T",
        "States": {"T": {"Type": "Task", "Resource": resource, "Parameters": parameters, **extra}},
    }


def test_apply__is_idempotent():
    moto_compat.apply()
    moto_compat.apply()
    assert moto_compat.is_applied()


def test_check__detects_changed_signature():
    changed = (
        ("moto.stepfunctions.responses", "StepFunctionResponse.describe_execution", ("self", "extra")),
    )
    with pytest.raises(moto_compat.MotoCompatError, match="changed signature"):
        moto_compat.check(changed)


def test_check__detects_missing_symbol():
    missing = (("moto.stepfunctions.responses", "StepFunctionResponse.gone_method", ("self",)),)
    with pytest.raises(moto_compat.MotoCompatError, match="no longer exists"):
        moto_compat.check(missing)


def test_check__detects_other_moto_version(monkeypatch):
    import moto

    monkeypatch.setattr(moto, "__version__", "5.3.0")
    with pytest.raises(moto_compat.MotoCompatError, match="5.3.0"):
        moto_compat.check()


def test_glue_start_job_run_sync__succeeds_and_describe_handles_datetimes(emu, sfn):
    # Defect 1 (NoneType.interrupt_all) and defect 2 (datetime in DescribeExecution output).
    emu.client("glue").create_job(
        Name="ok-job", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"}
    )
    definition = _task("arn:aws:states:::glue:startJobRun.sync", {"JobName": "ok-job"}, End=True)
    result = run_definition(sfn, definition, timeout=30)
    assert result.status == "SUCCEEDED", result
    assert result.output["JobRunState"] == "SUCCEEDED"
    assert result.output["JobName"] == "ok-job"
    assert isinstance(result.output["StartedOn"], str)


@pytest.mark.parametrize("final_state", ["FAILED", "STOPPED"])
def test_glue_start_job_run_sync__not_succeeded_fails_task(emu, sfn, final_state):
    from moto.glue.models import glue_backends
    from moto.moto_api import state_manager

    job = f"bad-job-{final_state.lower()}"
    emu.client("glue").create_job(
        Name=job, Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"}
    )
    definition = {
        "StartAt": "T",
        "States": {
            "T": {
                "Type": "Task",
                "Resource": "arn:aws:states:::glue:startJobRun.sync",
                "Parameters": {"JobName": job},
                "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 10**6})
    try:
        arn = sfn.create_state_machine(
            name=job, definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/r"
        )
        execution = sfn.start_execution(stateMachineArn=arn["stateMachineArn"], input="{}")
        runs = glue_backends[ACCOUNT_ID][REGION].jobs[job].job_runs
        assert moto_compat.wait_until(lambda: runs, timeout=10)
        runs[0].status = final_state
        from lake.executions import wait_for_execution

        result = wait_for_execution(sfn, execution["executionArn"], timeout=30)
    finally:
        state_manager.unset_transition("glue::job_run")
    assert result.status == "SUCCEEDED"
    assert result.visited == ["T", "Caught"]
    assert result.output["error"]["Error"] == "States.TaskFailed"
    assert json.loads(result.output["error"]["Cause"])["JobRunState"] == final_state


def test_aws_sdk_glue_start_crawler__error_named_like_aws(sfn):
    # Defect 3: moto names it `glue.EntityNotFoundException`; AWS `Glue.EntityNotFoundException`.
    definition = _task(
        "arn:aws:states:::aws-sdk:glue:startCrawler",
        {"Name": "missing-crawler"},
        Catch=[{"ErrorEquals": ["Glue.EntityNotFoundException"], "Next": "Caught"}],
        End=True,
    )
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    result = run_definition(sfn, definition, timeout=30)
    assert result.status == "SUCCEEDED", result
    assert result.visited == ["T", "Caught"]
    assert result.states[0].error == "Glue.EntityNotFoundException"


def test_aws_sdk_glue_start_crawler__running_crawler_caught(emu, sfn):
    glue = emu.client("glue")
    glue.create_database(DatabaseInput={"Name": "db"})
    glue.create_crawler(
        Name="busy", Role="r", DatabaseName="db", Targets={"S3Targets": [{"Path": "s3://x/"}]}
    )
    glue.start_crawler(Name="busy")
    definition = _task(
        "arn:aws:states:::aws-sdk:glue:startCrawler",
        {"Name": "busy"},
        Catch=[{"ErrorEquals": ["Glue.CrawlerRunningException"], "Next": "Caught"}],
        End=True,
    )
    definition["States"]["Caught"] = {"Type": "Pass", "End": True}
    from moto.moto_api import state_manager

    state_manager.set_transition("glue::crawl", {"progression": "manual", "times": 10**6})
    try:
        result = run_definition(sfn, definition, timeout=30)
    finally:
        state_manager.unset_transition("glue::crawl")
    assert result.visited == ["T", "Caught"], result


def test_aws_sdk_s3_get_object__body_is_string(emu, sfn):
    # Defect 5 (new): the boto3 StreamingBody reached the JSON layer ("no attribute 'strip'").
    s3 = emu.client("s3")
    s3.create_bucket(Bucket="compat-bucket")
    s3.put_object(Bucket="compat-bucket", Key="runs/r1/dq.json", Body=b'{"passed": false, "failed": 2}')
    definition = _task(
        "arn:aws:states:::aws-sdk:s3:getObject",
        {"Bucket": "compat-bucket", "Key": "runs/r1/dq.json"},
        ResultSelector={"doc.$": "States.StringToJson($.Body)"},
        End=True,
    )
    result = run_definition(sfn, definition, timeout=30)
    assert result.status == "SUCCEEDED", result
    assert result.output == {"doc": {"passed": False, "failed": 2}}


def test_states_start_execution__starts_a_child_and_answers_like_aws(sfn):
    # Defect 6 (new): the ASL names (StateMachineArn, Input) reached boto3 ("'StateMachineArn'").
    definition = {
        "StartAt": "Child?",
        "States": {
            "Child?": {"Type": "Choice", "Choices": [{"Variable": "$.child", "IsPresent": True, "Next": "Done"}],
                       "Default": "Start child"},
            "Start child": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution",
                            "Parameters": {"StateMachineArn.$": "$$.StateMachine.Id",
                                           "Input": {"child": True, "parent.$": "$$.Execution.Name"}},
                            "ResultSelector": {"arn.$": "$.ExecutionArn", "at.$": "$.StartDate"}, "End": True},
            "Done": {"Type": "Succeed"},
        },
    }  # fmt: skip
    parent = run_definition(sfn, definition, timeout=30)
    assert parent.status == "SUCCEEDED", parent
    child = sfn.describe_execution(executionArn=parent.output["arn"])
    assert json.loads(child["input"]) == {"child": True, "parent": parent.name}
    assert parent.output["at"][:4].isdigit()


def test_aws_sdk_s3_get_object__missing_key_named_like_aws(emu, sfn):
    emu.client("s3").create_bucket(Bucket="compat-empty")
    definition = _task(
        "arn:aws:states:::aws-sdk:s3:getObject", {"Bucket": "compat-empty", "Key": "nope"}, End=True
    )
    result = run_definition(sfn, definition, timeout=30)
    assert result.status == "FAILED"
    assert result.error == "S3.NoSuchKeyException"


def test_sns_publish__works_unpatched(emu, sfn):
    topic = emu.client("sns").create_topic(Name="compat-topic")["TopicArn"]
    definition = _task(
        "arn:aws:states:::sns:publish", {"TopicArn": topic, "Subject": "s", "Message.$": "$"}, End=True
    )
    result = run_definition(sfn, definition, {"x": 1}, timeout=30)
    assert result.status == "SUCCEEDED", result
    assert "MessageId" in result.output


def test_pass_parameters__intrinsics_and_filters_work_unpatched(sfn):
    definition = {
        "StartAt": "P",
        "States": {
            "P": {
                "Type": "Pass",
                "Parameters": {
                    "split.$": "States.StringSplit($.s, ',')",
                    "item.$": "States.ArrayGetItem(States.StringSplit($.s, ','), 1)",
                    "uniq.$": "States.ArrayUnique($.arr)",
                    "json.$": "States.StringToJson($.j)",
                    "fmt.$": "States.Format('run-{}-{}', $.n, $.s)",
                    "kept.$": "$.items[?(@.keep == true)].value",
                },
                "End": True,
            }
        },
    }
    execution_input = {
        "s": "a,b,c",
        "arr": [1, 1, 2],
        "j": '{"k": [1]}',
        "n": 3,
        "items": [{"keep": True, "value": "v1"}, {"keep": False, "value": "v2"}],
    }
    result = run_definition(sfn, definition, execution_input, timeout=30)
    assert result.output == {
        "split": ["a", "b", "c"],
        "item": "b",
        "uniq": [1, 2],
        "json": {"k": [1]},
        "fmt": "run-3-a,b,c",
        "kept": ["v1"],
    }


def test_wait_until__times_out_quickly():
    started = time.monotonic()
    assert not moto_compat.wait_until(lambda: False, timeout=0.1, interval=0.02)
    assert time.monotonic() - started < 1


def test_start_execution__unnamed_executions_get_unique_names(sfn):
    # Defect 6 (new): both executions were named "None"; the second raised ExecutionAlreadyExists.
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
    arn = sfn.create_state_machine(
        name="unnamed", definition=json.dumps(definition), roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/r"
    )["stateMachineArn"]
    first = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    second = sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    assert first != second
    assert not first.endswith(":None")


def test_context_start_time__formats_as_iso_string(sfn):
    # Defect 7 (new): $$.Execution.StartTime was a datetime; States.Format failed with States.Runtime.
    definition = {
        "StartAt": "P",
        "States": {"P": {"Type": "Pass", "Parameters": {"s.$": "States.Format('{}', $$.Execution.StartTime)"},
                         "End": True}},
    }  # fmt: skip
    result = run_definition(sfn, definition, {}, timeout=30)
    assert result.status == "SUCCEEDED", result
    assert re.fullmatch(r"20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", result.output["s"]), result.output  # as AWS


def test_jsonata_state__evaluates(sfn):
    # Defect 9 (new): moto's JSONata evaluator was a stub; every JSONata expression failed the execution.
    definition = {"StartAt": "P", "States": {"P": {
        "Type": "Pass", "QueryLanguage": "JSONata", "End": True,
        "Output": "{% {'parts': [$map($states.input, function($k) { $split($k, '/')[1] })], "
                  "'n': $count($states.input)} %}",
    }}}  # fmt: skip
    result = run_definition(sfn, definition, ["orders/d=1/a.csv", "orders/d=2/b.csv"], timeout=30)
    assert result.status == "SUCCEEDED", result
    assert result.output == {"parts": ["d=1", "d=2"], "n": 2}


def test_definitions_parsed_at_once__each_keeps_its_own_query_language():
    # Defect 10 (new): the ASL preprocessor's stack of query-language scopes was one list shared by every parse, so
    # definitions parsed in concurrent executions' threads failed with "Unsupported declaration in QueryLanguage=..."
    import threading

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    moto_compat.apply()
    first, second = Preprocessor(), Preprocessor()
    first._query_language_per_scope.append("JSONata")
    assert second._query_language_per_scope == []

    def chain(query_language: str | None, **fields) -> str:
        states = {f"P{i}": {"Type": "Pass", **fields, **({"Next": f"P{i + 1}"} if i < 9 else {"End": True})}
                  for i in range(10)}  # fmt: skip
        language = {"QueryLanguage": query_language} if query_language else {}
        return json.dumps({**language, "StartAt": "P0", "States": states})

    definitions = [chain("JSONata", Output="{% $states.input %}"), chain(None, ResultPath="$.x")] * 2
    errors: list[str] = []

    def parse(definition: str) -> None:
        for _ in range(30):
            try:
                AmazonStateLanguageParser.parse(definition)
            except ValueError as error:
                errors.append(str(error))

    threads = [threading.Thread(target=parse, args=(d,)) for d in definitions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
