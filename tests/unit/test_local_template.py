"""lake.local.template: local physical identities and CloudFormation intrinsic functions."""

from __future__ import annotations

import json

import pytest

from lake.local.template import Resolver, TemplateError, physical_resources, resolved_properties

TEMPLATE = {
    "Parameters": {"Stage": {"Type": "String", "Default": "dev"}},
    "Conditions": {"IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}},
    "Resources": {
        "RawBucketAB12": {"Type": "AWS::S3::Bucket"},
        "AlertsTopic99": {"Type": "AWS::SNS::Topic"},
        "EtlJob01": {"Type": "AWS::Glue::Job", "Properties": {"Name": "etl-job"}},
        "Role77": {"Type": "AWS::IAM::Role"},
        "Queue5": {"Type": "AWS::SQS::Queue"},
        "Key1": {"Type": "AWS::KMS::Key"},
        "Machine": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": {"Fn::GetAtt": ["Role77", "Arn"]},
                "DefinitionString": {
                    "Fn::Join": [
                        "",
                        [
                            '{"StartAt":"Run","States":{"Run":{"Type":"Task","Resource":"arn:',
                            {"Ref": "AWS::Partition"},
                            ':states:::glue:startJobRun.sync","Parameters":{"JobName":"',
                            {"Ref": "EtlJob01"},
                            '"},"Next":"Notify"},"Notify":{"Type":"Task","Resource":"arn:aws:states:::sns:publish",'
                            '"Parameters":{"TopicArn":"',
                            {"Ref": "AlertsTopic99"},
                            '","Message":"done"},"End":true}}}',
                        ],
                    ]
                },
                "Tags": [{"Key": "prod", "Value": {"Fn::If": ["IsProd", "yes", {"Ref": "AWS::NoValue"}]}}],
            },
        },
    },
}


def test_physical_resources__deterministic_local_identities():
    phys = physical_resources(TEMPLATE)
    assert phys["RawBucketAB12"].ref == "rawbucketab12"
    assert phys["RawBucketAB12"].attributes["Arn"] == "arn:aws:s3:::rawbucketab12"
    assert phys["AlertsTopic99"].ref == "arn:aws:sns:us-east-1:123456789012:AlertsTopic99"
    assert phys["EtlJob01"].ref == "etl-job"
    assert phys["Role77"].attributes["Arn"] == "arn:aws:iam::123456789012:role/Role77"
    assert phys["Queue5"].ref == "https://sqs.us-east-1.amazonaws.com/123456789012/Queue5"
    assert phys["Queue5"].attributes["Arn"] == "arn:aws:sqs:us-east-1:123456789012:Queue5"
    assert phys["Key1"].attributes["Arn"].startswith("arn:aws:kms:us-east-1:123456789012:key/")
    assert phys["Machine"].ref == "arn:aws:states:us-east-1:123456789012:stateMachine:Machine"


def test_resolve__state_machine_definition_join_refs_getatts():
    resolver = Resolver(TEMPLATE)
    props = resolved_properties(resolver, "Machine")
    definition = json.loads(props["DefinitionString"])
    assert definition["States"]["Run"]["Resource"] == "arn:aws:states:::glue:startJobRun.sync"
    assert definition["States"]["Run"]["Parameters"]["JobName"] == "etl-job"
    assert definition["States"]["Notify"]["Parameters"]["TopicArn"].endswith(":AlertsTopic99")
    assert props["RoleArn"] == "arn:aws:iam::123456789012:role/Role77"
    assert props["Tags"] == [{"Key": "prod"}]  # Fn::If false -> AWS::NoValue drops the key


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Fn::Sub": "arn:${AWS::Partition}:s3:::${RawBucketAB12}/x"}, "arn:aws:s3:::rawbucketab12/x"),
        (
            {"Fn::Sub": "${AWS::Region}.${AWS::URLSuffix}/${AWS::AccountId}"},
            "us-east-1.amazonaws.com/123456789012",
        ),
        (
            {"Fn::Sub": ["${A}-${Role77.Arn}", {"A": {"Ref": "Stage"}}]},
            "dev-arn:aws:iam::123456789012:role/Role77",
        ),
        ({"Fn::Sub": "literal ${!NotAVar}"}, "literal ${NotAVar}"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}, "b"),
        ({"Fn::If": ["IsProd", "p", "np"]}, "np"),
        ({"Fn::GetAtt": "RawBucketAB12.Arn"}, "arn:aws:s3:::rawbucketab12"),
        ({"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}, True),
    ],
)
def test_resolve__intrinsics(expression, expected):
    assert Resolver(TEMPLATE).resolve(expression) == expected


def test_resolve__unknown_ref_and_function_raise_with_path():
    with pytest.raises(TemplateError, match=r"\$.x: Ref to unknown 'Nope'"):
        Resolver(TEMPLATE).resolve({"x": {"Ref": "Nope"}})
    with pytest.raises(TemplateError, match="Fn::ImportValue is not supported"):
        Resolver(TEMPLATE).resolve({"Fn::ImportValue": "x"})
