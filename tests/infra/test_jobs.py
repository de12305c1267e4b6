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
    jobs = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::Glue::Job"
            and "--raw_uri" in r["Properties"]["DefaultArguments"]]  # fmt: skip
    assert len(jobs) == 2  # the ETL and DQ jobs; the vacuum job (tests/infra/test_housekeeping.py) reads no raw data
    for job in jobs:
        arguments = job["DefaultArguments"]
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
    assert sorted(p.name for p in out.iterdir()) == ["dq_job.py", "etl_job.py", "lake_jobs.zip", "vacuum_job.py"]
    again = build_job_bundle(repo_root, tmp_path / "glue2")
    assert (out / "lake_jobs.zip").read_bytes() == (again / "lake_jobs.zip").read_bytes()


def _role_statements(template_json, prefix: str) -> list[dict]:
    return [
        statement
        for key, resource in template_json["Resources"].items()
        if resource["Type"] == "AWS::IAM::Policy" and key.startswith(prefix)
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_jobs__only_arguments_glue_5_honours(template_json):
    """Glue 5.0 always streams logs in real time; `--enable-continuous-cloudwatch-log` and its filter are
    Glue 1.0-4.0 arguments it ignores. The jobs read and write S3 paths, never catalog tables, so they run
    without `--enable-glue-datacatalog` (and need no Data Catalog permission).
    https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-etl-glue-arguments.html
    https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html"""
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::Glue::Job":
            arguments = resource["Properties"]["DefaultArguments"]
            assert resource["Properties"]["GlueVersion"] == "5.0"
            assert not {"--enable-continuous-cloudwatch-log", "--enable-continuous-log-filter"} & set(arguments)
            assert "--enable-glue-datacatalog" not in arguments


def test_job_role__can_read_the_security_configuration_it_runs_with(template_json):
    """A job with a SecurityConfiguration reads it at start to encrypt its S3 output and logs.
    glue:GetSecurityConfiguration supports no resource-level permission, so only "*" grants it.
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsglue.html"""
    jobs = [r["Properties"] for r in template_json["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    assert all("SecurityConfiguration" in job for job in jobs)
    statements = _role_statements(template_json, "JobsJobRole")
    granted = [s for s in statements if "glue:GetSecurityConfiguration" in _as_list(s["Action"])]
    assert [s["Resource"] for s in granted] == ["*"]
    other_glue = {a for s in statements for a in _as_list(s["Action"]) if a.startswith("glue:")}
    assert other_glue == {"glue:GetSecurityConfiguration"}


def test_job_role__put_metric_data_only_in_the_lake_and_glue_namespaces(template_json):
    """cloudwatch:PutMetricData has no resource type; the cloudwatch:namespace condition is the only scope.
    https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/iam-cw-condition-keys-namespace.html"""
    statements = _role_statements(template_json, "JobsJobRole")
    metric = [s for s in statements if "cloudwatch:PutMetricData" in _as_list(s["Action"])]
    assert metric and all(
        s["Condition"] == {"StringEquals": {"cloudwatch:namespace": ["Glue", "DataLake"]}} for s in metric
    )


def _grants(statements: list[dict], action: str, resource) -> bool:
    from fnmatch import fnmatchcase

    return any(
        s["Effect"] == "Allow"
        and any(fnmatchcase(action, a) for a in _as_list(s["Action"]))
        and resource in _as_list(s["Resource"])
        for s in statements
    )


def test_job_role__can_copy_published_files_within_the_curated_bucket(template_json):
    """An incremental ETL run copies the published files its batch does not touch into the candidate folder
    (etl/snapshot.py, S3Storage.copy). CopyObject needs s3:GetObject on the source and s3:PutObject on the target;
    a copy of an SSE-KMS object needs kms:Decrypt on the source's key and kms:GenerateDataKey on the target's.
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#require-sse-kms"""
    resources = template_json["Resources"]
    [bucket] = [k for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket" and "Curated" in k]
    [rule] = resources[bucket]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    key = rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    objects = {"Fn::Join": ["", [{"Fn::GetAtt": [bucket, "Arn"]}, "/*"]]}
    statements = _role_statements(template_json, "JobsJobRole")
    assert _grants(statements, "s3:GetObject", objects) and _grants(statements, "s3:PutObject", objects)
    assert _grants(statements, "kms:Decrypt", key) and _grants(statements, "kms:GenerateDataKey", key)


def test_jobs__run_on_the_pyarrow_glue_5_ships(template_json, repo_root):
    """The ETL's CSV fast path (etl/fast_csv.py) runs pyarrow in Spark tasks. AWS Glue 5.0 provides pyarrow 17.0.0
    and numpy 1.26.4 ("Python modules already provided in AWS Glue", AWS Glue version 5.0:
    https://docs.aws.amazon.com/glue/latest/dg/aws-glue-programming-python-libraries.html#glue-modules-provided), so
    the tests must run those versions, and no job may install another at start (`--additional-python-modules`
    would replace the provided one, and download it on every run)."""
    lock = dict(line.split("==") for line in (repo_root / "requirements.lock").read_text().splitlines()
                if "==" in line and not line.startswith("#"))  # fmt: skip
    assert (lock["pyarrow"], lock["numpy"]) == ("17.0.0", "1.26.4")
    for resource in template_json["Resources"].values():
        if resource["Type"] == "AWS::Glue::Job":
            modules = resource["Properties"]["DefaultArguments"].get("--additional-python-modules", "")
            assert not {m.split("==")[0].strip().lower() for m in modules.split(",")} & {"pyarrow", "numpy"}
