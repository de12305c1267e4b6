"""Synthesize the stack once per test session and share it among the infrastructure tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory):
    from aws_cdk.assertions import Template

    from app import build_app

    app, stack, config = build_app(outdir=str(tmp_path_factory.mktemp("cdk.out")), nag=False)
    template = Template.from_stack(stack)
    return app, stack, config, template


@pytest.fixture(scope="session")
def stack(synthesized):
    return synthesized[1]


@pytest.fixture(scope="session")
def template(synthesized):
    return synthesized[3]


@pytest.fixture(scope="session")
def template_json(template):
    return template.to_json()
