"""The state machine, trigger and failure reporting as synthesized."""

import json
import re

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


def test_definition__has_an_execution_timeout_and_no_parallel_wrapper(template_json, synthesized):
    definition = _definition(template_json)
    config = synthesized[2]
    assert definition["TimeoutSeconds"] == config.execution_timeout_minutes * 60
    assert definition["TimeoutSeconds"] >= config.worst_case_execution_minutes * 60
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
    common = {"--dataset.$": "$.dataset", "--partitions.$": "States.JsonToString($.partitions)",
              "--run_id.$": "$$.Execution.Name"}  # fmt: skip
    expected = {"Run ETL job": {**common, "--manifest_uri.$": "$.manifest.uri"}, "Run data quality job": common}
    for name, arguments in expected.items():
        state = states[name]
        assert state["Resource"].endswith(":states:::glue:startJobRun.sync")
        assert state["Parameters"]["Arguments"] == arguments
        (retry,) = state["Retry"]
        assert retry["ErrorEquals"] == [
            "Glue.ConcurrentRunsExceededException",
            "Glue.ThrottlingException",
            "Glue.InternalServiceException",
            "Glue.AWSGlueException",
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


def _rules(template_json, source):
    rules = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    return [r for r in rules if r["EventPattern"].get("source") == [source]]


def test_failure_rules__failed_filtered_by_error_timed_out_and_aborted_without_error_filter(template_json):
    """Timed-out and aborted executions carry `"error": null` in their status-change event
    (https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html), and the pattern operators
    `exists: false` and `anything-but` are not documented to match a null value
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html), so those two
    statuses need a rule that does not filter on `error`; a FAILED execution always has an error name."""
    rules = _rules(template_json, "aws.states")
    by_status = {tuple(r["EventPattern"]["detail"]["status"]): r["EventPattern"]["detail"] for r in rules}
    assert set(by_status) == {("FAILED",), ("TIMED_OUT", "ABORTED")}
    assert by_status[("FAILED",)]["error"] == [{"anything-but": ["DataQualityFailed", "CrawlerPollTimeout"]}]
    assert "error" not in by_status[("TIMED_OUT", "ABORTED")]
    for rule in rules:
        (target,) = rule["Targets"]
        assert "InputTransformer" in target


def _all_states(states: dict) -> dict:
    found = {}
    for name, state in states.items():
        found[name] = state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                found.update(_all_states(state[key]["States"]))
    return found


# The names Step Functions gives a throttled or 5xx call, per integration. aws-sdk tasks report
# `<Service>.<Exception>` of the Java SDK v2 class the error unmarshals into; codes the service model does not define
# (S3's SlowDown / InternalError / ServiceUnavailable, CloudWatch's `Throttling`, any unmodeled 5xx) become the
# service's base exception. Optimized integrations use SDK v1 classes (`Glue.AWSGlueException`).
THROTTLING_AND_5XX = {
    "aws-sdk:glue": {"Glue.ThrottlingException", "Glue.GlueException"},
    "aws-sdk:s3": {"S3.S3Exception"},
    "aws-sdk:cloudwatch": {"CloudWatch.CloudWatchException", "CloudWatch.InternalServiceFaultException"},
    "glue:startJobRun.sync": {"Glue.AWSGlueException", "Glue.ConcurrentRunsExceededException"},
    "sns:publish": {"SNS.ThrottledException", "SNS.InternalErrorException"},
    "states:startExecution": {"StepFunctions.ThrottlingException"},
}
# Names no integration ever reports (S3 and CloudWatch do not model these codes): a retrier on them alone never fires.
NEVER_REPORTED = {"S3.SlowDownException", "S3.InternalErrorException", "S3.ServiceUnavailableException",
                  "CloudWatch.ThrottlingException"}  # fmt: skip


def _integration(resource: str) -> str:
    tail = resource.split(":states:::", 1)[1]
    return ":".join(tail.split(":")[:2]) if tail.startswith("aws-sdk:") else tail


def test_definition__every_sdk_task_retries_the_errors_aws_reports_for_throttling_and_5xx(template_json):
    """Every AWS call can be throttled (Glue catalog, S3, CloudWatch, SNS, Step Functions); a task whose retrier
    names an error the integration never reports fails the execution on the first throttle.

    "Using AWS SDK service integrations" (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html):
    errors are `ServiceName.ErrorName`, the error being the SDK exception. S3 has no modeled exception for 503
    SlowDown or 5xx, so Step Functions reports `S3.S3Exception` (https://github.com/cdklabs/construct-hub/pull/1904);
    CloudWatch throttles with the unmodeled code `Throttling` (CloudWatch.CloudWatchException); a throttled
    `glue:startJobRun.sync` fails with `Glue.AWSGlueException`
    (https://repost.aws/knowledge-center/glue-throttling-rate-exceeded)."""
    tasks = {n: s for n, s in _all_states(_definition(template_json)["States"]).items() if s["Type"] == "Task"}
    assert len(tasks) >= 12
    seen = set()
    for name, state in tasks.items():
        integration = _integration(state["Resource"])
        assert integration in THROTTLING_AND_5XX, f"{name}: no expected error names for {integration}"
        seen.add(integration)
        retriers = state.get("Retry", [])
        for error in sorted(THROTTLING_AND_5XX[integration]):
            covering = [r for r in retriers if error in r["ErrorEquals"] or "States.ALL" in r["ErrorEquals"]]
            assert covering, f"{name} ({integration}): no retry on {error}"
            (retry,) = covering
            assert retry["JitterStrategy"] == "FULL", name
            assert 1 <= retry["MaxAttempts"] <= 10 and retry["MaxDelaySeconds"] <= 600, name
        listed = {e for r in retriers for e in r["ErrorEquals"]}
        assert not listed & NEVER_REPORTED, f"{name}: retries on {sorted(listed & NEVER_REPORTED)}"
    assert {"aws-sdk:glue", "aws-sdk:s3", "aws-sdk:cloudwatch", "glue:startJobRun.sync", "sns:publish"} <= seen


def test_definition__partition_publish_survives_a_concurrent_create(template_json):
    """Two executions publishing the same new partition: one CreatePartition fails with AlreadyExists
    (https://docs.aws.amazon.com/glue/latest/webapi/API_CreatePartition.html) and must go back to the
    comparison instead of failing the execution."""
    states = _all_states(_definition(template_json)["States"])
    (catch,) = states["Create partition"]["Catch"]
    assert (catch["ErrorEquals"], catch["Next"]) == (["Glue.AlreadyExistsException"], "Get partition")
    (not_found,) = states["Get partition"]["Catch"]
    assert (not_found["ErrorEquals"], not_found["Next"]) == (["Glue.EntityNotFoundException"], "Still unpublished?")
    assert states["Still unpublished?"]["Default"] == "Create partition"
    assert states["Get partition"]["Next"] == "Published snapshot unchanged?"


def test_definition__a_batch_publishes_only_over_the_snapshot_it_merged_onto(template_json):
    """Compare-and-swap on the partition's location: a batch run (trigger s3) switches the partition only if it
    is still at the snapshot looked up before its ETL; otherwise it starts a full re-run of the partition."""
    states = _all_states(_definition(template_json)["States"])
    swap, other, *_ = states["Published snapshot unchanged?"]["Choices"]
    assert swap["Next"] == "Switch partition"
    assert {"Variable": "$.current.Partition.StorageDescriptor.Location", "StringEqualsPath": "$.merged_onto"} in (
        swap["And"])
    assert {"Variable": "$.trigger", "StringEquals": "s3"} in swap["And"]
    assert other == {"Variable": "$.trigger", "StringEquals": "s3", "Next": "Re-run partition (published meanwhile)"}
    assert states["Published snapshot unchanged?"]["Default"] == "Newer than published?"
    rerun = states["Re-run partition (published meanwhile)"]
    assert rerun["Parameters"]["StateMachineArn.$"] == "$$.StateMachine.Id"
    assert rerun["Parameters"]["Input"]["AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$"] == "$$.Execution.Id"
    assert states["Publish partitions"]["ItemsPath"] == "$.published"


def _state_machine_statements(template_json: dict) -> list[dict]:
    (machine,) = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    policies = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    return [st for p in policies if {"Ref": role} in p["Roles"] for st in p["PolicyDocument"]["Statement"]]


def _actions(statement: dict) -> list[str]:
    return statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]


