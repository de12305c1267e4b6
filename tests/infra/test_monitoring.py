"""Alarms: metric, threshold, action to the on-call topic, and a runbook section for each."""

import re
from pathlib import Path

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"


def _alarms(template_json):
    return [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::CloudWatch::Alarm"]


def _oncall_topic_id(template_json):
    (topic_id,) = [k for k, r in template_json["Resources"].items()
                   if r["Type"] == "AWS::SNS::Topic" and k.startswith("NotificationsOnCallTopic")]  # fmt: skip
    return topic_id


def test_alarms__expected_metrics_and_thresholds(template_json):
    found = {
        (a.get("Namespace"), a.get("MetricName"), a["ComparisonOperator"], a["Threshold"], a["EvaluationPeriods"])
        for a in _alarms(template_json)
    }
    assert found == {
        ("AWS/States", "ExecutionsFailed", "GreaterThanOrEqualToThreshold", 1, 1),
        ("AWS/States", "ExecutionsTimedOut", "GreaterThanOrEqualToThreshold", 1, 1),
        ("AWS/States", "ExecutionThrottled", "GreaterThanOrEqualToThreshold", 1, 1),
        ("DataLake", "DataQualityFailed", "GreaterThanOrEqualToThreshold", 1, 1),
        ("DataLake", "PartitionsPublished", "LessThanThreshold", 1, 26),
        ("AWS/SQS", "ApproximateAgeOfOldestMessage", "GreaterThanOrEqualToThreshold", 900, 1),
        ("AWS/SQS", "ApproximateNumberOfMessagesVisible", "GreaterThanOrEqualToThreshold", 1, 1),
    }


def test_alarms__all_notify_oncall_on_alarm_and_ok(template_json):
    topic = _oncall_topic_id(template_json)
    for alarm in _alarms(template_json):
        assert alarm["AlarmActions"] == [{"Ref": topic}], alarm["AlarmDescription"]
        assert alarm["OKActions"] == [{"Ref": topic}]


def test_alarms__staleness_treats_missing_data_as_breaching(template_json):
    (stale,) = [a for a in _alarms(template_json) if a.get("MetricName") == "PartitionsPublished"]
    assert stale["TreatMissingData"] == "breaching"
    others = [a for a in _alarms(template_json) if a.get("MetricName") != "PartitionsPublished"]
    assert {a["TreatMissingData"] for a in others} == {"notBreaching"}


def test_runbook__every_alarm_has_a_section(template_json):
    headings = set(re.findall(r"^## (\S+)$", RUNBOOK.read_text(), flags=re.MULTILINE))
    anchors = []
    for alarm in _alarms(template_json):
        match = re.search(r"Runbook: docs/runbook.md#(\S+)$", alarm["AlarmDescription"])
        assert match, alarm["AlarmDescription"]
        anchors.append(match[1])
    assert len(anchors) == 7
    assert set(anchors) <= headings, set(anchors) - headings
    assert "glue-job-failed" in headings


def test_glue_failure_rule__routes_to_oncall(template_json):
    rules = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    (rule,) = [r for r in rules if r["EventPattern"].get("source") == ["aws.glue"]]
    assert rule["EventPattern"]["detail"]["state"] == ["FAILED", "TIMEOUT", "ERROR"]
    assert rule["Targets"][0]["Arn"] == {"Ref": _oncall_topic_id(template_json)}


def test_dashboard__exists_with_pipeline_widgets(template_json):
    (dashboard,) = [r for r in template_json["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = str(dashboard["Properties"]["DashboardBody"])
    for title in ("Executions", "orders: rows", "data-quality pass rate"):
        assert title in body
