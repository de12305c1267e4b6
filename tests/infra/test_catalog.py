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
