"""Catalog: Glue databases, one crawler per dataset over its raw prefix, curated tables, and the Glue
security configuration (KMS for S3 output, CloudWatch logs and job bookmarks)."""

from __future__ import annotations

import json

from aws_cdk import Stack
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from etl.spec import DatasetSpec
from workflows.nag import KMS_ACTIONS, S3_READ_ACTIONS, acknowledge_wildcards, arn_finding

CRAWLER_CATALOG_ACTIONS = (
    "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
    "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
    "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition",
)  # fmt: skip

# Columns the ETL job adds to every curated row (see etl/transforms.py).
PROVENANCE_COLUMNS = (
    ("lake_source_object", "string", "s3:// URI of the raw object the row came from"),
    ("lake_ingested_at", "timestamp", "when the ETL run that wrote the row started (UTC)"),
    ("lake_run_id", "string", "Step Functions execution name of the run that wrote the row"),
)


def hive_type(spec_type: str) -> str:
    """Dataset spec types are already Hive/Glue type names (string, int, decimal(12,2), ...)."""
    return spec_type


def curated_columns(spec: DatasetSpec) -> list[glue.CfnTable.ColumnProperty]:
    columns = [glue.CfnTable.ColumnProperty(name=c.name, type=hive_type(c.type)) for c in spec.columns]
    columns += [glue.CfnTable.ColumnProperty(name=n, type=t, comment=d) for n, t, d in PROVENANCE_COLUMNS]
    return columns


