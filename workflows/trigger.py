"""Trigger: S3 `Object Created` events -> EventBridge rule -> SQS queue -> EventBridge Pipe -> executions.

One rule, queue and pipe per dataset, so every execution handles one dataset and a burst on one dataset
never delays another. The queue makes the trigger lossless: if Step Functions throttles or refuses to
start an execution, the Pipe retries the batch, and after `max_receive_count` attempts the events move
to the dead-letter queue (alarmed), from where they can be redriven.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_pipes as pipes
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from etl.spec import DatasetSpec

MAX_RECEIVE_COUNT = 5
# What the state machine needs of each SQS record, nothing more: an SQS record as delivered by the Pipe is
# ~1.6 KB (long receipt handle, attributes, the whole S3 event as an escaped string), this is ~150 bytes plus
# the key. Pipes parse a JSON SQS body implicitly (`$.body.<field>`) and apply the template to each record of
# a batch; the state machine receives the JSON array of the results.
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-input-transformation.html
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-batching-concurrency.html
PIPE_INPUT_TEMPLATE = (
    '{"bucket": "<$.body.detail.bucket.name>", "key": "<$.body.detail.object.key>", '
    '"size": <$.body.detail.object.size>, "time": "<$.body.time>"}'
)


class DatasetTrigger(Construct):
    """The trigger path of one dataset. Attributes: ``rule``, ``queue``, ``dead_letter_queue``, ``pipe``."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dataset: DatasetSpec,
        raw_bucket: s3.IBucket,
        state_machine: sfn.IStateMachine,
        key: kms.IKey,
        batch_window_seconds: int,
        batch_size: int,
    ) -> None:
        super().__init__(scope, id_)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=Duration.days(4),
            visibility_timeout=Duration.seconds(max(60, batch_window_seconds * 2)),
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=MAX_RECEIVE_COUNT, queue=self.dead_letter_queue),
        )
        self.rule = events.Rule(
            self,
            "ObjectCreated",
            description=f"New raw objects of dataset {dataset.name}",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [raw_bucket.bucket_name]},
                    # Zero-byte "folder" markers never reach the queue; the state machine ignores temporary names.
                    "object": {"key": [{"prefix": dataset.raw_prefix}], "size": [{"numeric": [">", 0]}]},
                },
            ),
            targets=[
                targets.SqsQueue(
                    self.queue,
                    dead_letter_queue=self.dead_letter_queue,
                    retry_attempts=185,
                    max_event_age=Duration.hours(24),
                )
            ],
        )
        role = iam.Role(
            self,
            "PipeRole",
            assumed_by=iam.ServicePrincipal("pipes.amazonaws.com"),
            description=f"Pipe of dataset {dataset.name}: read its queue, start pipeline executions",
        )
        self.queue.grant_consume_messages(role)
        state_machine.grant_start_execution(role)
        self.pipe = pipes.CfnPipe(
            self,
            "Pipe",
            description=f"Starts one pipeline execution per batch of {dataset.name} objects",
            role_arn=role.role_arn,
            source=self.queue.queue_arn,
            source_parameters=pipes.CfnPipe.PipeSourceParametersProperty(
                sqs_queue_parameters=pipes.CfnPipe.PipeSourceSqsQueueParametersProperty(
                    batch_size=batch_size,
                    maximum_batching_window_in_seconds=batch_window_seconds,
                )
            ),
            target=state_machine.state_machine_arn,
            target_parameters=pipes.CfnPipe.PipeTargetParametersProperty(
                input_template=PIPE_INPUT_TEMPLATE,
                step_function_state_machine_parameters=pipes.CfnPipe.PipeTargetStateMachineParametersProperty(
                    invocation_type="FIRE_AND_FORGET"
                ),
            ),
        )
        self.pipe.node.add_dependency(role)
