"""Pipeline: the Step Functions state machine that crawls, transforms, checks, publishes and notifies.

Input is either a batch of object records from the trigger's EventBridge Pipe (its input template reduces
each S3 `Object Created` event to `{"bucket", "key", "size", "time"}`, see workflows/trigger.py) or a manual
request `{"dataset": "orders", "partitions": ["ingest_date=2026-11-24"]}`
(what `lake rerun` sends). The first states reduce a batch to unique partitions of one dataset.

Task failures are not caught: the execution fails at the state that failed (red in the console) and can
be redriven from there. Those failures reach the pipeline topic through an EventBridge rule on the
execution's status change. Outcomes the pipeline decides itself (crawl failed, polling bound reached,
data quality failed, nothing to do) are notified from inside the state machine with the run's details.

Every AWS SDK task retries throttling and server errors (bounded, exponential backoff, full jitter).
"""

from __future__ import annotations

import json

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from etl.spec import DatasetSpec
from quality.job import DQ_SUMMARY_FILE
from workflows.config import JOB_START_MAX_DELAY_SECONDS, JOB_START_RETRIES
from workflows.monitoring import METRICS_NAMESPACE
from workflows.nag import S3_READ_ACTIONS, acknowledge_wildcards, arn_finding

# Keys the trigger ignores: S3 "folder" markers, Spark/Hadoop temporary output and hidden files.
IGNORED_KEY_PATTERNS = ("*/_temporary/*", "*.tmp", "*_$folder$", "*/_SUCCESS", "*/.*")
SELF_REPORTED_ERRORS = ("DataQualityFailed", "CrawlerPollTimeout")
# Error names as Step Functions reports them: `<Service>.<Exception>`, the exception being the class the
# integration's Java SDK unmarshals the error into. An error code the service's model does not define (S3's 503
# SlowDown, 500 InternalError, 503 ServiceUnavailable; CloudWatch's `Throttling`; any service's unmodeled 5xx)
# becomes the service's base exception: `S3.S3Exception`, `CloudWatch.CloudWatchException`, `Glue.GlueException`
# for aws-sdk tasks (SDK v2, https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html;
# S3 throttling seen as S3.S3Exception: https://github.com/cdklabs/construct-hub/pull/1904). Optimized
# integrations use SDK v1 base classes: a throttled `glue:startJobRun.sync` fails with `Glue.AWSGlueException`
# (https://repost.aws/knowledge-center/glue-throttling-rate-exceeded), as Lambda's with `Lambda.AWSLambdaException`
# (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html). A base exception also
# stands for non-transient unmodeled errors; the retries are bounded, so those still fail within minutes.
TRANSIENT_GLUE_ERRORS = (
    "Glue.ConcurrentRunsExceededException",
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.AWSGlueException",
)
# Throttling and server-side errors of the AWS SDK tasks (aws-sdk:glue, aws-sdk:s3, aws-sdk:cloudwatch) and of the
# optimized sns:publish. Modeled codes keep their own class (Glue's ThrottlingException and
# InternalServiceException, CloudWatch's InternalServiceFault, SNS's Throttled and InternalError).
RETRYABLE_SDK_ERRORS: dict[str, tuple[str, ...]] = {
    "glue": ("Glue.ThrottlingException", "Glue.InternalServiceException", "Glue.OperationTimeoutException",
             "Glue.GlueException", "Glue.SdkClientException"),
    "s3": ("S3.S3Exception", "S3.SdkClientException"),
    "cloudwatch": ("CloudWatch.CloudWatchException", "CloudWatch.InternalServiceFaultException",
                   "CloudWatch.SdkClientException"),
    # sns:publish is an optimized integration: v1 names, `SNS.AmazonSNSException` by analogy with Glue and Lambda
    # above (not documented for SNS itself).
    "sns": ("SNS.ThrottledException", "SNS.InternalErrorException", "SNS.KMSThrottlingException",
            "SNS.AmazonSNSException", "SNS.SdkClientException"),
}  # fmt: skip
SDK_RETRY = {"interval_seconds": 2, "backoff_rate": 2.0, "max_attempts": 6, "max_delay_seconds": 60}
# CloudWatch Logs recommends this prefix for Step Functions logs: it keeps the account's log resource policy
# under its size limit. https://docs.aws.amazon.com/step-functions/latest/dg/cw-logs.html
VENDED_LOGS_PREFIX = "/aws/vendedlogs/states/"
# The published partition's snapshot: when the ETL run behind it listed the raw objects.
PUBLISHED_SNAPSHOT = "$.current.Partition.Parameters.lake_snapshot_at"


def _glob_test(value: str, pattern: str) -> str:
    """A JSONata test that `value` matches a Step Functions `StringMatches` pattern with at most two `*` (any
    characters, '/' and line breaks included), built from string comparisons: a regex `.` would not match a line
    break, and JavaScript's and Python's regex engines differ on them."""
    if "\\" in pattern or pattern.count("*") > 2:
        raise ValueError(f"key pattern {pattern!r}: only patterns with at most two `*` and no escapes are supported")
    if "*" not in pattern:
        return f"{value} = {json.dumps(pattern)}"
    head, *middle, tail = pattern.split("*")
    tests = [f"$substring({value}, 0, {len(head)}) = {json.dumps(head)}"] if head else []
    if tail:
        tests.append(f"$substring({value}, -{len(tail)}) = {json.dumps(tail)}")
    tests.append(f"$length({value}) >= {len(pattern) - pattern.count('*')}")
    if middle and middle[0]:
        inner = f"$substring({value}, {len(head)}, $length({value}) - {len(head) + len(tail)})"
        tests.append(f"$contains({inner}, {json.dumps(middle[0])})")
    return "(" + " and ".join(tests) + ")"


