"""Stage configuration: good config loads, every bad value fails at synth naming its key."""

import json
from pathlib import Path

import pytest

from workflows.config import ConfigError, load_stage, parse_stage

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _stage(**overrides):
    return {"datasets": ["orders"], **overrides}


def _cdk_json_context():
    return json.loads((DATASETS.parent / "cdk.json").read_text())["context"]


def test_load_stage__cdk_json_stages_are_valid():
    context = _cdk_json_context()
    dev = load_stage(context, DATASETS)
    local = load_stage(context, DATASETS, stage="local")
    context["stages"]["prod"]["oncall_emails"] = ["data-oncall@acme.io"]
    context["stages"]["prod"]["oncall_https_endpoints"] = ["https://events.pagerduty.com/integration/abc123/enqueue"]
    prod = load_stage(context, DATASETS, stage="prod")
    assert (dev.name, dev.destroy_on_removal, dev.batch_window_seconds) == ("dev", True, 60)
    assert local.destroy_on_removal is True
    assert (prod.name, prod.destroy_on_removal, prod.etl_worker_type, prod.etl_number_of_workers) == (
        "prod",
        False,
        "G.2X",
        10,
    )
    assert [d.name for d in prod.datasets] == ["orders"]


def test_load_stage__prod_as_committed_is_refused_until_its_placeholders_are_replaced():
    """cdk.json ships prod with example on-call subscriptions; a deploy with them would page nobody."""
    with pytest.raises(ConfigError) as error:
        load_stage(_cdk_json_context(), DATASETS, stage="prod")
    assert error.value.key == "stages.prod.oncall_emails[0]"
    assert "placeholder" in str(error.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("oncall_emails", "data-oncall@example.com"),
        ("oncall_emails", "ops@team.example.org"),
        ("oncall_emails", "me@host.test"),
        ("oncall_https_endpoints", "https://events.pagerduty.com/integration/REPLACE_ME/enqueue"),
        ("oncall_https_endpoints", "https://example.com/hook"),
        ("oncall_https_endpoints", "https://hooks.slack.com/services/YOUR_TOKEN"),
    ],
)
def test_parse_stage__placeholder_subscription_is_refused(key, value):
    real = "oncall@acme.io" if key == "oncall_emails" else "https://acme.io/x"
    with pytest.raises(ConfigError) as error:
        parse_stage("prod", _stage(**{key: [real, value]}), DATASETS)
    assert error.value.key == f"stages.prod.{key}[1]"
    assert "placeholder" in str(error.value)


def test_parse_stage__real_subscriptions_are_kept():
    raw = _stage(oncall_emails=["oncall@example-corp.com"], oncall_https_endpoints=["https://acme.io/enqueue"])
    config = parse_stage("prod", raw, DATASETS)
    assert config.oncall_emails == ("oncall@example-corp.com",)


def test_worst_case_execution__counts_polls_both_job_timeouts_and_retry_waits():
    config = parse_stage(
        "qa",
        _stage(crawler_poll_interval_seconds=30, crawler_max_polls=120, job_timeout_minutes=120,
               job_retry_interval_seconds=30, execution_timeout_minutes=400),
        DATASETS,
    )  # fmt: skip
    # 60 min of polls, 2 x 120 min of jobs, 2 x (30+60+120+240+480) s of job-start retry waits, 10 min margin
    assert config.worst_case_execution_minutes == 60 + 240 + 31 + 10


def test_parse_stage__execution_timeout_shorter_than_worst_case_names_the_keys():
    """Prod as it was: 180 min for 60 min of polling plus two 120 min jobs."""
    raw = _stage(crawler_poll_interval_seconds=30, crawler_max_polls=120, job_timeout_minutes=120,
                 execution_timeout_minutes=180)  # fmt: skip
    with pytest.raises(ConfigError) as error:
        parse_stage("prod", raw, DATASETS)
    assert error.value.key == "stages.prod.execution_timeout_minutes"
    message = str(error.value)
    for fragment in ("crawler_max_polls", "job_timeout_minutes", "job_retry_interval_seconds", "at least 341"):
        assert fragment in message


