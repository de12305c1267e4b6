"""Housekeeping: the vacuum Glue job (etl/vacuum_job.py) and the scheduled Glue trigger that runs it per dataset.

Every batch writes a new run folder per partition with copies of the published files it does not touch, so without
a vacuum the curated bucket grows by about a partition's size per batch. A Glue trigger rather than an EventBridge
schedule: it starts Glue jobs natively, with per-dataset arguments, and needs no role of its own.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from etl.spec import DatasetSpec
from workflows.jobs import GLUE_VERSION, LakeJobs, grant_job_runtime
from workflows.nag import KMS_ACTIONS, S3_READ_ACTIONS, acknowledge_wildcards, arn_finding

VACUUM_TIMEOUT_MINUTES = 60
VACUUM_WORKERS = 2  # the smallest Spark job Glue runs; the job starts no Spark session
STAGING_INDEXES = ("footers", "dq_stats")  # per-folder staging files the vacuum deletes with their folder


class LakeHousekeeping(Construct):
    """Attributes: ``vacuum_job`` (CfnJob), ``vacuum_trigger`` (CfnTrigger, None when unscheduled), ``role``."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        jobs: LakeJobs,
        datasets: tuple[DatasetSpec, ...],
        staging_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        assets_bucket: s3.IBucket,
        key: kms.IKey,
        security_configuration: glue.CfnSecurityConfiguration,
        curated_database_name: str,
        min_keep_days: int,
        schedule: str | None,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.role = iam.Role(
            self,
            "VacuumRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Lake vacuum job: list run folders and delete the ones no partition publishes",
        )
        curated_prefixes = [f"{spec.name}/*" for spec in datasets]
        # DeleteObjects needs s3:DeleteObject on every key it names (Amazon S3 API Reference, DeleteObjects).
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[curated_bucket.bucket_arn, staging_bucket.bucket_arn],
        ))  # fmt: skip
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:DeleteObject"],
            resources=[*(curated_bucket.arn_for_objects(p) for p in curated_prefixes),
                       *(staging_bucket.arn_for_objects(f"{kind}/{p}") for kind in STAGING_INDEXES
                         for p in curated_prefixes)],
        ))  # fmt: skip
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[staging_bucket.arn_for_objects("manifests/*")],
        ))  # fmt: skip
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"],
            resources=[staging_bucket.arn_for_objects(f"runs/{spec.name}/vacuum/*") for spec in datasets],
        ))  # fmt: skip
        # GetPartitions is authorized on the catalog, the database and the table (AWS Glue Developer Guide,
        # "Specifying AWS Glue resource ARNs").
        catalog = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["glue:GetPartitions"],
            resources=[f"{catalog}:catalog", f"{catalog}:database/{curated_database_name}",
                       *(f"{catalog}:table/{curated_database_name}/{spec.curated_table}" for spec in datasets)],
        ))  # fmt: skip
        assets_bucket.grant_read(self.role)
        key.grant_encrypt_decrypt(self.role)  # manifests and assets are SSE-KMS; logs and the report are encrypted
        grant_job_runtime(self.role)
        acknowledge_wildcards(
            self.role,
            actions=(*S3_READ_ACTIONS, *KMS_ACTIONS),
            resources=(
                *(arn_finding(curated_bucket, f"/{p}") for p in curated_prefixes),
                *(arn_finding(staging_bucket, f"/{kind}/{p}") for kind in STAGING_INDEXES for p in curated_prefixes),
                arn_finding(staging_bucket, "/manifests/*"),
                *(arn_finding(staging_bucket, f"/runs/{spec.name}/vacuum/*") for spec in datasets),
                arn_finding(assets_bucket, "/*"),
                "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws-glue/*",
                "*",
            ),
            reason="The vacuum deletes only objects of the configured datasets' curated prefixes and their footer "
            "indexes and DQ statistics in staging (run folders are only known at run time), reads only batch "
            "manifests and the job assets, writes only its own reports, and uses only the lake key and Glue log "
            "groups; GetSecurityConfiguration has no resource type.",
        )
        self.vacuum_job = glue.CfnJob(
            self,
            "VacuumJob",
            description="Deletes the curated run folders no partition publishes, older than the keep",
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(
                name="glueetl", python_version="3", script_location=jobs.script_uri("vacuum_job.py")
            ),
            default_arguments={
                **jobs.library_arguments,
                "--curated_uri": f"s3://{curated_bucket.bucket_name}",
                "--staging_uri": f"s3://{staging_bucket.bucket_name}",
                "--datasets_uri": jobs.datasets_uri,
                "--curated_database": curated_database_name,
                "--min_keep_days": str(min_keep_days),
            },
            worker_type="G.1X",
            number_of_workers=VACUUM_WORKERS,
            timeout=VACUUM_TIMEOUT_MINUTES,
            max_retries=0,  # tomorrow's run retries; a failure alerts on-call (workflows/monitoring.py)
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=len(datasets)),
            security_configuration=security_configuration.ref,
        )
        self.vacuum_job.node.add_dependency(jobs.assets_deployment)
        self.vacuum_job.node.add_dependency(jobs.datasets_deployment)
        self.vacuum_trigger: glue.CfnTrigger | None = None
        if schedule:
            self.vacuum_trigger = glue.CfnTrigger(
                self,
                "VacuumSchedule",
                description="Runs the vacuum job once per dataset",
                type="SCHEDULED",
                schedule=schedule,
                start_on_creation=True,
                actions=[
                    glue.CfnTrigger.ActionProperty(job_name=self.vacuum_job.ref, arguments={"--dataset": spec.name})
                    for spec in datasets
                ],
            )
