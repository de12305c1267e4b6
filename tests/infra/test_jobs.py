from aws_cdk.assertions import Match


def test_jobs__glue_5_pyspark_with_configured_workers(template):
    for description in ("Transforms raw", "Evaluates the dataset"):
        template.has_resource_properties(
            "AWS::Glue::Job",
            {
                "Description": Match.string_like_regexp(description),
                "GlueVersion": "5.0",
                "Command": {"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": Match.any_value()},
                "WorkerType": "G.1X",
                "NumberOfWorkers": 2,
                "Timeout": 60,
                "MaxRetries": 0,
                "ExecutionProperty": {"MaxConcurrentRuns": 3},
                "JobRunQueuingEnabled": True,
                "SecurityConfiguration": Match.any_value(),
            },
        )


def test_jobs__default_arguments_wire_the_lake(template_json):
    jobs = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    assert len(jobs) == 2
    for job in jobs:
        arguments = job["DefaultArguments"]
        assert arguments["--enable-continuous-cloudwatch-log"] == "true"
        assert arguments["--enable-job-insights"] == "true"
        assert arguments["--job-bookmark-option"] == "job-bookmark-disable"
        for key in ("--raw_uri", "--curated_uri", "--staging_uri", "--datasets_uri", "--extra-py-files"):
            assert "Fn::Join" in arguments[key], key
        assert arguments["--datasets_uri"]["Fn::Join"][1][-1] == "/datasets"
    scripts = sorted(j["Command"]["ScriptLocation"]["Fn::Join"][1][-1] for j in jobs)
    assert scripts == ["/glue/dq_job.py", "/glue/etl_job.py"]


def test_job_bundle__zip_contains_job_packages(tmp_path, repo_root):
    import zipfile

    from workflows.packaging import build_job_bundle

    out = build_job_bundle(repo_root, tmp_path / "glue")
    names = zipfile.ZipFile(out / "lake_jobs.zip").namelist()
    assert "etl/transforms.py" in names or "etl/spec.py" in names
    assert "quality/__init__.py" in names
    assert sorted(p.name for p in out.iterdir()) == ["dq_job.py", "etl_job.py", "lake_jobs.zip"]
    again = build_job_bundle(repo_root, tmp_path / "glue2")
    assert (out / "lake_jobs.zip").read_bytes() == (again / "lake_jobs.zip").read_bytes()
