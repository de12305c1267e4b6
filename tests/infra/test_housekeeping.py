"""The scheduled vacuum: a Glue trigger runs the vacuum job per dataset with a role that can delete only what the
vacuum may delete. What moto cannot judge (the trigger's schedule syntax, IAM) is checked here against AWS's docs."""

from __future__ import annotations

from etl.vacuum import min_keep_days


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _resources(template_json, kind: str) -> dict[str, dict]:
    return {k: r for k, r in template_json["Resources"].items() if r["Type"] == kind}


def _vacuum_job(template_json) -> tuple[str, dict]:
    (job,) = [(k, r["Properties"]) for k, r in _resources(template_json, "AWS::Glue::Job").items()
              if r["Properties"]["Command"]["ScriptLocation"]["Fn::Join"][1][-1] == "/glue/vacuum_job.py"]  # fmt: skip
    return job


def _statements(template_json, role_id: str) -> list[dict]:
    return [s for r in _resources(template_json, "AWS::IAM::Policy").values()
            if {"Ref": role_id} in r["Properties"]["Roles"]
            for s in r["Properties"]["PolicyDocument"]["Statement"]]  # fmt: skip


def test_vacuum_trigger__runs_the_vacuum_job_daily_once_per_dataset(template_json):
    """A SCHEDULED trigger takes a six-field cron expression in UTC and starts its actions' jobs with the actions'
    arguments; StartOnCreation makes it active after deployment (otherwise it is created deactivated).
    https://docs.aws.amazon.com/glue/latest/dg/monitor-data-warehouse-schedule.html
    https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-glue-trigger.html"""
    job_id, job = _vacuum_job(template_json)
    (trigger,) = [r["Properties"] for r in _resources(template_json, "AWS::Glue::Trigger").values()]
    assert (trigger["Type"], trigger["Schedule"], trigger["StartOnCreation"]) == ("SCHEDULED", "cron(30 3 * * ? *)",
                                                                                  True)  # fmt: skip
    assert trigger["Actions"] == [{"JobName": {"Ref": job_id}, "Arguments": {"--dataset": "orders"}}]
    assert job["ExecutionProperty"]["MaxConcurrentRuns"] >= len(trigger["Actions"])  # every dataset's run starts


def test_vacuum_job__keeps_at_least_the_redrive_window_plus_the_longest_execution(template_json):
    _, job = _vacuum_job(template_json)
    arguments = job["DefaultArguments"]
    assert arguments["--min_keep_days"] == str(min_keep_days(240)) == "15"  # the dev stage's execution timeout
    assert "--keep_days" not in arguments  # the minimum is the default
    assert arguments["--curated_database"] == "lake_dev_curated"
    assert "--raw_uri" not in arguments


def test_vacuum_role__deletes_only_run_folders_and_their_staging_files(template_json):
    """DeleteObjects needs s3:DeleteObject on each key it names; listing needs s3:ListBucket on the bucket.
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html"""
    _, job = _vacuum_job(template_json)
    role_id = job["Role"]["Fn::GetAtt"][0]
    statements = _statements(template_json, role_id)
    deletes = [s for s in statements if any(a.startswith("s3:Delete") for a in _as_list(s["Action"]))]
    (delete,) = deletes
    assert delete["Action"] == "s3:DeleteObject"
    suffixes = sorted(r["Fn::Join"][1][-1] for r in delete["Resource"])
    assert suffixes == ["/dq_stats/orders/*", "/footers/orders/*", "/orders/*"]
    writes = [s for s in statements if any(a.startswith("s3:Put") for a in _as_list(s["Action"]))]
    assert [r["Fn::Join"][1][-1] for w in writes for r in _as_list(w["Resource"])] == ["/runs/orders/vacuum/*"]
    actions = {a for s in statements for a in _as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("glue:") and a not in ("glue:GetPartitions",
                                                                           "glue:GetSecurityConfiguration")}


def test_vacuum_role__reads_partitions_of_the_curated_tables_only(template_json):
    """GetPartitions is authorized on the catalog, the database and the table.
    https://docs.aws.amazon.com/glue/latest/dg/glue-specifying-resource-arns.html"""
    _, job = _vacuum_job(template_json)
    (statement,) = [s for s in _statements(template_json, job["Role"]["Fn::GetAtt"][0])
                    if s["Action"] == "glue:GetPartitions"]  # fmt: skip
    resources = sorted(r["Fn::Join"][1][-1] for r in statement["Resource"])
    assert resources == [":catalog", ":database/lake_dev_curated", ":table/lake_dev_curated/orders"]


def test_vacuum_job__a_failed_run_alerts_oncall(template_json):
    job_id, _ = _vacuum_job(template_json)
    (rule,) = [r["Properties"] for r in _resources(template_json, "AWS::Events::Rule").values()
               if r["Properties"]["EventPattern"].get("source") == ["aws.glue"]]  # fmt: skip
    assert {"Ref": job_id} in rule["EventPattern"]["detail"]["jobName"]


def test_vacuum_trigger__not_created_without_a_schedule(tmp_path, synth_stage):
    template = synth_stage("dev", tmp_path, vacuum_schedule="off")[3].to_json()
    assert not _resources(template, "AWS::Glue::Trigger")
    assert len(_resources(template, "AWS::Glue::Job")) == 3  # the job stays, for runs by hand
