"""Stage configuration: good config loads, every bad value fails at synth naming its key."""

import json
from pathlib import Path

import pytest

from workflows.config import ConfigError, load_stage, parse_stage

DATASETS = Path(__file__).resolve().parents[2] / "datasets"


def _stage(**overrides):
    return {"datasets": ["orders"], **overrides}


def test_load_stage__cdk_json_stages_are_valid():
    context = json.loads((DATASETS.parent / "cdk.json").read_text())["context"]
    dev = load_stage(context, DATASETS)
    prod = load_stage(context, DATASETS, stage="prod")
    assert (dev.name, dev.destroy_on_removal, dev.batch_window_seconds) == ("dev", True, 60)
    assert (prod.name, prod.destroy_on_removal, prod.etl_worker_type, prod.etl_number_of_workers) == (
        "prod",
        False,
        "G.2X",
        10,
    )
    assert [d.name for d in prod.datasets] == ["orders"]


def test_parse_stage__defaults_are_safe():
    config = parse_stage("qa", _stage(), DATASETS)
    assert config.destroy_on_removal is False
    assert config.account is None
    assert config.crawler_max_polls == 60


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
        (_stage(datasets=[]), "stages.qa.datasets", "non-empty list"),
        (_stage(datasets=["nope"]), "stages.qa.datasets[0]", "nope/dataset.yaml"),
        (_stage(datasets=["orders", "orders"]), "stages.qa.datasets", "twice"),
        (_stage(bacth_window_seconds=60), "stages.qa.bacth_window_seconds", "unknown key"),
        (_stage(log_retention_days=100), "stages.qa.log_retention_days", "not a CloudWatch retention"),
        (_stage(lineage_url="http://x"), "stages.qa.lineage_url", "https://"),
        (
            _stage(crawler_poll_interval_seconds=600, crawler_max_polls=100),
            "stages.qa.crawler_max_polls",
            "longer than execution_timeout_minutes",
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
