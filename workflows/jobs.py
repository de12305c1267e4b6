"""Jobs: the Glue 5.0 PySpark ETL job and data-quality job, their scripts, and the dataset files they read."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from constructs import Construct

from etl.spec import DatasetSpec
from workflows.nag import KMS_ACTIONS, S3_READ_ACTIONS, S3_WRITE_ACTIONS, acknowledge_wildcards, arn_finding
from workflows.packaging import LIBRARY_ZIP, build_job_bundle

GLUE_VERSION = "5.0"  # Spark 3.5, Python 3.11, Java 17: the versions the offline runtime pins
SCRIPTS_PREFIX = "glue/"
DATASETS_PREFIX = "datasets/"
# Installed by Glue at job start (pip), same version as requirements.lock. PyYAML ships with Glue 5.0.
ADDITIONAL_PYTHON_MODULES = "openlineage-python==1.54.0"


def grant_job_runtime(role: iam.Role) -> None:
    """What any Glue job of the lake needs to start and log: its Glue log groups, and its security configuration,
    which the runtime reads to encrypt S3 output and logs with the lake key (GetSecurityConfiguration has no resource
    type, so "*" is the only valid resource: AWS Service Authorization Reference, AWS Glue)."""
    stack = Stack.of(role)
    role.add_to_policy(iam.PolicyStatement(
        actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
        resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/*"],
    ))  # fmt: skip
    role.add_to_policy(iam.PolicyStatement(actions=["glue:GetSecurityConfiguration"], resources=["*"]))


class LakeJobs(Construct):
    """The ETL job (raw -> candidate curated Parquet, rejects, metrics) and the DQ job (rules.dqdl on
    the candidate -> result document), both reading dataset specs deployed to the assets bucket.

    Attributes: ``etl_job``, ``dq_job`` (CfnJob), ``role``, ``assets_deployment``, ``datasets_deployment``, and
    for other jobs of the lake ``library_arguments``, ``datasets_uri`` and ``script_uri()``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        repo_root: Path,
        build_dir: Path,
        datasets: tuple[DatasetSpec, ...],
        raw_bucket: s3.IBucket,
        staging_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        assets_bucket: s3.IBucket,
        key: kms.IKey,
        security_configuration: glue.CfnSecurityConfiguration,
        etl_worker_type: str,
        etl_number_of_workers: int,
        dq_worker_type: str,
        dq_number_of_workers: int,
        timeout_minutes: int,
        max_concurrent_runs: int,
        lineage_url: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        bundle = build_job_bundle(repo_root, build_dir / "glue")
        self.assets_deployment = s3deploy.BucketDeployment(
            self,
            "JobAssets",
            sources=[s3deploy.Source.asset(str(bundle))],
            destination_bucket=assets_bucket,
            destination_key_prefix=SCRIPTS_PREFIX,
        )
        self.datasets_deployment = s3deploy.BucketDeployment(
            self,
            "DatasetFiles",
            sources=[s3deploy.Source.asset(str(repo_root / "datasets"))],
            destination_bucket=assets_bucket,
            destination_key_prefix=DATASETS_PREFIX,
        )
        self.role = iam.Role(
            self,
            "JobRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue ETL and DQ jobs: read raw dataset prefixes, write staging and curated",
        )
        for spec in datasets:
            raw_bucket.grant_read(self.role, f"{spec.raw_prefix}*")
        staging_bucket.grant_read_write(self.role)
        curated_bucket.grant_read_write(self.role)
        assets_bucket.grant_read(self.role)
        key.grant_encrypt_decrypt(self.role)
        grant_job_runtime(self.role)
        # No catalog permissions: the jobs read and write S3 paths only (no --enable-glue-datacatalog); the state
        # machine publishes partitions.
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": ["Glue", "DataLake"]}},
        ))  # fmt: skip
        acknowledge_wildcards(
            self.role,
            actions=(*S3_READ_ACTIONS, *S3_WRITE_ACTIONS, *KMS_ACTIONS),
            resources=(
                *(arn_finding(raw_bucket, f"/{spec.raw_prefix}*") for spec in datasets),
                arn_finding(staging_bucket, "/*"),
                arn_finding(curated_bucket, "/*"),
                arn_finding(assets_bucket, "/*"),
                "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:/aws-glue/*",
                "*",
            ),
            reason="Jobs read only the configured datasets' raw prefixes and the assets bucket, write run-scoped "
            "keys in the lake's own staging and curated buckets (object keys are only known at run time), use "
            "only the lake key and Glue log groups; PutMetricData and GetSecurityConfiguration have no resource "
            "type (PutMetricData is restricted by a namespace condition).",
        )
        self._scripts = f"s3://{assets_bucket.bucket_name}/{SCRIPTS_PREFIX}"
        scripts = self._scripts
        self.datasets_uri = f"s3://{assets_bucket.bucket_name}/{DATASETS_PREFIX.rstrip('/')}"
        # What every job of the lake runs with: the job libraries, and Glue's metrics.
        self.library_arguments = {
            "--job-language": "python",
            "--enable-metrics": "true",
            "--enable-observability-metrics": "true",
            "--enable-job-insights": "true",
            "--job-bookmark-option": "job-bookmark-disable",  # partitions are passed explicitly per run
            "--extra-py-files": f"{scripts}{LIBRARY_ZIP}",
            "--additional-python-modules": ADDITIONAL_PYTHON_MODULES,
        }
        common_arguments = {
            **self.library_arguments,
            "--TempDir": f"s3://{staging_bucket.bucket_name}/tmp/glue/",
            "--raw_uri": f"s3://{raw_bucket.bucket_name}",
            "--curated_uri": f"s3://{curated_bucket.bucket_name}",
            "--staging_uri": f"s3://{staging_bucket.bucket_name}",
            "--datasets_uri": self.datasets_uri,
        }
        if lineage_url:
            common_arguments["--lineage_url"] = lineage_url
        self.etl_job = self._job(
            "EtlJob", "Transforms raw objects of the given partitions into candidate curated Parquet",
            f"{scripts}etl_job.py", common_arguments, etl_worker_type, etl_number_of_workers,
            timeout_minutes, max_concurrent_runs, security_configuration,
        )  # fmt: skip
        self.dq_job = self._job(
            "DataQualityJob", "Evaluates the dataset's rules.dqdl on a run's candidate data",
            f"{scripts}dq_job.py", common_arguments, dq_worker_type, dq_number_of_workers,
            timeout_minutes, max_concurrent_runs, security_configuration,
        )  # fmt: skip
        for job in (self.etl_job, self.dq_job):
            job.node.add_dependency(self.assets_deployment)
            job.node.add_dependency(self.datasets_deployment)

    def script_uri(self, entry_script: str) -> str:
        """The S3 URI of one of the bundle's entry scripts (workflows/packaging.py)."""
        return f"{self._scripts}{entry_script}"

    def _job(
        self,
        id_: str,
        description: str,
        script: str,
        arguments: dict[str, str],
        worker_type: str,
        workers: int,
        timeout_minutes: int,
        max_concurrent_runs: int,
        security_configuration: glue.CfnSecurityConfiguration,
    ) -> glue.CfnJob:
        return glue.CfnJob(
            self,
            id_,
            description=description,
            role=self.role.role_arn,
            glue_version=GLUE_VERSION,
            command=glue.CfnJob.JobCommandProperty(name="glueetl", python_version="3", script_location=script),
            default_arguments=arguments,
            worker_type=worker_type,
            number_of_workers=workers,
            timeout=timeout_minutes,
            max_retries=0,  # retries belong to the state machine, which knows which errors are transient
            execution_property=glue.CfnJob.ExecutionPropertyProperty(max_concurrent_runs=max_concurrent_runs),
            job_run_queuing_enabled=True,
            security_configuration=security_configuration.ref,
        )
