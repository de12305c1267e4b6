from aws_cdk.assertions import Match


def _buckets(template_json):
    return {k: v for k, v in template_json["Resources"].items() if v["Type"] == "AWS::S3::Bucket"}


def test_buckets__all_block_public_access(template_json):
    buckets = _buckets(template_json)
    assert len(buckets) == 6
    for logical_id, bucket in buckets.items():
        assert bucket["Properties"]["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, logical_id


def test_buckets__data_buckets_use_the_lake_kms_key(template_json):
    kms_buckets = [
        b for b in _buckets(template_json).values()
        if b["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0][
            "ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    ]  # fmt: skip
    # raw, staging, curated, assets, athena results; the access-log bucket must be SSE-S3 (S3 requirement)
    assert len(kms_buckets) == 5
    for bucket in kms_buckets:
        rule = bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert "Fn::GetAtt" in rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
        assert rule["BucketKeyEnabled"] is True


def test_key__rotation_enabled(template):
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_bucket_policies__deny_insecure_transport(template_json):
    policies = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::S3::BucketPolicy"]
    assert len(policies) == 6
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        )


def test_raw_bucket__versioned_and_sends_eventbridge_events(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {"VersioningConfiguration": {"Status": "Enabled"}, "LoggingConfiguration": {"LogFilePrefix": "raw/"}},
    )
    template.has_resource_properties(
        "Custom::S3BucketNotifications", {"NotificationConfiguration": {"EventBridgeConfiguration": {}}}
    )


def test_buckets__lifecycle_expires_athena_results(template):
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LoggingConfiguration": {"LogFilePrefix": "athenaresults/"},
            "LifecycleConfiguration": {
                "Rules": Match.array_with([Match.object_like({"ExpirationInDays": 30, "Status": "Enabled"})])
            },
        },
    )


def test_removal__dev_stage_opts_into_destroy(template_json):
    assert {b["DeletionPolicy"] for b in _buckets(template_json).values()} == {"Delete"}


def test_removal__prod_stage_retains_buckets_and_key(prod_synthesized, prod_template_json):
    resources = prod_template_json["Resources"]
    assert prod_synthesized[2].destroy_on_removal is False
    retained = {r["Type"] for r in resources.values() if r.get("DeletionPolicy") == "Retain"}
    assert {"AWS::S3::Bucket", "AWS::KMS::Key"} <= retained
    assert not [r for r in resources.values() if r["Type"] == "AWS::S3::Bucket" and r.get("DeletionPolicy") != "Retain"]
    assert not [r for r in resources.values() if r["Type"] == "Custom::S3AutoDeleteObjects"]


def test_removal__destroy_stage_empties_every_bucket_before_deleting_it(template_json):
    """CloudFormation cannot delete a bucket that still holds objects (DELETE_FAILED, "The bucket you tried
    to delete is not empty"), so a `removal_policy: destroy` stage could never be torn down without an
    auto-delete custom resource on every bucket.
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-s3-bucket.html (DeletionPolicy note)"""
    resources = template_json["Resources"]
    emptied = {
        r["Properties"]["BucketName"]["Ref"]
        for r in resources.values()
        if r["Type"] == "Custom::S3AutoDeleteObjects"
    }
    assert emptied == set(_buckets(template_json))


# The property that gives each resource type a fixed (physical) name, when set.
PHYSICAL_NAME = {
    "AWS::S3::Bucket": "BucketName", "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::StepFunctions::StateMachine": "StateMachineName", "AWS::Athena::WorkGroup": "Name",
    "AWS::Glue::SecurityConfiguration": "Name", "AWS::Glue::Job": "Name", "AWS::Glue::Crawler": "Name",
    "AWS::SNS::Topic": "TopicName", "AWS::SQS::Queue": "QueueName", "AWS::KMS::Alias": "AliasName",
    "AWS::IAM::Role": "RoleName", "AWS::Events::Rule": "Name", "AWS::Pipes::Pipe": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName", "AWS::CloudWatch::Dashboard": "DashboardName",
}  # fmt: skip


def _physical_name(resource: dict):
    properties = resource.get("Properties", {})
    if resource["Type"] == "AWS::Glue::Database":
        return properties.get("DatabaseInput", {}).get("Name")
    return properties.get(PHYSICAL_NAME.get(resource["Type"], ""))


def _deleted_with_the_stack(resource: dict) -> bool:
    return {resource.get("DeletionPolicy", "Delete"), resource.get("UpdateReplacePolicy", "Delete")} == {"Delete"}


def test_removal__every_named_or_retained_resource_follows_the_stage(template_json, prod_template_json):
    """A destroy stage (dev) is torn down with `cdk destroy` and deployed again: a resource the stack leaves behind
    keeps its fixed name, and the next deploy fails on it (already exists; for the state machine's log group
    `/aws/vendedlogs/states/DataLake-<stage>-pipeline` also with a KMS key that is scheduled for deletion). So in a
    destroy stage every resource with a physical name, and every resource a retain stage keeps, is deleted with the
    stack; a retain stage (prod) keeps the data: buckets, the key, the log groups."""
    dev, prod = template_json["Resources"], prod_template_json["Resources"]
    named = {lid for lid, r in dev.items() if _physical_name(r)}
    retained_in_prod = {lid for lid, r in prod.items() if r.get("DeletionPolicy") == "Retain"}
    log_groups = {lid for lid, r in dev.items() if r["Type"] == "AWS::Logs::LogGroup"}
    assert log_groups and log_groups <= named
    assert {lid for lid, r in prod.items() if r["Type"] in ("AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup")
            } == retained_in_prod  # fmt: skip
    for lid in retained_in_prod:
        assert prod[lid].get("UpdateReplacePolicy") == "Retain", lid
    left_behind = {lid: (dev[lid]["Type"], _physical_name(dev[lid]), dev[lid].get("DeletionPolicy"))
                   for lid in sorted(named | retained_in_prod) if not _deleted_with_the_stack(dev[lid])}  # fmt: skip
    assert left_behind == {}
    assert not [lid for lid, r in dev.items() if not _deleted_with_the_stack(r)]


def _noncurrent_days(template_json: dict) -> dict[str, list[int]]:
    """Access-log prefix of each versioned bucket -> the NoncurrentDays of its lifecycle rules."""
    return {
        bucket["Properties"]["LoggingConfiguration"]["LogFilePrefix"]: [
            rule["NoncurrentVersionExpiration"]["NoncurrentDays"]
            for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
            if "NoncurrentVersionExpiration" in rule
        ]
        for bucket in _buckets(template_json).values()
        if bucket["Properties"].get("VersioningConfiguration", {}).get("Status") == "Enabled"
        and "LoggingConfiguration" in bucket["Properties"]
    }


def test_curated_bucket__noncurrent_versions_expire_after_the_stage_setting(template_json, tmp_path, synth_stage):
    """Deleted and overwritten objects of a versioned bucket stay as noncurrent versions, billed as storage, until a
    NoncurrentVersionExpiration rule removes them
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-configuration-examples.html). Curated keeps them
    `curated_noncurrent_days` (default 7: what the vacuum deletes stays restorable a week), raw 30 days."""
    days = _noncurrent_days(template_json)
    assert (days["curated/"], days["raw/"]) == ([7], [30])
    longer = _noncurrent_days(synth_stage("dev", tmp_path, curated_noncurrent_days=21)[3].to_json())
    assert (longer["curated/"], longer["raw/"]) == ([21], [30])