def test_state_machine_role__starts_executions_of_itself_only(template_json):
    """StartExecution is scoped by the stateMachine resource type
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsstepfunctions.html): the role
    may start re-runs of its own state machine and nothing else."""
    (machine_id,) = [lid for lid, r in template_json["Resources"].items()
                     if r["Type"] == "AWS::StepFunctions::StateMachine"]  # fmt: skip
    start = [st for st in _state_machine_statements(template_json) if "states:StartExecution" in _actions(st)]
    assert [st["Resource"] for st in start] == [{"Ref": machine_id}]


def test_state_machine_role__writes_only_batch_manifests(template_json):
    """The only object the state machine writes is its batch manifest under the staging bucket's manifests/."""
    put = [st for st in _state_machine_statements(template_json) if "s3:putObject" in _actions(st)
           or "s3:PutObject" in _actions(st)]  # fmt: skip
    assert put
    for statement in put:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(json.dumps(r).endswith('/manifests/*"]]}') for r in resources), resources


def test_state_machine_role__put_metric_data_only_in_the_lake_namespace(template_json):
    """PutMetricData supports no resource-level permissions; the `cloudwatch:namespace` condition key scopes it
    (https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazoncloudwatch.html)."""
    (machine,) = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    role = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    policies = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    statements = [st for p in policies if {"Ref": role} in p["Roles"] for st in p["PolicyDocument"]["Statement"]]
    metric = [st for st in statements if "cloudwatch:PutMetricData" in
              (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]  # fmt: skip
    assert metric and all(st.get("Condition") == {"StringEquals": {"cloudwatch:namespace": "DataLake"}}
                          for st in metric)  # fmt: skip


def test_state_machine__logs_under_the_vended_logs_prefix(template_json):
    """Log groups for Step Functions should be under /aws/vendedlogs/states/ so the CloudWatch Logs resource
    policy does not outgrow its limit (https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html)."""
    (machine,) = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    destination = machine["Properties"]["LoggingConfiguration"]["Destinations"][0]
    log_group_id = destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    name = template_json["Resources"][log_group_id]["Properties"]["LogGroupName"]
    assert name.startswith("/aws/vendedlogs/states/DataLake-")


def test_trigger__pipe_sends_only_the_object_fields_the_state_machine_reads(template_json):
    """The Pipe's input template applies to each record of a batch
    (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html); the
    classification reads only `key` and `size` of each item (`$o`, in its JSONata expression)."""
    from workflows.trigger import PIPE_INPUT_TEMPLATE

    (pipe,) = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::Pipes::Pipe"]
    assert pipe["TargetParameters"]["InputTemplate"] == PIPE_INPUT_TEMPLATE
    states = _all_states(_definition(template_json)["States"])
    read = states["Read object events"]
    assert read["QueryLanguage"] == "JSONata"
    assert set(re.findall(r"\$o\.\w+", read["Output"])) == {"$o.key", "$o.size"}