class LakeCatalog(Construct):
    """Glue Data Catalog resources.

    Database names are physical names on purpose: analysts type them in Athena. They come from the stage
    config (``lake_<stage>_raw``, ``lake_<stage>_curated``), so two stages can share an account.

    Attributes: ``raw_database_name``, ``curated_database_name``, ``security_configuration``,
    ``crawlers`` (dataset name -> CfnCrawler), ``curated_tables`` (dataset name -> CfnTable),
    ``crawler_role``.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        raw_database_name: str,
        curated_database_name: str,
        datasets: tuple[DatasetSpec, ...],
        raw_bucket: s3.IBucket,
        curated_bucket: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, id_)
        stack = Stack.of(self)
        self.raw_database_name = raw_database_name
        self.curated_database_name = curated_database_name
        raw_db = glue.CfnDatabase(
            self, "RawDatabase", catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.raw_database_name, description="Raw zone tables maintained by the dataset crawlers"),
        )  # fmt: skip
        curated_db = glue.CfnDatabase(
            self, "CuratedDatabase", catalog_id=stack.account,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=self.curated_database_name,
                description="Curated tables; partitions are published only after data quality passed"),
        )  # fmt: skip
        self.security_configuration = glue.CfnSecurityConfiguration(
            self,
            "SecurityConfiguration",
            encryption_configuration=glue.CfnSecurityConfiguration.EncryptionConfigurationProperty(
                s3_encryptions=[
                    glue.CfnSecurityConfiguration.S3EncryptionProperty(
                        s3_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                    )
                ],
                cloud_watch_encryption=glue.CfnSecurityConfiguration.CloudWatchEncryptionProperty(
                    cloud_watch_encryption_mode="SSE-KMS", kms_key_arn=key.key_arn
                ),
                job_bookmarks_encryption=glue.CfnSecurityConfiguration.JobBookmarksEncryptionProperty(
                    job_bookmarks_encryption_mode="CSE-KMS", kms_key_arn=key.key_arn
                ),
            ),
            name=f"{raw_database_name.removesuffix('_raw')}-security",
        )
        self.crawler_role = iam.Role(
            self,
            "CrawlerRole",
            assumed_by=iam.ServicePrincipal("glue.amazonaws.com"),
            description="Glue crawlers: read the raw dataset prefixes, maintain raw tables",
        )
        self._grant_crawler(stack, raw_bucket, key, datasets)
        self.crawlers: dict[str, glue.CfnCrawler] = {}
        self.curated_tables: dict[str, glue.CfnTable] = {}
        for spec in datasets:
            crawler = glue.CfnCrawler(
                self,
                f"Crawler-{spec.name}",
                role=self.crawler_role.role_arn,
                database_name=self.raw_database_name,
                description=f"Infers the schema and partitions of raw dataset {spec.name}",
                targets=glue.CfnCrawler.TargetsProperty(
                    s3_targets=[glue.CfnCrawler.S3TargetProperty(
                        path=f"s3://{raw_bucket.bucket_name}/{spec.raw_prefix}",
                        exclusions=["**/_temporary/**", "**.tmp", "**/_SUCCESS", "**_$folder$"],
                    )]
                ),
                recrawl_policy=glue.CfnCrawler.RecrawlPolicyProperty(recrawl_behavior="CRAWL_NEW_FOLDERS_ONLY"),
                # CRAWL_NEW_FOLDERS_ONLY requires LOG for both behaviours: schema changes are logged, and the
                # curated table (not the raw one) is the contract readers depend on.
                schema_change_policy=glue.CfnCrawler.SchemaChangePolicyProperty(
                    update_behavior="LOG", delete_behavior="LOG"),
                crawler_security_configuration=self.security_configuration.ref,
                configuration=json.dumps({
                    "Version": 1.0,
                    "Grouping": {"TableGroupingPolicy": "CombineCompatibleSchemas", "TableLevelConfiguration": 2},
                    "CrawlerOutput": {"Partitions": {"AddOrUpdateBehavior": "InheritFromTable"}},
                }),
            )  # fmt: skip
            crawler.add_resource_dependency(raw_db)
            self.crawlers[spec.name] = crawler
            table = glue.CfnTable(
                self,
                f"CuratedTable-{spec.name}",
                catalog_id=stack.account,
                database_name=self.curated_database_name,
                table_input=glue.CfnTable.TableInputProperty(
                    name=spec.curated_table,
                    description=spec.description or f"Curated {spec.name}",
                    table_type="EXTERNAL_TABLE",
                    parameters={"classification": "parquet", "EXTERNAL": "TRUE", "lake.dataset": spec.name,
                                "lake.primary_key": ",".join(spec.primary_key)},
                    partition_keys=[glue.CfnTable.ColumnProperty(name=spec.partition_key, type="string")],
                    storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                        columns=curated_columns(spec),
                        location=f"s3://{curated_bucket.bucket_name}/{spec.name}/",
                        input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                        output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                        serde_info=glue.CfnTable.SerdeInfoProperty(
                            serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"),
                        compressed=True,
                    ),
                ),
            )  # fmt: skip
            table.add_resource_dependency(curated_db)
            self.curated_tables[spec.name] = table

    def _grant_crawler(
        self, stack: Stack, raw_bucket: s3.IBucket, key: kms.IKey, datasets: tuple[DatasetSpec, ...]
    ) -> None:
        for spec in datasets:
            raw_bucket.grant_read(self.crawler_role, f"{spec.raw_prefix}*")
        key.grant_encrypt_decrypt(self.crawler_role)
        catalog = f"arn:{stack.partition}:glue:{stack.region}:{stack.account}"
        # The catalog calls a crawler makes (the Data Catalog part of AWSGlueServiceRole, scoped to the raw
        # database): read the database and its tables to group schemas, create/update tables, and read,
        # create and update partitions. Schema and delete behaviour are LOG, so no Delete* actions.
        self.crawler_role.add_to_policy(iam.PolicyStatement(
            actions=[*CRAWLER_CATALOG_ACTIONS],
            resources=[f"{catalog}:catalog", f"{catalog}:database/{self.raw_database_name}",
                       f"{catalog}:table/{self.raw_database_name}/*"],
        ))  # fmt: skip
        # The crawler's security configuration encrypts its logs; no resource type, so "*" is the only valid
        # resource (AWS Service Authorization Reference, AWS Glue).
        self.crawler_role.add_to_policy(iam.PolicyStatement(actions=["glue:GetSecurityConfiguration"], resources=["*"]))
        self.crawler_role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:AssociateKmsKey"],
            resources=[f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws-glue/crawlers*"],
        ))  # fmt: skip
        scope = "arn:<AWS::Partition>:{}:<AWS::Region>:<AWS::AccountId>:{}"
        acknowledge_wildcards(
            self.crawler_role,
            actions=(*S3_READ_ACTIONS, *KMS_ACTIONS),
            resources=(
                *(arn_finding(raw_bucket, f"/{spec.raw_prefix}*") for spec in datasets),
                scope.format("glue", f"table/{self.raw_database_name}/*"),
                scope.format("logs", "log-group:/aws-glue/crawlers*"),
                "*",
            ),
            reason="The crawler reads only its datasets' raw prefixes (object-level wildcard below the prefix), "
            "maintains tables of the raw database only, uses only the lake key, and writes only Glue crawler logs; "
            "GetSecurityConfiguration has no resource type.",
        )
