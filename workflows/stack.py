"""The one stack: composes the constructs and does every cross-construct grant."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from constructs import Construct

from etl.vacuum import min_keep_days
from workflows.analytics import LakeAnalytics
from workflows.catalog import LakeCatalog
from workflows.config import StageConfig
from workflows.housekeeping import LakeHousekeeping
from workflows.jobs import LakeJobs
from workflows.monitoring import LakeMonitoring, QueuePair
from workflows.nag import (
    KMS_ACTIONS,
    S3_READ_ACTIONS,
    S3_WRITE_ACTIONS,
    acknowledge,
    acknowledge_wildcards,
    arn_finding,
)
from workflows.notifications import LakeNotifications
from workflows.pipeline import LakePipeline
from workflows.storage import LakeStorage
from workflows.trigger import DatasetTrigger


class DataLakeStack(Stack):
    """Storage, catalog, jobs, analytics and notifications for one stage.

    The workflow (state machine), trigger and monitoring constructs plug in here and receive the
    resources below as typed objects.
    """

    def __init__(
        self, scope: Construct, id_: str, *, config: StageConfig, repo_root: Path, build_dir: Path, **kwargs
    ) -> None:
        super().__init__(scope, id_, **kwargs)
        self.config = config
        self.storage = LakeStorage(self, "Storage", destroy_on_removal=config.destroy_on_removal,
                                   curated_noncurrent_days=config.curated_noncurrent_days)  # fmt: skip
        for service in ("cloudwatch.amazonaws.com", "events.amazonaws.com"):
            self.storage.allow_service_to_use_key(service)
        self.storage.allow_service_to_use_key(f"logs.{self.region}.amazonaws.com")
        self.catalog = LakeCatalog(
            self,
            "Catalog",
            raw_database_name=config.raw_database_name,
            curated_database_name=config.curated_database_name,
            datasets=config.datasets,
            raw_bucket=self.storage.raw,
            curated_bucket=self.storage.curated,
            key=self.storage.key,
        )
        self.jobs = LakeJobs(
            self,
            "Jobs",
            repo_root=repo_root,
            build_dir=build_dir,
            datasets=config.datasets,
            raw_bucket=self.storage.raw,
            staging_bucket=self.storage.staging,
            curated_bucket=self.storage.curated,
            assets_bucket=self.storage.assets,
            key=self.storage.key,
            security_configuration=self.catalog.security_configuration,
            etl_worker_type=config.etl_worker_type,
            etl_number_of_workers=config.etl_number_of_workers,
            dq_worker_type=config.dq_worker_type,
            dq_number_of_workers=config.dq_number_of_workers,
            timeout_minutes=config.job_timeout_minutes,
            max_concurrent_runs=config.job_max_concurrent_runs,
            lineage_url=config.lineage_url,
        )
        self.housekeeping = LakeHousekeeping(
            self,
            "Housekeeping",
            jobs=self.jobs,
            datasets=config.datasets,
            staging_bucket=self.storage.staging,
            curated_bucket=self.storage.curated,
            assets_bucket=self.storage.assets,
            key=self.storage.key,
            security_configuration=self.catalog.security_configuration,
            curated_database_name=config.curated_database_name,
            min_keep_days=min_keep_days(config.execution_timeout_minutes),
            schedule=config.vacuum_schedule,
        )
        self.analytics = LakeAnalytics(
            self,
            "Analytics",
            workgroup_name=config.athena_workgroup_name,
            results_bucket=self.storage.athena_results,
            key=self.storage.key,
            bytes_scanned_cutoff_mb=config.athena_bytes_scanned_cutoff_mb,
            destroy_on_removal=config.destroy_on_removal,
        )
        self.notifications = LakeNotifications(
            self,
            "Notifications",
            key=self.storage.key,
            oncall_emails=config.oncall_emails,
            oncall_https_endpoints=config.oncall_https_endpoints,
        )
        self.pipeline = LakePipeline(
            self,
            "Pipeline",
            datasets=config.datasets,
            crawlers=self.catalog.crawlers,
            curated_tables=self.catalog.curated_tables,
            curated_database_name=self.catalog.curated_database_name,
            raw_database_name=self.catalog.raw_database_name,
            etl_job=self.jobs.etl_job,
            dq_job=self.jobs.dq_job,
            staging_bucket=self.storage.staging,
            curated_bucket=self.storage.curated,
            topic=self.notifications.pipeline_topic,
            key=self.storage.key,
            poll_interval_seconds=config.crawler_poll_interval_seconds,
            max_polls=config.crawler_max_polls,
            retry_interval_seconds=config.job_retry_interval_seconds,
            execution_timeout_minutes=config.execution_timeout_minutes,
            log_retention_days=config.log_retention_days,
            destroy_on_removal=config.destroy_on_removal,
        )
        self.triggers = {
            spec.name: DatasetTrigger(
                self,
                f"Trigger-{spec.name}",
                dataset=spec,
                raw_bucket=self.storage.raw,
                state_machine=self.pipeline.state_machine,
                key=self.storage.key,
                batch_window_seconds=config.batch_window_seconds,
                batch_size=config.batch_size,
            )
            for spec in config.datasets
        }
        self.monitoring = LakeMonitoring(
            self,
            "Monitoring",
            state_machine=self.pipeline.state_machine,
            jobs=[self.jobs.etl_job, self.jobs.dq_job, self.housekeeping.vacuum_job],
            queues=[QueuePair(name, t.queue, t.dead_letter_queue) for name, t in self.triggers.items()],
            datasets=config.datasets,
            oncall_topic=self.notifications.oncall_topic,
            batch_window_seconds=config.batch_window_seconds,
        )
        self._acknowledge_cdk_singletons()

    def _acknowledge_cdk_singletons(self) -> None:
        """CDK creates one Lambda per stack for S3 EventBridge notifications and for BucketDeployment.
        Their code and roles are CDK's own; acknowledge exactly their findings here, with reasons."""
        basic_execution = (
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]"
        )
        for child in self.node.children:
            if child.node.id.startswith("BucketNotificationsHandler"):
                acknowledge(
                    child,
                    basic_execution,
                    "CDK's bucket-notification handler only writes its own "
                    "CloudWatch logs with the AWS managed basic execution policy; it runs at deploy time only.",
                )
            if child.node.id.startswith("Custom::CDKBucketDeployment"):
                acknowledge(
                    child,
                    basic_execution,
                    "CDK's BucketDeployment handler writes only its own CloudWatch "
                    "logs with the AWS managed basic execution policy; it runs at deploy time only.",
                )
                acknowledge(
                    child,
                    "AwsSolutions-L1",
                    "The BucketDeployment handler's runtime is pinned by "
                    "aws-cdk-lib; upgrading aws-cdk-lib upgrades it.",
                )
                acknowledge_wildcards(
                    child,
                    actions=(*S3_READ_ACTIONS, *S3_WRITE_ACTIONS, *KMS_ACTIONS),
                    resources=(
                        arn_finding(self.storage.assets, "/*"),
                        "arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*",
                    ),
                    reason="BucketDeployment copies CDK asset zips from the bootstrap bucket into the lake's "
                    "assets bucket (job scripts, library zip, dataset specs) at deploy time; object keys are "
                    "content hashes, so object-level wildcards are needed.",
                )
