"""Synthesize the dev and prod stacks once per test session and share them among the infrastructure tests.

Both stages get on-call subscriptions the way an operator configures them in cdk.json (the committed file
ships none for dev and placeholders for prod, which synth refuses).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

ONCALL_EMAIL = "data-oncall@acme.io"
ONCALL_URL = "https://events.pagerduty.com/integration/0123456789abcdef0123456789abcdef/enqueue"


def stage_context(stage: str, **overrides) -> dict:
    """cdk.json's context with `stage` selected and its on-call subscriptions (and `overrides`) set."""
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    stages = dict(context["stages"])
    stages[stage] = {
        **stages[stage],
        "oncall_emails": [ONCALL_EMAIL],
        "oncall_https_endpoints": [ONCALL_URL],
        **overrides,
    }
    return {"stage": stage, "stages": stages}


def synth(stage: str, outdir: Path, **overrides):
    from aws_cdk.assertions import Template

    from app import build_app

    app, stack, config = build_app(stage_context(stage, **overrides), outdir=str(outdir), nag=False)
    return app, stack, config, Template.from_stack(stack)


@pytest.fixture(scope="session")
def synth_stage():
    """`synth(stage, outdir, **overrides)`, for tests that need a stage synthesized with other settings."""
    return synth


@pytest.fixture(scope="session")
def oncall() -> dict[str, str]:
    return {"email": ONCALL_EMAIL, "url": ONCALL_URL}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    return synth("dev", tmp_path_factory.mktemp("cdk.out"))


@pytest.fixture(scope="session")
def prod_synthesized(tmp_path_factory):
    return synth("prod", tmp_path_factory.mktemp("cdk.out.prod"))


@pytest.fixture(scope="session")
def prod_template_json(prod_synthesized):
    return prod_synthesized[3].to_json()


@pytest.fixture(scope="session")
def stack(synthesized):
    return synthesized[1]


@pytest.fixture(scope="session")
def template(synthesized):
    return synthesized[3]


@pytest.fixture(scope="session")
def template_json(template):
    return template.to_json()
