"""The CDK entry point as the CDK CLI runs it."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_cdk_json__runs_the_app_with_the_projects_interpreter():
    """`cdk synth` runs cdk.json's "app" command; the system python3 lacks aws-cdk-lib, the venv has it."""
    command = shlex.split(json.loads((REPO_ROOT / "cdk.json").read_text())["app"])
    assert command[1:] == ["app.py"]
    assert (REPO_ROOT / command[0]).resolve() == Path(sys.executable).resolve()


def test_main__writes_the_assembly_where_the_cdk_cli_asks(tmp_path, monkeypatch, capsys):
    """The CLI passes its output folder (`cdk synth -o <dir>`) in CDK_OUTDIR and reads the assembly there.
    https://docs.aws.amazon.com/cdk/v2/guide/apps.html#apps-cloud-assembly"""
    import app

    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path / "assembly"))
    assert app.main(["-c", "stage=dev"]) == 0
    assert (tmp_path / "assembly" / "manifest.json").is_file()
    assert (tmp_path / "assembly" / "DataLake-dev.template.json").is_file()
    assert str(tmp_path / "assembly") in capsys.readouterr().out


def test_main__prod_with_placeholder_subscriptions_is_refused_naming_the_key(tmp_path, monkeypatch, capsys):
    import app

    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))
    assert app.main(["-c", "stage=prod"]) == 2
    error = capsys.readouterr().err
    assert "stages.prod.oncall_emails[0]" in error and "placeholder" in error
    assert not (tmp_path / "manifest.json").exists()


def test_app__starts_without_the_jsii_node_banner():
    """Under Node 20 jsii prints a dozen `b'!!  ...'` lines on stderr at every start unless silenced."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    result = subprocess.run([sys.executable, "-c", "import app, aws_cdk; aws_cdk.App()"], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    assert "!!" not in result.stderr and "b'" not in result.stderr, result.stderr
