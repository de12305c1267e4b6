"""Storage: the lake's buckets and the customer-managed KMS key that encrypts them."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from workflows.nag import acknowledge


class LakeStorage(Construct):
    """Raw, staging (rejects, run documents, quarantine reports, lineage, footer indexes), curated, assets and Athena
    results buckets, plus the server access-log bucket.

    Every data bucket: SSE-KMS with the lake key (bucket keys on), public access blocked, SSL-only
    bucket policy, server access logs. Raw is versioned and sends events to EventBridge.
    Raw keeps overwritten and deleted objects 30 days as noncurrent versions, curated `curated_noncurrent_days`
    (the stage key: superseded run folders are deleted daily, and every noncurrent day of them is paid for).
    Removal: RETAIN unless ``destroy_on_removal`` (set per stage with ``removal_policy: destroy``); then the
    buckets are also emptied on stack deletion (CloudFormation cannot delete a bucket that holds objects).

    Attributes: ``key``, ``raw``, ``staging``, ``curated``, ``assets``, ``athena_results``, ``access_logs``.
    """

    def __init__(self, scope: Construct, id_: str, *, destroy_on_removal: bool = False,
                 curated_noncurrent_days: int = 7) -> None:  # fmt: skip
        super().__init__(scope, id_)
        removal = RemovalPolicy.DESTROY if destroy_on_removal else RemovalPolicy.RETAIN
        self.key = kms.Key(
            self,
            "LakeKey",
            description="Encrypts the data lake's buckets, topics, queues, logs and Glue outputs",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        # S3 server access logs cannot be delivered to an SSE-KMS bucket, so this one bucket uses SSE-S3.
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
            removal_policy=removal,
            auto_delete_objects=destroy_on_removal,
        )
        acknowledge(
            self.access_logs,
            "AwsSolutions-S1",
            "This is the access-log target bucket; logging it to itself would loop. Reads of it are "
            "audited by CloudTrail data events where the account enables them.",
        )
        self.raw = self._bucket(
            "Raw",
            destroy_on_removal,
            versioned=True,
            event_bridge_enabled=True,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-old-versions", noncurrent_version_expiration=Duration.days(30)),
                s3.LifecycleRule(
                    id="raw-to-infrequent-access",
                    transitions=[
                        s3.Transition(
                            storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                            transition_after=Duration.days(90),
                        )
                    ],
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        self.staging = self._bucket(
            "Staging",
            destroy_on_removal,
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-run-documents", prefix="runs/", expiration=Duration.days(400)),
                s3.LifecycleRule(id="expire-rejects", prefix="rejects/", expiration=Duration.days(400)),
                s3.LifecycleRule(id="expire-quarantine", prefix="quarantine/", expiration=Duration.days(400)),
                s3.LifecycleRule(id="expire-spark-temp", prefix="tmp/", expiration=Duration.days(7)),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        self.curated = self._bucket(
            "Curated",
            destroy_on_removal,
            versioned=True,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-old-versions", noncurrent_version_expiration=Duration.days(curated_noncurrent_days)
                ),
                s3.LifecycleRule(
                    id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7)
                ),
            ],
        )
        self.assets = self._bucket("Assets", destroy_on_removal, versioned=True)
        self.athena_results = self._bucket(
            "AthenaResults",
            destroy_on_removal,
            lifecycle_rules=[s3.LifecycleRule(id="expire-query-results", expiration=Duration.days(30))],
        )

    def _bucket(self, id_: str, destroy_on_removal: bool, **kwargs: object) -> s3.Bucket:
        return s3.Bucket(
            self,
            id_,
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs,
            server_access_logs_prefix=f"{id_.lower()}/",
            removal_policy=RemovalPolicy.DESTROY if destroy_on_removal else RemovalPolicy.RETAIN,
            auto_delete_objects=destroy_on_removal,
            **kwargs,
        )

    def allow_service_to_use_key(self, service: str) -> None:
        """Let an AWS service principal (CloudWatch alarms, EventBridge, logs) encrypt with the lake key."""
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                actions=[
                    "kms:Decrypt",
                    "kms:GenerateDataKey*",
                    "kms:Encrypt",
                    "kms:ReEncrypt*",
                    "kms:DescribeKey",
                ],
                principals=[iam.ServicePrincipal(service)],
                resources=["*"],
            )
        )
