"""cdk-nag AwsSolutions and cfn-lint on the synthesized template."""

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("stage", ["synthesized", "prod_synthesized"])
def test_cdk_nag__no_unacknowledged_aws_solutions_findings(stage, request):
    from cdk_nag import AwsSolutionsChecks

    app, stack, _, _ = request.getfixturevalue(stage)
    report = AwsSolutionsChecks(app).validate_scope(stack)
    findings = [
        f"{violation.rule_name} at {resource.construct_path}"
        for violation in report.violations
        for resource in violation.violating_resources
    ]
    assert findings == []
    assert report.success


def test_cdk_nag__catches_an_unencrypted_bucket():
    """The nag check itself works: a plain bucket is flagged."""
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks

    app = cdk.App()
    stack = cdk.Stack(app, "Probe")
    s3.Bucket(stack, "Plain")
    report = AwsSolutionsChecks(app).validate_scope(stack)
    assert {v.rule_name for v in report.violations} >= {"AwsSolutions-S1", "AwsSolutions-S10"}


def test_acknowledge__rejects_an_empty_reason():
    import aws_cdk as cdk

    from workflows.nag import acknowledge

    with pytest.raises(ValueError, match="needs a real reason"):
        acknowledge(cdk.Stack(cdk.App(), "S"), "AwsSolutions-S1", "inherited")


@pytest.mark.parametrize("stage", ["template_json", "prod_template_json"])
def test_cfn_lint__no_errors_or_warnings(stage, request, tmp_path):
    path = Path(tmp_path) / "template.json"
    path.write_text(json.dumps(request.getfixturevalue(stage)))
    # W3005: CDK's own singleton Lambdas declare a DependsOn that a GetAtt already implies.
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--ignore-checks", "W3005", "--", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
