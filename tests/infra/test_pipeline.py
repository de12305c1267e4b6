"""The state machine, trigger and failure reporting as synthesized."""

import json

from aws_cdk.assertions import Match


def _definition(template_json) -> dict:
    (machine,) = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))


def test_state_machine__logging_all_tracing_and_timeout(template):
    template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL", "IncludeExecutionData": True}),
        },
    )
    template.has_resource_properties("AWS::Logs::LogGroup", {"RetentionInDays": 90, "KmsKeyId": Match.any_value()})


def test_definition__has_an_execution_timeout_and_no_parallel_wrapper(template_json):
    definition = _definition(template_json)
    assert definition["TimeoutSeconds"] == 180 * 60
    assert not [name for name, state in definition["States"].items() if state["Type"] == "Parallel"]


def test_definition__crawler_running_is_waited_for_never_success(template_json):
    states = _definition(template_json)["States"]
    (catch,) = states["Start crawler"]["Catch"]
    assert catch["ErrorEquals"] == ["Glue.CrawlerRunningException"]
    assert catch["Next"] == "Crawl already running"
    assert states["Crawl already running"]["Next"] == "Wait for crawl"
    assert states["Crawl already running"]["Parameters"]["restart"] is True


def test_definition__poll_loop_is_bounded(template_json):
    states = _definition(template_json)["States"]
    assert states["Wait for crawl"]["Seconds"] == 30
    bound = [c for c in states["Crawler READY?"]["Choices"] if "NumericGreaterThanEquals" in c]
    assert bound == [
        {"Variable": "$.polls.count", "NumericGreaterThanEquals": 60, "Next": "Notify: Crawler poll bound reached"}
    ]


def test_definition__glue_jobs_sync_with_jittered_retries(template_json):
    states = _definition(template_json)["States"]
    for name in ("Run ETL job", "Run data quality job"):
        state = states[name]
        assert state["Resource"].endswith(":states:::glue:startJobRun.sync")
        assert (
            state["Arguments"]
            if "Arguments" in state
            else state["Parameters"]["Arguments"]
            == {
                "--dataset.$": "$.dataset",
                "--partitions.$": "States.JsonToString($.partitions)",
                "--run_id.$": "$$.Execution.Name",
            }
        )
        (retry,) = state["Retry"]
        assert retry["ErrorEquals"] == [
            "Glue.ConcurrentRunsExceededException",
            "Glue.ThrottlingException",
            "Glue.InternalServiceException",
        ]
        assert (retry["JitterStrategy"], retry["BackoffRate"], retry["MaxAttempts"]) == ("FULL", 2, 5)
        assert "Catch" not in state  # fails at this state, so it can be redriven from here


def test_trigger__rule_to_queue_to_pipe(template):
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [Match.any_value()]},
                    "object": {"key": [{"prefix": "orders/"}], "size": [{"numeric": [">", 0]}]},
                },
            },
            "Targets": [Match.object_like({"DeadLetterConfig": Match.any_value(), "RetryPolicy": Match.any_value()})],
        },
    )
    template.has_resource_properties(
        "AWS::SQS::Queue",
        {"KmsMasterKeyId": Match.any_value(), "RedrivePolicy": Match.object_like({"maxReceiveCount": 5})},
    )
    template.has_resource_properties(
        "AWS::Pipes::Pipe",
        {
            "SourceParameters": {"SqsQueueParameters": {"BatchSize": 200, "MaximumBatchingWindowInSeconds": 60}},
            "TargetParameters": {"StepFunctionStateMachineParameters": {"InvocationType": "FIRE_AND_FORGET"}},
        },
    )


def test_failure_rule__reports_failed_timed_out_aborted_executions(template):
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": Match.object_like(
                {
                    "source": ["aws.states"],
                    "detail": Match.object_like(
                        {
                            "status": ["FAILED", "TIMED_OUT", "ABORTED"],
                            "error": [{"exists": False},
                                      {"anything-but": ["DataQualityFailed", "CrawlFailed", "CrawlerPollTimeout"]}],
                        }
                    ),
                }
            ),
            "Targets": [Match.object_like({"InputTransformer": Match.any_value()})],
        },
    )
