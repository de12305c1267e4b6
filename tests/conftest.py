"""Shared fixtures: one local Spark session for the whole test session, the repo root, datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def spark():
    from etl.session import build_spark

    session = build_spark("lake-tests")
    yield session
    session.stop()