def _split(path: str, separator: str, index: int) -> str:
    return f"States.ArrayGetItem(States.StringSplit({path}, '{separator}'), {index})"


class LakePipeline(Construct):
    """The state machine and the rule that reports failed/timed-out/aborted executions.

    Attributes: ``state_machine``, ``log_group``, ``failure_rule``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        datasets: tuple[DatasetSpec, ...],
        crawlers: dict[str, glue.CfnCrawler],
        curated_tables: dict[str, glue.CfnTable],
        curated_database_name: str,
        raw_database_name: str,
        etl_job: glue.CfnJob,
        dq_job: glue.CfnJob,
        staging_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        topic: sns.ITopic,
        key: kms.IKey,
        poll_interval_seconds: int,
        max_polls: int,
        retry_interval_seconds: int,
        execution_timeout_minutes: int,
        log_retention_days: int,
        destroy_on_removal: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self._stack = Stack.of(self)
        self._datasets = datasets
        self._crawlers = crawlers
        self._curated_tables = curated_tables
        self._curated_database_name = curated_database_name
        self._raw_database_name = raw_database_name
        self._staging_bucket = staging_bucket
        self._curated_bucket = curated_bucket
        self._topic = topic
        self._poll_interval = poll_interval_seconds
        self._max_polls = max_polls
        self._retry_interval = retry_interval_seconds
        self._etl_job = etl_job
        self._dq_job = dq_job

        definition = self._plan(self._select_dataset())
        self.log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            encryption_key=key,
            log_group_name=f"{VENDED_LOGS_PREFIX}{self._stack.stack_name}-pipeline",
            # Retained like the data unless the stage is destroyable: a retained group keeps its fixed name, so the
            # stage's next deploy would fail on it (and its KMS key is scheduled for deletion with the stack).
            removal_policy=RemovalPolicy.DESTROY if destroy_on_removal else RemovalPolicy.RETAIN,
        )
        # Any retention in days that CloudWatch accepts (validated in workflows/config.py).
        self.log_group.node.default_child.add_property_override("RetentionInDays", log_retention_days)
        # Named, so that its own ARN (for the full re-run it starts, see `_requeue`) is known without a reference
        # to itself, which CloudFormation would reject as a circular dependency.
        name = f"{self._stack.stack_name}-pipeline"
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.minutes(execution_timeout_minutes),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            comment="Crawl, transform, check, publish and notify one dataset's new partitions",
        )
        self._topic.grant_publish(self.state_machine)
        # Not in the role's default policy: the state machine depends on that one, and this one names it.
        iam.Policy(
            self,
            "StartsItsOwnReruns",
            roles=[self.state_machine.role],
            statements=[iam.PolicyStatement(actions=["states:StartExecution"],
                                            resources=[self.state_machine.state_machine_arn])],
        )  # fmt: skip
        self._staging_bucket.grant_read(self.state_machine, "runs/*")
        acknowledge_wildcards(
            self.state_machine,
            actions=(*S3_READ_ACTIONS, "kms:GenerateDataKey*"),
            resources=(
                arn_finding(staging_bucket, "/runs/*"),
                arn_finding(staging_bucket, "/manifests/*"),
                f"arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{curated_database_name}/*",
                f"arn:<AWS::Partition>:glue:<AWS::Region>:<AWS::AccountId>:table/{raw_database_name}/*",
                "*",
            ),
            reason="The state machine reads only run documents (runs/*) from the staging bucket and writes only "
            "batch manifests (manifests/*), publishes "
            "partitions only in the curated database's tables, looks up partitions of the raw database's tables, "
            "and uses the lake key for the encrypted topic; "
            "X-Ray and CloudWatch Logs delivery actions do not support resource-level permissions.",
        )
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource type; the namespace condition scopes it
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )
        status_change = {"source": ["aws.states"], "detail_type": ["Step Functions Execution Status Change"]}
        self.failure_rule = events.Rule(
            self,
            "ExecutionFailed",
            description="Reports failed executions to the pipeline topic, except outcomes the pipeline reported",
            event_pattern=events.EventPattern(
                **status_change,
                detail={
                    "status": ["FAILED"],
                    "stateMachineArn": [self.state_machine.state_machine_arn],
                    "error": [{"anything-but": list(SELF_REPORTED_ERRORS)}],
                },
            ),
            targets=[targets.SnsTopic(topic, message=_failure_message())],
        )
        # Timed-out and aborted executions carry `"error": null`, which neither `exists: false` nor
        # `anything-but` is documented to match, so they get a rule without an error filter.
        # https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
        self.stopped_rule = events.Rule(
            self,
            "ExecutionStopped",
            description="Reports timed-out and aborted executions to the pipeline topic",
            event_pattern=events.EventPattern(
                **status_change,
                detail={"status": ["TIMED_OUT", "ABORTED"], "stateMachineArn": [self.state_machine.state_machine_arn]},
            ),
            targets=[targets.SnsTopic(topic, message=_failure_message())],
        )

    # -- first states: from the input to (dataset, partitions) ---------------------------------------------
    def _plan(self, select_dataset: sfn.IChainable) -> sfn.Chain:
        manual = sfn.Pass(
            self,
            "Use requested partitions",
            parameters={
                "datasets.$": "States.Array($.dataset)",
                "partitions.$": "States.ArrayUnique($.partitions)",
                "objects": [],
                "trigger": "manual",
            },
        )
        parse = self._read_object_events()
        kept = "$.objects[?(@.keep == true)]"
        reduce = sfn.Pass(
            self,
            "Deduplicate partitions",
            parameters={
                "datasets.$": f"States.ArrayUnique({kept}.dataset)",
                "partitions.$": f"States.ArrayUnique({kept}.partition)",
                "objects.$": f"{kept}.key",
                "dataset_count.$": f"States.ArrayLength(States.ArrayUnique({kept}.dataset))",
                "trigger": "s3",
            },
        )
        nothing = sfn.Succeed(self, "Nothing to process", comment="Only ignored objects in this batch")
        mixed = sfn.Fail(
            self,
            "Mixed datasets",
            error="MixedDatasets",
            cause="A batch must hold one dataset's objects; each dataset has its own trigger queue",
        )
        one_dataset = (
            sfn.Choice(self, "One dataset?")
            .when(sfn.Condition.number_equals("$.dataset_count", 1), select_dataset)
            .otherwise(mixed)
        )
        any_objects = (
            sfn.Choice(self, "Any data objects?")
            .when(sfn.Condition.boolean_equals("$.any", True), reduce.next(one_dataset))
            .otherwise(nothing)
        )
        unpartitioned = "$.objects[?(@.unpartitioned == true)]"
        notify_unpartitioned = tasks.SnsPublish(
            self,
            "Notify: objects outside partition folders",
            topic=self._topic,
            subject="[lake] objects not processed: outside partition folders",
            message=sfn.TaskInput.from_text(sfn.JsonPath.format(
                "These objects are not in a partition folder and were not processed: {}.\n"
                "Each object must be under <dataset>/<partition key>=<value>/ ({}). Move them there, e.g. "
                "aws s3 mv s3://<raw bucket>/<key> s3://<raw bucket>/<dataset>/<partition key>=<value>/<name>; "
                "the move starts a run for that partition.",
                sfn.JsonPath.json_to_string(sfn.JsonPath.list_at(f"{unpartitioned}.key")),
                sfn.JsonPath.array_get_item(sfn.JsonPath.list_at(f"{unpartitioned}.expected"), 0),
            )),
            result_path=sfn.JsonPath.DISCARD,
        )  # fmt: skip
        self._retry_sdk(notify_unpartitioned, "sns")
        check_unpartitioned = (
            sfn.Choice(self, "Objects outside partition folders?")
            .when(sfn.Condition.boolean_equals("$.unpartitioned", True), notify_unpartitioned.next(any_objects))
            .otherwise(any_objects)
        )
        manual.next(select_dataset)
        start = sfn.Choice(self, "Manual or S3 events?").when(sfn.Condition.is_present("$.dataset"), manual)
        return sfn.Chain.start(start.otherwise(parse.next(check_unpartitioned)))

    def _read_object_events(self) -> sfn.Pass:
        """The batch's object records -> {objects: [{keep, unpartitioned, dataset, partition | key, expected}],
        any, unpartitioned}, in one JSONata state: a Map classifying each record cost two state transitions per
        object (about 400 per execution of a full batch; transitions are what Standard workflows are billed by).

        Only keys under `<dataset>/<partition key>=<value>/` are data objects. A key directly under the dataset
        prefix (no partition folder) is reported and not processed: a later re-run of its partition could not
        find it, so processing it once would publish rows that a re-run silently drops. Empty objects and
        IGNORED_KEY_PATTERNS are skipped. `any` and `unpartitioned` come first because a JSONPath filter that
        matches nothing is an error in the states after this one.
        """
        rules = ["$o.size = 0 or " + " or ".join(_glob_test("$o.key", p) for p in IGNORED_KEY_PATTERNS)
                 + ' ? {"keep": false, "unpartitioned": false}']  # fmt: skip
        for spec in self._datasets:
            hive = _glob_test("$o.key", f"{spec.raw_prefix}{spec.partition_key}=*/*")
            rules.append(f'{hive} ? {{"keep": true, "unpartitioned": false, '
                         f'"dataset": "{spec.name}", "partition": $split($o.key, "/")[1], "key": $o.key}}')  # fmt: skip
            rules.append(f'{_glob_test("$o.key", f"{spec.raw_prefix}*")} ? {{"keep": false, '
                         f'"unpartitioned": true, "key": $o.key, '
                         f'"expected": "{spec.raw_prefix}{spec.partition_key}=<value>/"}}')  # fmt: skip
        classify = " : ".join(rules) + ' : {"keep": false, "unpartitioned": false}'
        expression = (f"($objects := [$map($states.input, function($o) {{ {classify} }})]; "
                      f'{{"objects": $objects, "any": $count($objects[keep]) > 0, '
                      f'"unpartitioned": $count($objects[unpartitioned]) > 0}})')  # fmt: skip
        return sfn.Pass.jsonata(self, "Read object events", outputs="{% " + expression + " %}")

    # -- per dataset settings ------------------------------------------------------------------------------
    def _select_dataset(self) -> sfn.IChainable:
        choice = sfn.Choice(self, "Known dataset?")
        etl = self._transform_and_check()
        check = self._check_raw_partitions(crawl=self._crawl(etl), skip_to=etl)
        for spec in self._datasets:
            settings = sfn.Pass(
                self,
                f"Settings ({spec.name})",
                parameters={
                    "dataset": spec.name,
                    "partitions.$": "$.partitions",
                    "objects.$": "$.objects",
                    "trigger.$": "$.trigger",
                    "settings": {
                        "crawler": self._crawlers[spec.name].ref,
                        "raw_database": self._raw_database_name,
                        "raw_table": spec.name,
                        "database": self._curated_database_name,
                        "table": spec.curated_table,
                        "staging_bucket": self._staging_bucket.bucket_name,
                        "curated_bucket": self._curated_bucket.bucket_name,
                    },
                    "polls": {"count": 0, "restart": False},
                    "raw_crawl": {"note": "ok"},
                },
            )
            choice.when(sfn.Condition.string_equals("$.datasets[0]", spec.name), settings.next(check))
        unknown = sfn.Fail(
            self,
            "Unknown dataset",
            error="UnknownDataset",
            cause="The dataset is not configured in this stage; configured: "
            + ", ".join(d.name for d in self._datasets),
        )
        return choice.otherwise(unknown)

    # -- crawl only for new partitions, with a bounded poll loop -------------------------------------------
    def _check_raw_partitions(self, *, crawl: sfn.IChainable, skip_to: sfn.IChainable) -> sfn.IChainable:
        """The crawler only adds new partition folders (CRAWL_NEW_FOLDERS_ONLY), and every crawl is billed
        for at least 10 minutes: crawl only when a partition of the batch is not yet in the raw table."""
        catalog = [
            self._catalog_arn("catalog"),
            self._catalog_arn(f"database/{self._raw_database_name}"),
            self._catalog_arn(f"table/{self._raw_database_name}/*"),
        ]
        check = sfn.Map(
            self,
            "Check raw partitions",
            items_path="$.partitions",
            item_selector={
                "database.$": "$.settings.raw_database",
                "table.$": "$.settings.raw_table",
                "value.$": _split("$$.Map.Item.Value", "=", 1),
            },
            max_concurrency=10,
            result_selector={"new.$": "States.ArrayContains($[*].known, false)"},
            result_path="$.raw",
        )
        lookup = self._glue(
            "Get raw partition",
            "getPartition",
            parameters={
                "DatabaseName.$": "$.database",
                "TableName.$": "$.table",
                "PartitionValues.$": "States.Array($.value)",
            },
            iam_resources=catalog,
            result_selector={"known": True},
        )
        missing = sfn.Pass(self, "Raw partition is new", parameters={"known": False})
        lookup.add_catch(missing, errors=["Glue.EntityNotFoundException"])
        check.item_processor(lookup)
        new = (
            sfn.Choice(self, "New partitions?")
            .when(sfn.Condition.boolean_equals("$.raw.new", True), crawl)
            .otherwise(skip_to)
        )
        return check.next(new)

    def _crawl(self, etl: sfn.IChainable) -> sfn.IChainable:
        start = self._glue(
            "Start crawler",
            "startCrawler",
            parameters={"Name.$": "$.settings.crawler"},
            iam_resources=[self._crawler_arn(name) for name in self._crawlers],
            result_path=sfn.JsonPath.DISCARD,
        )
        wait = sfn.Wait(self, "Wait for crawl", time=sfn.WaitTime.duration(Duration.seconds(self._poll_interval)))
        already_running = sfn.Pass(
            self,
            "Crawl already running",
            comment="Wait for that crawl to end, then start again so the new objects are covered",
            parameters={"count.$": "$.polls.count", "restart": True},
            result_path="$.polls",
        )
        start.add_catch(already_running, errors=["Glue.CrawlerRunningException"], result_path="$.crawler_busy")
        already_running.next(wait)
        get = self._glue(
            "Get crawler",
            "getCrawler",
            parameters={"Name.$": "$.settings.crawler"},
            iam_resources=[self._crawler_arn(name) for name in self._crawlers],
            result_selector={"state.$": "$.Crawler.State", "crawler.$": "$.Crawler"},
            result_path="$.crawl",
        )
        count = sfn.Pass(
            self,
            "Count poll",
            parameters={"count.$": "States.MathAdd($.polls.count, 1)", "restart.$": "$.polls.restart"},
            result_path="$.polls",
        )
        restart = sfn.Pass(
            self,
            "Restart crawler",
            parameters={"count.$": "$.polls.count", "restart": False},
            result_path="$.polls",
        )
        restart.next(start)
        timeout = self._notify_and_fail(
            "Crawler poll bound reached",
            "CrawlerPollTimeout",
            sfn.JsonPath.format(
                "Dataset {} - crawler {} was not READY after {} polls, " + f"{self._poll_interval} s apart.\n"
                "Re-run: lake rerun {} --partition {}",
                *self._crawl_report_fields("$.polls.count"),
            ),
        )
        # The ETL lists S3 itself and never reads the raw table, which only serves exploration in Athena: a
        # failed crawl (e.g. an object the crawler cannot read) must not hold back the partition's good objects.
        # The crawler's error message goes into the run's notification instead.
        crawl_error = "$.crawl.crawler.LastCrawl.ErrorMessage"
        note_error = sfn.Pass(
            self,
            "Note crawl error",
            parameters={"note": sfn.JsonPath.format(
                "crawler {} ended its last crawl {}: {} (the raw table may lack these partitions; curated data is "
                "not affected)", sfn.JsonPath.string_at("$.settings.crawler"),
                sfn.JsonPath.string_at("$.crawl.crawler.LastCrawl.Status"), sfn.JsonPath.string_at(crawl_error))},
            result_path="$.raw_crawl",
        )  # fmt: skip
        note_status = sfn.Pass(
            self,
            "Note crawl status",
            parameters={"note": sfn.JsonPath.format(
                "crawler {} did not succeed (crawler: {}); the raw table may lack these partitions",
                sfn.JsonPath.string_at("$.settings.crawler"),
                sfn.JsonPath.json_to_string(sfn.JsonPath.object_at("$.crawl.crawler")))},
            result_path="$.raw_crawl",
        )  # fmt: skip
        note_error.next(etl)
        note_status.next(etl)
        note = (
            sfn.Choice(self, "Crawl error message?")
            .when(sfn.Condition.is_present(crawl_error), note_error)
            .otherwise(note_status)
        )
        check_crawl = (
            sfn.Choice(self, "Crawl succeeded?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.is_present("$.crawl.crawler.LastCrawl.Status"),
                    sfn.Condition.string_equals("$.crawl.crawler.LastCrawl.Status", "SUCCEEDED"),
                ),
                etl,
            )
            .otherwise(note)
        )
        ready = (
            sfn.Choice(self, "Crawler READY?")
            .when(
                sfn.Condition.and_(
                    sfn.Condition.string_equals("$.crawl.state", "READY"),
                    sfn.Condition.boolean_equals("$.polls.restart", True),
                ),
                restart,
            )
            .when(sfn.Condition.string_equals("$.crawl.state", "READY"), check_crawl)
            .when(sfn.Condition.number_greater_than_equals("$.polls.count", self._max_polls), timeout)
            .otherwise(wait)
        )
        start.next(wait)
        wait.next(get).next(count).next(ready)
        return start

    # -- ETL, DQ, publish ----------------------------------------------------------------------------------
    def _job_arguments(self, **extra: str) -> sfn.TaskInput:
        return sfn.TaskInput.from_object(
            {
                "--dataset": sfn.JsonPath.string_at("$.dataset"),
                "--partitions": sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.partitions")),
                "--run_id": sfn.JsonPath.string_at("$$.Execution.Name"),
                **{f"--{name}": sfn.JsonPath.string_at(path) for name, path in extra.items()},
            }
        )

    def _glue_task(self, id_: str, job: glue.CfnJob, result_path: str, **extra: str) -> tasks.GlueStartJobRun:
        task = tasks.GlueStartJobRun(
            self,
            id_,
            glue_job_name=job.ref,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            arguments=self._job_arguments(**extra),
            result_selector={
                "id.$": "$.Id",
                "state.$": "$.JobRunState",
                "seconds.$": "$.ExecutionTime",
            },
            result_path=result_path,
        )
        task.add_retry(
            errors=list(TRANSIENT_GLUE_ERRORS),
            interval=Duration.seconds(self._retry_interval),
            backoff_rate=2.0,
            max_attempts=JOB_START_RETRIES,  # workflows/config.py counts these waits in the execution timeout
            max_delay=Duration.seconds(JOB_START_MAX_DELAY_SECONDS),
            jitter_strategy=sfn.JitterType.FULL,
        )
        return task

    def _transform_and_check(self) -> sfn.IChainable:
        etl = self._glue_task("Run ETL job", self._etl_job, "$.etl", manifest_uri="$.manifest.uri")
        dq = self._glue_task("Run data quality job", self._dq_job, "$.dq_run")
        # The DQ job writes a compact summary (counts, partition lists, a few failed rules and quarantined
        # objects) beside its full result: every state's output is limited to 256 KiB, and the full result
        # grows with partitions x rules. https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html
        read = tasks.CallAwsService(
            self,
            "Read data quality result",
            service="s3",
            action="getObject",
            parameters={
                "Bucket.$": "$.settings.staging_bucket",
                "Key.$": f"States.Format('runs/{{}}/{{}}/{DQ_SUMMARY_FILE}', $.dataset, $$.Execution.Name)",
            },
            iam_resources=[self._staging_bucket.arn_for_objects("runs/*")],
            result_selector={"result.$": "States.StringToJson($.Body)"},
            result_path="$.dq",
        )
        self._retry_sdk(read, "s3")
        dq_failed = self._notify_and_fail(
            "Data quality failed",
            "DataQualityFailed",
            _report(
                "Dataset {} - partitions {} failed data quality and stay unpublished (quarantined); "
                "partitions {} passed and are published. Fix the source files, then run the re-run command below.",
                [sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.dq.result.partitions_failed")),
                 sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.dq.result.partitions_passed"))],
                rerun_partitions="$.dq.result.partitions_failed",
            ),
        )  # fmt: skip
        all_passed = (
            sfn.Choice(self, "All partitions passed?")
            .when(sfn.Condition.number_equals("$.dq.result.failed_count", 0), self._notify_success())
            .otherwise(dq_failed)
        )
        any_passed = (
            sfn.Choice(self, "Any partition passed?")
            .when(sfn.Condition.number_greater_than("$.dq.result.passed_count", 0), self._publish().next(all_passed))
            .otherwise(self._record_metrics("Record metrics (quarantined)").next(dq_failed))
        )
        return self._prepare_batch(etl).next(dq).next(read).next(any_passed)

    def _prepare_batch(self, etl: tasks.GlueStartJobRun) -> sfn.Chain:
        """Look up each partition's published snapshot, then: a run started by S3 events writes a batch manifest
        (its objects and those snapshots) so the ETL reads only the batch and merges onto the snapshots
        (etl/batch.py); a manual re-run reprocesses every object of its partitions. Publishing compares the
        partition with the snapshot looked up here (see `_publish`)."""
        lookup = sfn.Map(
            self,
            "Look up published partitions",
            items_path="$.partitions",
            item_selector={
                "partition.$": "$$.Map.Item.Value",
                "value.$": _split("$$.Map.Item.Value", "=", 1),
                "database.$": "$.settings.database",
                "table.$": "$.settings.table",
            },
            max_concurrency=10,
            result_path="$.published",
        )
        get = self._glue(
            "Get published partition",
            "getPartition",
            parameters={
                "DatabaseName.$": "$.database",
                "TableName.$": "$.table",
                "PartitionValues.$": "States.Array($.value)",
            },
            iam_resources=self._curated_catalog_resources(),
            result_selector={"location.$": "$.Partition.StorageDescriptor.Location"},
            result_path="$.current",
        )
        found = sfn.Pass(
            self, "Published snapshot", parameters={"partition.$": "$.partition", "location.$": "$.current.location"}
        )
        # "" rather than null: jsii drops a None from Pass parameters.
        unpublished = sfn.Pass(self, "Not published yet", parameters={"partition.$": "$.partition", "location": ""})
        get.add_catch(unpublished, errors=["Glue.EntityNotFoundException"], result_path=sfn.JsonPath.DISCARD)
        lookup.item_processor(get.next(found))

        manifest_key = "States.Format('manifests/{}/{}.json', $.dataset, $$.Execution.Name)"
        write = tasks.CallAwsService(
            self,
            "Write batch manifest",
            service="s3",
            action="putObject",
            parameters={
                "Bucket.$": "$.settings.staging_bucket",
                "Key.$": manifest_key,
                "Body.$": "States.JsonToString($.manifest)",
                "ContentType": "application/json",
            },
            iam_resources=[self._staging_bucket.arn_for_objects("manifests/*")],
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry_sdk(write, "s3")
        batch = sfn.Pass(
            self,
            "Batch manifest",
            # started_at: when the vacuum may treat a folder another manifest names as superseded (etl/vacuum.py)
            parameters={"objects.$": "$.objects", "published.$": "$.published",
                        "started_at.$": "$$.Execution.StartTime"},
            result_path="$.manifest",
        )
        use = sfn.Pass(
            self,
            "Use batch manifest",
            parameters={"uri.$": "States.Format('s3://{}/manifests/{}/{}.json', $.settings.staging_bucket, "
                                 "$.dataset, $$.Execution.Name)"},
            result_path="$.manifest",
        )  # fmt: skip
        full = sfn.Pass(self, "Reprocess whole partitions", parameters={"uri": "none"}, result_path="$.manifest")
        batch.next(write).next(use).next(etl)
        full.next(etl)
        mode = (
            sfn.Choice(self, "Batch or re-run?")
            .when(sfn.Condition.string_equals("$.trigger", "s3"), batch)
            .otherwise(full)
        )
        lookup.next(mode)
        return sfn.Chain.custom(lookup, [etl], etl)

    def _curated_catalog_resources(self) -> list[str]:
        return [
            self._catalog_arn("catalog"),
            self._catalog_arn(f"database/{self._curated_database_name}"),
            self._catalog_arn(f"table/{self._curated_database_name}/*"),
        ]

    def _publish(self) -> sfn.IChainable:
        """Switch each passed partition to this run's folder, if nothing else was published there meanwhile.

        A run started by S3 events merged its batch onto the snapshot looked up before its ETL: it publishes
        only if the partition is still at that snapshot (compare-and-swap on the location). If another run
        published meanwhile, this run's folder lacks that run's rows, so it is not published; instead a full
        re-run of the partition is started (a new execution, linked to this one in the console), which reads
        every object, this batch's included. A manual re-run lists every object itself: it publishes unless
        a run whose ETL listed the raw objects later (`etl.ingested_at`) already did.

        Executions for the same partition may publish concurrently: `createPartition` then fails with
        AlreadyExists for all but one, and they go back to the comparison.
        """
        catalog_resources = self._curated_catalog_resources()
        get_table = self._glue(
            "Get curated table",
            "getTable",
            parameters={"DatabaseName.$": "$.settings.database", "Name.$": "$.settings.table"},
            iam_resources=catalog_resources,
            result_selector={"sd.$": "$.Table.StorageDescriptor"},
            result_path="$.table",
        )
        switch = sfn.Map(
            self,
            "Publish partitions",
            comment="Atomic per partition: the catalog partition's location switches to this run's files",
            items_path="$.published",
            item_selector={
                "partition.$": "$$.Map.Item.Value.partition",
                "merged_onto.$": "$$.Map.Item.Value.location",
                "passed.$": "States.ArrayContains($.dq.result.partitions_passed, $$.Map.Item.Value.partition)",
                "value.$": _split("$$.Map.Item.Value.partition", "=", 1),
                "dataset.$": "$.dataset",
                "trigger.$": "$.trigger",
                "database.$": "$.settings.database",
                "table.$": "$.settings.table",
                "sd.$": "$.table.sd",
                "snapshot.$": "$.dq.result.etl.ingested_at",
                "location.$": "States.Format('s3://{}/{}/{}/run_id={}/', $.settings.curated_bucket, $.dataset, "
                "$$.Map.Item.Value.partition, $$.Execution.Name)",
            },
            max_concurrency=10,
            result_path=sfn.JsonPath.DISCARD,
        )
        partition_input = {
            "Values.$": "States.Array($.value)",
            # lake_published_at: every other folder of the partition was superseded by then (etl/vacuum.py)
            "Parameters": {PUBLISHED_SNAPSHOT.removeprefix("$.current.Partition.Parameters.") + ".$": "$.snapshot",
                           "lake_run_id.$": "$$.Execution.Name", "lake_published_at.$": "$$.State.EnteredTime"},
            "StorageDescriptor": {
                "Columns.$": "$.sd.Columns",
                "Location.$": "$.location",
                "InputFormat.$": "$.sd.InputFormat",
                "OutputFormat.$": "$.sd.OutputFormat",
                "SerdeInfo.$": "$.sd.SerdeInfo",
                "Compressed": True,
            },
        }  # fmt: skip
        get_partition = self._glue(
            "Get partition",
            "getPartition",
            parameters={
                "DatabaseName.$": "$.database",
                "TableName.$": "$.table",
                "PartitionValues.$": "States.Array($.value)",
            },
            iam_resources=catalog_resources,
            result_path="$.current",
        )
        create = self._glue(
            "Create partition",
            "createPartition",
            parameters={"DatabaseName.$": "$.database", "TableName.$": "$.table", "PartitionInput": partition_input},
            iam_resources=catalog_resources,
            result_path=sfn.JsonPath.DISCARD,
        )
        update = self._glue(
            "Switch partition",
            "updatePartition",
            parameters={
                "DatabaseName.$": "$.database",
                "TableName.$": "$.table",
                "PartitionValueList.$": "States.Array($.value)",
                "PartitionInput": partition_input,
            },
            iam_resources=catalog_resources,
            result_path=sfn.JsonPath.DISCARD,
        )
        newer_published = sfn.Succeed(
            self, "Newer data already published", comment="A run that listed the raw objects later published it"
        )
        newer = (
            sfn.Choice(self, "Newer than published?")
            .when(
                sfn.Condition.or_(
                    sfn.Condition.is_not_present(PUBLISHED_SNAPSHOT),
                    sfn.Condition.string_less_than_equals_json_path(PUBLISHED_SNAPSHOT, "$.snapshot"),
                ),
                update,
            )
            .otherwise(newer_published)
        )
        requeue = self._requeue()
        batch_run = sfn.Condition.string_equals("$.trigger", "s3")
        unchanged = (
            sfn.Choice(self, "Published snapshot unchanged?")
            .when(sfn.Condition.and_(batch_run, sfn.Condition.string_equals_json_path(
                "$.current.Partition.StorageDescriptor.Location", "$.merged_onto")), update)
            .when(batch_run, requeue)
            .otherwise(newer)
        )  # fmt: skip
        still_unpublished = (
            sfn.Choice(self, "Still unpublished?")
            .when(sfn.Condition.and_(batch_run, sfn.Condition.not_(sfn.Condition.string_equals("$.merged_onto", ""))),
                  requeue)
            .otherwise(create)
        )  # fmt: skip
        get_partition.add_catch(
            still_unpublished, errors=["Glue.EntityNotFoundException"], result_path=sfn.JsonPath.DISCARD
        )
        create.add_catch(get_partition, errors=["Glue.AlreadyExistsException"], result_path=sfn.JsonPath.DISCARD)
        passed = (
            sfn.Choice(self, "Partition passed?")
            .when(sfn.Condition.boolean_equals("$.passed", True), get_partition.next(unchanged))
            .otherwise(sfn.Succeed(self, "Not published", comment="The partition failed data quality"))
        )
        switch.item_processor(passed)
        return get_table.next(switch).next(self._record_metrics("Record metrics (published)"))

    def _requeue(self) -> sfn.IChainable:
        """Start a full re-run of the partition: a new execution of this state machine with the manual input.

        The optimized `states:startExecution` integration (not aws-sdk) passes the parent execution's ID, so
        the console links the two executions. The role's permission is granted in the constructor.
        """
        start = sfn.CustomState(
            self,
            "Re-run partition (published meanwhile)",
            state_json={
                "Type": "Task",
                "Resource": f"arn:{self._stack.partition}:states:::states:startExecution",
                "Parameters": {
                    "StateMachineArn.$": "$$.StateMachine.Id",
                    "Input": {
                        "dataset.$": "$.dataset",
                        "partitions.$": "States.Array($.partition)",
                        "requeued_by.$": "$$.Execution.Name",
                        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id",
                    },
                },
                "ResultSelector": {"execution.$": "$.ExecutionArn"},
                "ResultPath": "$.requeued",
                "Retry": [{
                    "ErrorEquals": ["StepFunctions.SdkClientException", "StepFunctions.ThrottlingException",
                                    "StepFunctions.ServiceUnavailableException"],
                    "IntervalSeconds": SDK_RETRY["interval_seconds"],
                    "BackoffRate": SDK_RETRY["backoff_rate"],
                    "MaxAttempts": SDK_RETRY["max_attempts"],
                    "MaxDelaySeconds": SDK_RETRY["max_delay_seconds"],
                    "JitterStrategy": "FULL",
                }],
            },
        )  # fmt: skip
        return start.next(sfn.Succeed(self, "Re-run started", comment="That run publishes the partition"))

    def _notify_success(self) -> sfn.IChainable:
        notify = tasks.SnsPublish(
            self,
            "Notify success",
            topic=self._topic,
            subject=sfn.JsonPath.format("[lake] {} published", sfn.JsonPath.string_at("$.dataset")),
            message=sfn.TaskInput.from_text(
                _report(
                    "Dataset {} - partitions {} passed data quality and are published.",
                    [sfn.JsonPath.json_to_string(sfn.JsonPath.list_at("$.dq.result.partitions_passed"))],
                    rerun_partitions="$.partitions",
                )  # fmt: skip
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry_sdk(notify, "sns")
        return notify.next(sfn.Succeed(self, "Published"))

    # -- helpers -------------------------------------------------------------------------------------------
    def _retry_sdk(self, task: sfn.TaskStateBase, service: str) -> None:
        """Bounded retries with full jitter for the service's throttling and server errors."""
        task.add_retry(
            errors=list(RETRYABLE_SDK_ERRORS[service]),
            interval=Duration.seconds(SDK_RETRY["interval_seconds"]),
            backoff_rate=SDK_RETRY["backoff_rate"],
            max_attempts=SDK_RETRY["max_attempts"],
            max_delay=Duration.seconds(SDK_RETRY["max_delay_seconds"]),
            jitter_strategy=sfn.JitterType.FULL,
        )

    def _glue(self, id_: str, action: str, **kwargs: object) -> tasks.CallAwsService:
        """An `aws-sdk:glue:<action>` task, retried on throttling and server errors."""
        task = tasks.CallAwsService(self, id_, service="glue", action=action, **kwargs)  # type: ignore[arg-type]
        self._retry_sdk(task, "glue")
        return task

    def _record_metrics(self, id_: str) -> sfn.CustomState:
        """Publish the run's row counts and per-partition outcomes to CloudWatch (alarms and dashboard).

        A CustomState, because CallAwsService always grants `cloudwatch:PutMetricData` without a condition; the
        role gets it with a `cloudwatch:namespace` condition in the constructor instead.
        """

        def datum(name: str, value_path: str) -> dict:
            return {
                "MetricName": name,
                "Dimensions": [{"Name": "Dataset", "Value.$": "$.dataset"}],
                "Unit": "Count",
                "Value.$": value_path,
            }

        metric_data = [
            datum("RowsRead", "$.dq.result.etl.input_rows"),
            datum("RowsWritten", "$.dq.result.etl.output_rows"),
            datum("RowsRejected", "$.dq.result.etl.rejected_rows"),
            datum("ObjectsQuarantined", "$.dq.result.etl.quarantined_count"),
            datum("DataQualityPassed", "$.dq.result.passed_count"),
            datum("DataQualityFailed", "$.dq.result.failed_count"),
            datum("PartitionsPublished", "$.dq.result.passed_count"),
        ]
        return sfn.CustomState(
            self,
            id_,
            state_json={
                "Type": "Task",
                "Resource": f"arn:{self._stack.partition}:states:::aws-sdk:cloudwatch:putMetricData",
                "Parameters": {"Namespace": METRICS_NAMESPACE, "MetricData": metric_data},
                # jsii drops a None (JSON null) here, so the empty PutMetricData response gets its own field.
                "ResultPath": "$.metrics_recorded",
                "Retry": [{
                    "ErrorEquals": list(RETRYABLE_SDK_ERRORS["cloudwatch"]),
                    "IntervalSeconds": SDK_RETRY["interval_seconds"],
                    "BackoffRate": SDK_RETRY["backoff_rate"],
                    "MaxAttempts": SDK_RETRY["max_attempts"],
                    "MaxDelaySeconds": SDK_RETRY["max_delay_seconds"],
                    "JitterStrategy": "FULL",
                }],
            },
        )  # fmt: skip

    def _notify_and_fail(self, id_: str, error: str, message: str) -> sfn.IChainable:
        notify = tasks.SnsPublish(
            self,
            f"Notify: {id_}",
            topic=self._topic,
            subject=sfn.JsonPath.format("[lake] {} FAILED: " + error, sfn.JsonPath.string_at("$.dataset")),
            message=sfn.TaskInput.from_text(message),
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry_sdk(notify, "sns")
        return notify.next(sfn.Fail(self, id_, error=error, cause=f"{id_}; see the notification for details"))

    def _crawl_report_fields(self, detail_path: str) -> list[str]:
        at = sfn.JsonPath.string_at
        first_partition = sfn.JsonPath.array_get_item(sfn.JsonPath.list_at("$.partitions"), 0)
        return [at("$.dataset"), at("$.settings.crawler"), at(detail_path), at("$.dataset"), first_partition]

    def _crawler_arn(self, dataset: str) -> str:
        return self._catalog_arn(f"crawler/{self._crawlers[dataset].ref}")

    def _catalog_arn(self, resource: str) -> str:
        stack = self._stack
        return f"arn:{stack.partition}:glue:{stack.region}:{stack.account}:{resource}"


def _report(headline: str, headline_values: list[str], rerun_partitions: str) -> str:
    """The run report sent to the pipeline topic, as a States.Format expression.

    `headline` has a `{}` for the dataset and one per `headline_values`; the re-run command names the first
    partition of the list at `rerun_partitions`. Failed rules and quarantined objects are the first few of
    each (the DQ summary caps them); the full lists are in the run's documents in the staging bucket.
    """
    at = sfn.JsonPath.string_at
    as_json = sfn.JsonPath.json_to_string
    return sfn.JsonPath.format(
        headline + "\n\n"
        "Rows: {} read, {} written, {} rejected, {} duplicates removed.\n"
        "Data quality: {} ({} rules passed, {} failed over {} partitions). Failed rules: {}\n"
        "Quarantined objects (unreadable, not processed): {} {}\n"
        "Raw table crawl: {}\n"
        "Details: {}\n"
        "Execution: {} (started {}).\n"
        "Re-run: lake rerun {} --partition {}",
        at("$.dataset"),
        *headline_values,
        at("$.dq.result.etl.input_rows"),
        at("$.dq.result.etl.output_rows"),
        at("$.dq.result.etl.rejected_rows"),
        at("$.dq.result.etl.duplicates_removed"),
        at("$.dq.result.outcome"),
        at("$.dq.result.rules_passed"),
        at("$.dq.result.rules_failed"),
        sfn.JsonPath.array_length(sfn.JsonPath.list_at("$.partitions")),
        as_json(sfn.JsonPath.list_at("$.dq.result.failed_rules")),
        at("$.dq.result.etl.quarantined_count"),
        as_json(sfn.JsonPath.list_at("$.dq.result.etl.quarantined")),
        at("$.raw_crawl.note"),
        at("$.dq.result.details"),
        at("$$.Execution.Name"),
        at("$$.Execution.StartTime"),
        at("$.dataset"),
        sfn.JsonPath.array_get_item(sfn.JsonPath.list_at(rerun_partitions), 0),
    )


def _failure_message() -> events.RuleTargetInput:
    field = events.EventField.from_path
    return events.RuleTargetInput.from_multiline_text(
        f"Pipeline execution {field('$.detail.name')} ended with status {field('$.detail.status')}.\n"
        f"Error: {field('$.detail.error')}\n"
        f"Cause: {field('$.detail.cause')}\n"
        f"Console: https://console.aws.amazon.com/states/home?region={field('$.region')}#/v2/executions/details/"
        f"{field('$.detail.executionArn')}\n"
        f"Look: lake show {field('$.detail.name')}\n"
        f"Retry from the failed state: lake redrive {field('$.detail.name')}"
    )
