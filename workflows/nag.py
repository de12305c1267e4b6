"""cdk-nag v3 acknowledgements. Every one names one rule (or one finding) on one construct, with a reason."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Suppress `rule_id` (e.g. `AwsSolutions-S1` or `AwsSolutions-IAM5[Action::s3:GetObject*]`) on `scope`."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {rule_id} needs a real reason, got {reason!r}")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def arn_finding(resource: IConstruct, suffix: str = "") -> str:
    """How cdk-nag prints a resource's ARN token in an IAM5 finding: `<LogicalId.Arn>/suffix`."""
    stack = Stack.of(resource)
    default_child = resource.node.default_child or resource
    return f"<{stack.resolve(stack.get_logical_id(default_child))}.Arn>{suffix}"  # type: ignore[arg-type]


def acknowledge_wildcards(
    scope: IConstruct, *, actions: tuple[str, ...] = (), resources: tuple[str, ...] = (), reason: str
) -> None:
    """Acknowledge AwsSolutions-IAM5 findings one by one (cdk-nag v3 has no prefix matching)."""
    for action in actions:
        acknowledge(scope, f"AwsSolutions-IAM5[Action::{action}]", reason)
    for resource in resources:
        acknowledge(scope, f"AwsSolutions-IAM5[Resource::{resource}]", reason)


# The wildcard actions CDK's bucket and key grants produce (grant_read / grant_read_write / grant_encrypt_decrypt).
S3_READ_ACTIONS = ("s3:GetBucket*", "s3:GetObject*", "s3:List*")
S3_WRITE_ACTIONS = ("s3:Abort*", "s3:DeleteObject*")
KMS_ACTIONS = ("kms:GenerateDataKey*", "kms:ReEncrypt*")
