"""lake.local.cloud: a small hand-written template deployed into the local cloud and executed."""

from __future__ import annotations

import json
import textwrap

import pytest

from lake.local.cloud import LocalCloud
from lake.local.glue_runtime import SimulatedJob

JOB_SCRIPT = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from etl.session import parse_job_args
    from etl.storage import LocalStorage, write_json
    args = parse_job_args(sys.argv[1:], ["lake_root", "run_key", "staging"])
    write_json(LocalStorage(Path(args["lake_root"])), f"s3://{args['staging']}/runs/{args['run_key']}/dq.json",
               {"passed": args["run_key"] != "bad", "run_key": args["run_key"]})
    """
)


def _join(*parts):
    return {"Fn::Join": ["", list(parts)]}


DEFINITION = [
    '{"StartAt":"Crawl","States":{',
    '"Crawl":{"Type":"Task","Resource":"arn:aws:states:::aws-sdk:glue:startCrawler","Parameters":{"Name":"',
    {"Ref": "RawCrawler"},
    '"},"ResultPath":null,"Catch":[{"ErrorEquals":["Glue.CrawlerRunningException"],"ResultPath":null,'
    '"Next":"Quality"}],"Next":"Quality"},',
    '"Quality":{"Type":"Task","Resource":"arn:',
    {"Ref": "AWS::Partition"},
    ':states:::glue:startJobRun.sync","Parameters":{"JobName":"',
    {"Ref": "DqJob"},
    '","Arguments":{"--run_key.$":"$.run_key"}},"ResultPath":"$.job","Next":"ReadResult"},',
    '"ReadResult":{"Type":"Task","Resource":"arn:aws:states:::aws-sdk:s3:getObject","Parameters":{"Bucket":"',
    {"Ref": "StagingBucket"},
    '","Key.$":"States.Format(\'runs/{}/dq.json\', $.run_key)"},',
    '"ResultSelector":{"doc.$":"States.StringToJson($.Body)"},"ResultPath":"$.dq","Next":"Passed?"},',
    '"Passed?":{"Type":"Choice","Choices":[{"Variable":"$.dq.doc.passed","BooleanEquals":true,"Next":"Done"}],',
    '"Default":"Alert"},',
    '"Alert":{"Type":"Task","Resource":"arn:aws:states:::sns:publish","Parameters":{"TopicArn":"',
    {"Ref": "AlertsTopic"},
    '","Subject":"dq failed","Message.$":"$.dq.doc"},"Next":"Failed"},',
    '"Failed":{"Type":"Fail","Error":"DataQualityFailed","Cause":"rules failed"},',
    '"Done":{"Type":"Succeed"}}}',
]

TEMPLATE = {
    "Resources": {
        "AssetsBucket": {"Type": "AWS::S3::Bucket"},
        "StagingBucket": {"Type": "AWS::S3::Bucket"},
        "RawBucket": {"Type": "AWS::S3::Bucket"},
        "AlertsTopic": {"Type": "AWS::SNS::Topic"},
        "LakeDb": {
            "Type": "AWS::Glue::Database",
            "Properties": {"CatalogId": {"Ref": "AWS::AccountId"}, "DatabaseInput": {"Name": "lake_dev"}},
        },
        "SfnRole": {"Type": "AWS::IAM::Role"},
        "RawCrawler": {
            "Type": "AWS::Glue::Crawler",
            "Properties": {
                "Role": {"Fn::GetAtt": ["SfnRole", "Arn"]},
                "DatabaseName": {"Ref": "LakeDb"},
                "Targets": {"S3Targets": [{"Path": _join("s3://", {"Ref": "RawBucket"}, "/")}]},
            },
        },
        "DqJob": {
            "Type": "AWS::Glue::Job",
            "Properties": {
                "Name": "dq-job",
                "Role": {"Fn::GetAtt": ["SfnRole", "Arn"]},
                "Command": {
                    "Name": "glueetl",
                    "ScriptLocation": _join("s3://", {"Ref": "AssetsBucket"}, "/glue/dq.py"),
                },
                "DefaultArguments": {"--staging": {"Ref": "StagingBucket"}},
                "ExecutionProperty": {"MaxConcurrentRuns": 2},
                "Timeout": 5,
            },
        },
        "Pipeline1234": {
            "Type": "AWS::StepFunctions::StateMachine",
            "Properties": {
                "RoleArn": {"Fn::GetAtt": ["SfnRole", "Arn"]},
                "DefinitionString": _join(*DEFINITION),
            },
        },
    }
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    script = root.parent / "dq.py"
    script.write_text(JOB_SCRIPT)
    (root / "rawbucket" / "orders" / "dt=2024-01-01").mkdir(parents=True)
    (root / "rawbucket" / "orders" / "dt=2024-01-01" / "a.csv").write_text("id,qty\n1,2\n")
    with LocalCloud(root, TEMPLATE, asset_files={"s3://assetsbucket/glue/dq.py": script}) as local:
        yield local


def test_local_cloud__deploys_resources(cloud):
    assert cloud.client("glue").get_job(JobName="dq-job")["Job"]["DefaultArguments"] == {
        "--staging": "stagingbucket"
    }
    assert cloud.client("glue").get_crawler(Name="RawCrawler")["Crawler"]["DatabaseName"] == "lake_dev"
    assert (cloud.root / "assetsbucket" / "glue" / "dq.py").is_file()
    assert cloud.state_machine_arn("Pipeline").endswith(":stateMachine:Pipeline1234")
    assert "SfnRole (AWS::IAM::Role)" in cloud.skipped


def test_start_execution__passes_through_real_job_and_crawler(cloud):
    result = cloud.wait(cloud.start_execution({"run_key": "good"}), timeout=120)
    assert result.status == "SUCCEEDED", result
    assert result.visited == ["Crawl", "Quality", "ReadResult", "Passed?", "Done"]
    assert all(s.duration_s is not None for s in result.states)
    assert cloud.client("glue").get_table(DatabaseName="lake_dev", Name="orders")["Table"]["PartitionKeys"]


def test_start_execution__failed_quality_alerts_and_fails(cloud):
    result = cloud.wait(cloud.start_execution({"run_key": "bad"}), timeout=120)
    assert result.status == "FAILED"
    assert result.error == "DataQualityFailed"
    assert result.visited[-2:] == ["Alert", "Failed"]
    alerts = [m for m in cloud.outbox() if m["subject"] == "dq failed"]
    assert json.loads(alerts[-1]["message"]) == {"passed": False, "run_key": "bad"}


def test_local_cloud__simulated_job_failure_is_reported(tmp_path):
    with LocalCloud(
        tmp_path, TEMPLATE, simulated_jobs={"dq-job": SimulatedJob(0.1, "FAILED", "boom")}
    ) as local:
        result = local.wait(local.start_execution({"run_key": "x"}), timeout=60)
    assert result.status == "FAILED"
    failed = result.failed_states()
    assert [s.name for s in failed] == ["Quality"]
    assert failed[0].error == "States.TaskFailed"
    assert json.loads(failed[0].cause)["ErrorMessage"] == "boom"
