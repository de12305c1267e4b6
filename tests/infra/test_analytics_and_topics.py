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


def test_topics__kms_encrypted_and_oncall_subscribed(template_json, template, oncall):
    topics = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::SNS::Topic"]
    assert len(topics) == 2
    assert all("KmsMasterKeyId" in t["Properties"] for t in topics)
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "email", "Endpoint": oncall["email"]})
    template.has_resource_properties("AWS::SNS::Subscription", {"Protocol": "https", "Endpoint": oncall["url"]})


def _topic_policies(template_json) -> dict[str, list[dict]]:
    """Topic logical id -> the statements of the TopicPolicy attached to it."""
    policies: dict[str, list[dict]] = {}
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::SNS::TopicPolicy":
            for topic in resource["Properties"]["Topics"]:
                policies.setdefault(topic["Ref"], []).extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return policies


def _allows(statements: list[dict], service: str) -> list[dict]:
    return [
        s for s in statements
        if s["Effect"] == "Allow" and s.get("Principal", {}).get("Service") == service and "sns:Publish" in s["Action"]
    ]  # fmt: skip


def _topic_refs(values) -> set[str]:
    return {v["Ref"] for v in values if isinstance(v, dict) and "Ref" in v}


def test_topic_policies__every_alarm_topic_lets_this_accounts_cloudwatch_alarms_publish(template_json):
    """A TopicPolicy replaces SNS's default policy, so an alarm's topic must allow the CloudWatch service
    principal or every alarm fails with "not authorized to perform: SNS:Publish". Scoped with aws:SourceArn
    (this account's alarms) and aws:SourceAccount against the confused deputy.
    https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changed.html"""
    alarm_topics = set()
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            props = resource["Properties"]
            alarm_topics |= _topic_refs(props.get("AlarmActions", []) + props.get("OKActions", []))
    assert alarm_topics
    policies = _topic_policies(template_json)
    for topic in alarm_topics:
        allowed = _allows(policies.get(topic, []), "cloudwatch.amazonaws.com")
        assert allowed, f"{topic}: no policy statement lets cloudwatch.amazonaws.com publish"
        for statement in allowed:
            condition = statement["Condition"]
            source_arn = condition["ArnLike"]["aws:SourceArn"]["Fn::Join"][1]
            assert ":cloudwatch:" in source_arn and source_arn[-1] == ":alarm:*", source_arn
            assert condition["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_topic_policies__every_rule_target_topic_lets_eventbridge_publish(template_json):
    """EventBridge delivers to SNS as events.amazonaws.com, which the topic policy must allow.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions"""
    rule_topics = set()
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::Events::Rule":
            rule_topics |= _topic_refs([t["Arn"] for t in resource["Properties"].get("Targets", [])])
    assert len(rule_topics) == 2  # pipeline reports and on-call
    policies = _topic_policies(template_json)
    for topic in rule_topics:
        assert _allows(policies.get(topic, []), "events.amazonaws.com"), topic


def test_topic_policies__publishing_without_tls_is_denied(template_json):
    for topic, statements in _topic_policies(template_json).items():
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
        ), topic
