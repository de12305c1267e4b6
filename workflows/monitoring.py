"""Monitoring: CloudWatch alarms routed to the on-call topic, Glue job failure events, and a dashboard.

Every alarm's description names its section in docs/runbook.md (tests/infra/test_monitoring.py checks
that each one exists). CloudWatch notifies on alarm state changes (OK -> ALARM -> OK), not on every
breaching datapoint, so a burst of failures pages once.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_glue as glue
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from etl.spec import DatasetSpec

METRICS_NAMESPACE = "DataLake"
RUNBOOK = "docs/runbook.md"


@dataclass(frozen=True)
class QueuePair:
    """A dataset's trigger queue and its dead-letter queue."""

    dataset: str
    queue: sqs.IQueue
    dead_letter_queue: sqs.IQueue


def lake_metric(name: str, dataset: str, statistic: str = "Sum", period: Duration | None = None) -> cloudwatch.Metric:
    """A metric the pipeline publishes (state machine or DQ job) in the DataLake namespace."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=name,
        dimensions_map={"Dataset": dataset},
        statistic=statistic,
        period=period or Duration.minutes(5),
    )


class LakeMonitoring(Construct):
    """Alarms (``alarms``: runbook anchor -> Alarm), the Glue failure rule and the dashboard."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        state_machine: sfn.StateMachine,
        jobs: list[glue.CfnJob],
        queues: list[QueuePair],
        datasets: tuple[DatasetSpec, ...],
        oncall_topic: sns.ITopic,
        batch_window_seconds: int,
    ) -> None:
        super().__init__(scope, id_)
        self._topic = oncall_topic
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        five_minutes = Duration.minutes(5)
        self._alarm(
            "execution-failed",
            "Pipeline executions failed",
            state_machine.metric_failed(period=five_minutes, statistic="Sum"),
        )
        self._alarm(
            "execution-timed-out",
            "Pipeline executions timed out",
            state_machine.metric_timed_out(period=five_minutes, statistic="Sum"),
        )
        self._alarm(
            "execution-throttled",
            "Pipeline executions throttled",
            state_machine.metric_throttled(period=five_minutes, statistic="Sum"),
        )
        for spec in datasets:
            self._alarm(
                f"data-quality-failed-{spec.name}",
                f"Data quality failed for {spec.name}",
                lake_metric("DataQualityFailed", spec.name),
                anchor="data-quality-failed",
            )
            hours = min(spec.freshness_sla_hours, 168)
            self._alarm(
                f"stale-{spec.name}",
                f"No partition of {spec.name} published in {hours} h",
                lake_metric("PartitionsPublished", spec.name, period=Duration.hours(1)),
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=hours,
                missing=cloudwatch.TreatMissingData.BREACHING,
                anchor="dataset-stale",
            )
        oldest_allowed = max(15 * 60, batch_window_seconds * 5)
        for pair in queues:
            self._alarm(
                f"trigger-backlog-{pair.dataset}",
                f"{pair.dataset} trigger queue holds events older than {oldest_allowed // 60} min",
                pair.queue.metric_approximate_age_of_oldest_message(period=five_minutes, statistic="Maximum"),
                threshold=oldest_allowed,
                anchor="trigger-backlog",
            )
            self._alarm(
                f"trigger-dead-letters-{pair.dataset}",
                f"{pair.dataset} events in the trigger dead-letter queue",
                pair.dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=five_minutes, statistic="Maximum"
                ),
                anchor="trigger-dead-letters",
            )
        self.glue_failure_rule = events.Rule(
            self,
            "GlueJobFailed",
            description="Glue job runs of the lake that failed, timed out or errored -> on-call",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [job.ref for job in jobs], "state": ["FAILED", "TIMEOUT", "ERROR"]},
            ),
            targets=[targets.SnsTopic(oncall_topic, message=_glue_failure_message())],
        )
        self.dashboard = self._dashboard(state_machine, datasets)

    def _alarm(
        self,
        name: str,
        summary: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float = 1,
        comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluation_periods: int = 1,
        missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
        anchor: str | None = None,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            f"Alarm-{name}",
            alarm_description=f"{summary}. Runbook: {RUNBOOK}#{anchor or name}",
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=evaluation_periods,
            treat_missing_data=missing,
        )
        alarm.add_alarm_action(actions.SnsAction(self._topic))
        alarm.add_ok_action(actions.SnsAction(self._topic))
        self.alarms[name] = alarm
        return alarm

    def _dashboard(self, state_machine: sfn.StateMachine, datasets: tuple[DatasetSpec, ...]) -> cloudwatch.Dashboard:
        dashboard = cloudwatch.Dashboard(self, "Dashboard", default_interval=Duration.days(7))
        hour = Duration.hours(1)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Executions",
                left=[
                    state_machine.metric_started(period=hour),
                    state_machine.metric_succeeded(period=hour),
                    state_machine.metric_failed(period=hour),
                    state_machine.metric_timed_out(period=hour),
                ],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Execution duration (ms)",
                left=[state_machine.metric_time(period=hour, statistic="p50")],
                right=[state_machine.metric_time(period=hour, statistic="Maximum")],
                width=12,
            ),
        )
        for spec in datasets:
            passed = lake_metric("DataQualityPassed", spec.name, period=hour)
            failed = lake_metric("DataQualityFailed", spec.name, period=hour)
            dashboard.add_widgets(
                cloudwatch.GraphWidget(
                    title=f"{spec.name}: rows",
                    left=[
                        lake_metric("RowsRead", spec.name, period=hour),
                        lake_metric("RowsWritten", spec.name, period=hour),
                        lake_metric("RowsRejected", spec.name, period=hour),
                    ],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title=f"{spec.name}: data-quality pass rate (%)",
                    left=[
                        cloudwatch.MathExpression(
                            expression="100 * passed / (passed + failed)",
                            using_metrics={"passed": passed, "failed": failed},
                            label="pass rate",
                            period=hour,
                        )
                    ],
                    width=12,
                ),
            )
        return dashboard


def _glue_failure_message() -> events.RuleTargetInput:
    field = events.EventField.from_path
    return events.RuleTargetInput.from_multiline_text(
        f"Glue job {field('$.detail.jobName')} run {field('$.detail.jobRunId')} ended {field('$.detail.state')}.\n"
        f"Message: {field('$.detail.message')}\n"
        f"Console: https://console.aws.amazon.com/gluestudio/home?region={field('$.region')}#/job/"
        f"{field('$.detail.jobName')}/run/{field('$.detail.jobRunId')}\n"
        f"Runbook: {RUNBOOK}#glue-job-failed"
    )
