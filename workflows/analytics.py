"""Analytics: the Athena workgroup analysts use to query the curated tables."""

from __future__ import annotations

from aws_cdk import aws_athena as athena
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


class LakeAnalytics(Construct):
    """An Athena workgroup with enforced settings: KMS-encrypted results in the lake's results bucket, a
    per-query bytes-scanned cutoff, CloudWatch metrics, engine v3.

    The workgroup name is physical on purpose (users pick it in the console): ``lake-<stage>`` from the config.
    Attributes: ``workgroup``, ``workgroup_name``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        workgroup_name: str,
        results_bucket: s3.IBucket,
        key: kms.IKey,
        bytes_scanned_cutoff_mb: int,
        destroy_on_removal: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.workgroup_name = workgroup_name
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=self.workgroup_name,
            description="Interactive queries over the curated lake tables",
            recursive_delete_option=destroy_on_removal,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff_mb * 1024 * 1024,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(
                    selected_engine_version="Athena engine version 3"
                ),
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{results_bucket.bucket_name}/athena/",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )
