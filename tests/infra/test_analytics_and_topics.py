from aws_cdk.assertions import Match


def test_athena_workgroup__enforced_encrypted_with_cutoff(template):
    template.has_resource_properties(
        "AWS::Athena::WorkGroup",
        {
            "Name": "lake-dev",
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "PublishCloudWatchMetricsEnabled": True,
                "BytesScannedCutoffPerQuery": 10_240 * 1024 * 1024,
                "ResultConfiguration": {
                    "EncryptionConfiguration": {"EncryptionOption": "SSE_KMS", "KmsKey": Match.any_value()},
                    "OutputLocation": Match.any_value(),
                },
                "EngineVersion": Match.any_value(),
            },
        },
    )


def test_topics__kms_encrypted_and_oncall_subscribed(template_json, template):
    topics = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::SNS::Topic"]
    assert len(topics) == 2
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics)
    template.has_resource_properties(
        "AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": "data-oncall@example.com"}
    )
