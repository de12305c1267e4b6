"""Notifications: the SNS topic for pipeline run reports and the on-call topic that alarms page."""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subs
from constructs import Construct


class LakeNotifications(Construct):
    """Two KMS-encrypted, SSL-only topics: ``pipeline_topic`` (every run's success/failure report, for
    data consumers) and ``oncall_topic`` (CloudWatch alarms; email and HTTPS endpoints from config).

    An EventBridge target on a topic makes CDK write a TopicPolicy, and a TopicPolicy replaces SNS's
    default policy. CloudWatch alarms publish as the ``cloudwatch.amazonaws.com`` service principal, so
    the on-call topic must allow it explicitly or no alarm ever reaches on-call.
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        key: kms.IKey,
        oncall_emails: tuple[str, ...] = (),
        oncall_https_endpoints: tuple[str, ...] = (),
    ) -> None:
        super().__init__(scope, id_)
        self.pipeline_topic = sns.Topic(
            self, "PipelineTopic", display_name="Data lake pipeline runs", master_key=key, enforce_ssl=True
        )
        self.oncall_topic = sns.Topic(
            self, "OnCallTopic", display_name="Data lake on-call alarms", master_key=key, enforce_ssl=True
        )
        self._allow_alarms(self.oncall_topic)
        for email in oncall_emails:
            self.oncall_topic.add_subscription(subs.EmailSubscription(email))
        for url in oncall_https_endpoints:
            self.oncall_topic.add_subscription(subs.UrlSubscription(url, protocol=sns.SubscriptionProtocol.HTTPS))

    @staticmethod
    def _allow_alarms(topic: sns.Topic) -> None:
        """Only this account's alarms in this region may publish (aws:SourceArn and aws:SourceAccount
        guard against the confused deputy)."""
        stack = Stack.of(topic)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsCloudWatchAlarms",
                actions=["sns:Publish"],
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