def test_parse_stage__defaults_are_safe():
    config = parse_stage("qa", _stage(), DATASETS)
    assert config.destroy_on_removal is False
    assert config.account is None
    assert config.crawler_max_polls == 60
    assert config.vacuum_schedule == "cron(30 3 * * ? *)"
    assert parse_stage("qa", _stage(vacuum_schedule="off"), DATASETS).vacuum_schedule is None


@pytest.mark.parametrize(
    ("raw", "key", "fragment"),
    [
        (_stage(batch_window_seconds=900), "stages.qa.batch_window_seconds", "from 0 to 300"),
        (_stage(batch_window_seconds="60"), "stages.qa.batch_window_seconds", "integer"),
        (_stage(batch_size=1000), "stages.qa.batch_size", "from 1 to 200"),
        (_stage(etl_worker_type="G.3X"), "stages.qa.etl_worker_type", "'G.3X' is not one of"),
        (_stage(etl_number_of_workers=1), "stages.qa.etl_number_of_workers", "from 2 to 299"),
        (_stage(removal_policy="nuke"), "stages.qa.removal_policy", "'retain' or 'destroy'"),
        (_stage(oncall_emails=["not-an-email"]), "stages.qa.oncall_emails[0]", "valid email address"),
        (
            _stage(oncall_https_endpoints=["http://insecure"]),
            "stages.qa.oncall_https_endpoints[0]",
            "https://",
        ),
        (_stage(account="12345"), "stages.qa.account", "valid account"),
        (_stage(region="mars-1"), "stages.qa.region", "valid region"),
        (_stage(account="123456789012"), "stages.qa.account", "needs `region` too"),
        (_stage(datasets=[]), "stages.qa.datasets", "non-empty list"),
        (_stage(datasets=["nope"]), "stages.qa.datasets[0]", "nope/dataset.yaml"),
        (_stage(datasets=["orders", "orders"]), "stages.qa.datasets", "twice"),
        (_stage(bacth_window_seconds=60), "stages.qa.bacth_window_seconds", "unknown key"),
        (_stage(log_retention_days=100), "stages.qa.log_retention_days", "not a CloudWatch retention"),
        (_stage(curated_noncurrent_days=0), "stages.qa.curated_noncurrent_days", "from 1 to 365"),
        (_stage(lineage_url="http://x"), "stages.qa.lineage_url", "https://"),
        (_stage(vacuum_schedule="0 3 * * *"), "stages.qa.vacuum_schedule", "Glue cron expression"),
        (_stage(vacuum_schedule=None), "stages.qa.vacuum_schedule", "got None"),
        (_stage(vacuum_schedule="cron(0 3 * * *)"), "stages.qa.vacuum_schedule", "or \"off\" for no schedule"),
        (
            _stage(crawler_poll_interval_seconds=600, crawler_max_polls=100),
            "stages.qa.execution_timeout_minutes",
            "shorter than an execution's worst case",
        ),
    ],
)
def test_parse_stage__bad_value_names_the_key(raw, key, fragment):
    with pytest.raises(ConfigError) as error:
        parse_stage("qa", raw, DATASETS)
    assert error.value.key == key
    assert fragment in str(error.value)
    assert str(error.value).startswith(f"cdk.json context {key}:")


def test_load_stage__unknown_stage_lists_defined_ones():
    with pytest.raises(ConfigError, match="unknown stage 'staging'; defined stages: dev, prod"):
        load_stage({"stages": {"dev": _stage(), "prod": _stage()}}, DATASETS, stage="staging")


def test_load_stage__missing_stages():
    with pytest.raises(ConfigError, match="context.stages"):
        load_stage({}, DATASETS)


def test_parse_stage__invalid_dataset_file_is_named(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "dataset.yaml").write_text("name: broken\nformat: xml\ncolumns: [{name: a, type: string}]\n")
    with pytest.raises(ConfigError) as error:
        parse_stage("qa", {"datasets": ["broken"]}, tmp_path)
    assert "broken/dataset.yaml: format: 'xml' is not one of csv, json, parquet" in str(error.value)


def test_app_main__bad_stage_exits_2_with_message(capsys):
    from app import main

    assert main(["-c", "stage=nope"]) == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err
