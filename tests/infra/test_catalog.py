import json

from aws_cdk.assertions import Match


def test_crawler__targets_the_dataset_raw_prefix_incrementally(template):
    template.has_resource_properties(
        "AWS::Glue::Crawler",
        {
            "DatabaseName": "lake_dev_raw",
            "Targets": {
                "S3Targets": [Match.object_like({"Path": {"Fn::Join": ["", ["s3://", Match.any_value(), "/orders/"]]}})]
            },
            "RecrawlPolicy": {"RecrawlBehavior": "CRAWL_NEW_FOLDERS_ONLY"},
            "SchemaChangePolicy": {"UpdateBehavior": "LOG", "DeleteBehavior": "LOG"},
            "CrawlerSecurityConfiguration": Match.any_value(),
        },
    )


def test_security_configuration__kms_everywhere(template):
    template.has_resource_properties(
        "AWS::Glue::SecurityConfiguration",
        {
            "EncryptionConfiguration": {
                "S3Encryptions": [Match.object_like({"S3EncryptionMode": "SSE-KMS"})],
                "CloudWatchEncryption": Match.object_like({"CloudWatchEncryptionMode": "SSE-KMS"}),
                "JobBookmarksEncryption": Match.object_like({"JobBookmarksEncryptionMode": "CSE-KMS"}),
            }
        },
    )


def test_curated_table__schema_from_dataset_spec_plus_provenance(template_json):
    tables = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::Glue::Table"]
    assert len(tables) == 1
    table_input = tables[0]["Properties"]["TableInput"]
    assert table_input["Name"] == "orders"
    assert table_input["PartitionKeys"] == [{"Name": "ingest_date", "Type": "string"}]
    columns = [(c["Name"], c["Type"]) for c in table_input["StorageDescriptor"]["Columns"]]
    assert columns == [
        ("order_id", "string"), ("customer_id", "string"), ("order_ts", "timestamp"), ("status", "string"),
        ("currency", "string"), ("amount", "decimal(12,2)"), ("quantity", "int"), ("country", "string"),
        ("updated_at", "timestamp"), ("lake_source_object", "string"), ("lake_ingested_at", "timestamp"),
        ("lake_run_id", "string"),
    ]  # fmt: skip
    assert table_input["StorageDescriptor"]["SerdeInfo"]["SerializationLibrary"].endswith("ParquetHiveSerDe")


def test_crawler_role__reads_only_dataset_prefixes(template_json):
    policies = [
        r for k, r in template_json["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("CatalogCrawlerRole")
    ]  # fmt: skip
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert not any(a.startswith("s3:Put") or a.startswith("s3:Delete") for a in actions)
    object_resources = [
        r for s in statements for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        if isinstance(r, dict) and "Fn::Join" in r
    ]  # fmt: skip
    assert any(part == "/orders/*" for r in object_resources for part in r["Fn::Join"][1])


def test_crawler_role__catalog_calls_a_crawler_makes_on_the_raw_database_only(template_json):
    """What a crawler calls in the Data Catalog (the catalog part of the AWSGlueServiceRole managed policy,
    scoped to the raw database): GetDatabase, GetTable(s) to group schemas, Create/UpdateTable, and
    Get/BatchGet/Create/BatchCreate/Update/BatchUpdate partitions. GetSecurityConfiguration (the crawler
    encrypts its logs) has no resource type, so it is granted on "*" in its own statement.
    https://docs.aws.amazon.com/glue/latest/dg/create-service-policy.html
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html"""
    statements = [
        s for k, r in template_json["Resources"].items()
        if r["Type"] == "AWS::IAM::Policy" and k.startswith("CatalogCrawlerRole")
        for s in r["Properties"]["PolicyDocument"]["Statement"]
    ]  # fmt: skip

    def glue_actions(statement):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        return {a for a in actions if a.startswith("glue:")}

    scoped = [s for s in statements if glue_actions(s) and s["Resource"] != "*"]
    unscoped = [s for s in statements if glue_actions(s) and s["Resource"] == "*"]
    assert [glue_actions(s) for s in unscoped] == [{"glue:GetSecurityConfiguration"}]
    required = {
        "glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable",
        "glue:GetPartition", "glue:GetPartitions", "glue:BatchGetPartition", "glue:CreatePartition",
        "glue:BatchCreatePartition", "glue:UpdatePartition", "glue:BatchUpdatePartition",
    }  # fmt: skip
    granted = set().union(*(glue_actions(s) for s in scoped))
    assert granted == required
    resources = [json.dumps(r) for s in scoped for r in s["Resource"]]
    assert all("lake_dev_raw" in r or r.endswith(':catalog"]]}') for r in resources), resources
    assert not any(a.startswith("glue:Delete") for s in statements for a in glue_actions(s))
