"""Stage configuration: one frozen, validated object per stage, read from `cdk.json` context.

`cdk.json` holds `context.stages.<name>`; `app.py` picks the stage with `-c stage=<name>`. Every value is
validated here, at synth time, and an error names the exact key (`stages.prod.batch_window_seconds`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.spec import DatasetSpec, DatasetSpecError, load_datasets

WORKER_TYPES = ("G.025X", "G.1X", "G.2X", "G.4X", "G.8X")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ACCOUNT = re.compile(r"^\d{12}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)  # fmt: skip
STAGE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,30}$")
# Documentation-only domains (RFC 2606) and fill-me-in tokens: a subscription to one of these never pages anyone.
PLACEHOLDER = re.compile(
    r"(@|\.|//)example\.(com|org|net)\b|\.(example|test|invalid)\b|REPLACE[_-]?ME|CHANGE[_-]?ME|YOUR[_-]", re.IGNORECASE
)
# How the state machine retries a job start that failed transiently (workflows/pipeline.py reads these):
# MaxAttempts retries, each waiting up to min(interval * 2^n, max delay) with full jitter.
JOB_START_RETRIES = 5
JOB_START_MAX_DELAY_SECONDS = 600
# SDK task retries (up to ~3 min each), publishing and notifications, on top of the waits counted below.
EXECUTION_MARGIN_MINUTES = 10


class ConfigError(ValueError):
    """The stage configuration in cdk.json is invalid; the message names the key."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        super().__init__(f"cdk.json context {key}: {problem}")


# Glue trigger schedules are cron expressions in UTC (AWS Glue Developer Guide, "Time-based schedules for jobs and
# crawlers"): six fields. Daily at 03:30 UTC, when few batches land in most time zones.
DEFAULT_VACUUM_SCHEDULE = "cron(30 3 * * ? *)"
CRON = re.compile(r"^cron\((\S+ ){5}\S+\)$")


@dataclass(frozen=True)
class StageConfig:
    """Everything that differs between stages. Defaults are the values a dev stage should use."""

    name: str
    datasets: tuple[DatasetSpec, ...]
    account: str | None = None
    region: str | None = None
    destroy_on_removal: bool = False
    oncall_emails: tuple[str, ...] = ()
    oncall_https_endpoints: tuple[str, ...] = ()
    batch_window_seconds: int = 60
    batch_size: int = 200
    crawler_poll_interval_seconds: int = 30
    crawler_max_polls: int = 60
    job_retry_interval_seconds: int = 30
    etl_worker_type: str = "G.1X"
    etl_number_of_workers: int = 2
    dq_worker_type: str = "G.1X"
    dq_number_of_workers: int = 2
    job_timeout_minutes: int = 60
    job_max_concurrent_runs: int = 3
    execution_timeout_minutes: int = 240
    athena_bytes_scanned_cutoff_mb: int = 10_240
    log_retention_days: int = 90
    lineage_url: str | None = None
    vacuum_schedule: str | None = DEFAULT_VACUUM_SCHEDULE
    # Curated data can be rebuilt from the raw zone (`lake rerun`), and the vacuum deletes superseded run folders
    # within a day: a week of noncurrent versions is the window to restore a folder deleted by mistake.
    curated_noncurrent_days: int = 7

    @property
    def database_prefix(self) -> str:
        """Glue database names of the stage: `<prefix>_raw`, `<prefix>_curated` (Athena-safe)."""
        return f"lake_{self.name.lower().replace('-', '_')}"

    @property
    def raw_database_name(self) -> str:
        return f"{self.database_prefix}_raw"

    @property
    def curated_database_name(self) -> str:
        return f"{self.database_prefix}_curated"

    @property
    def athena_workgroup_name(self) -> str:
        return f"lake-{self.name}"

    @property
    def worst_case_execution_minutes(self) -> float:
        """The longest an execution can legitimately run: every crawler poll, the longest job-start retry
        waits and the full timeout of both Glue jobs (ETL, then DQ), plus a margin for the other tasks."""
        polling = self.crawler_poll_interval_seconds * self.crawler_max_polls
        retry_waits = sum(
            min(self.job_retry_interval_seconds * 2**attempt, JOB_START_MAX_DELAY_SECONDS)
            for attempt in range(JOB_START_RETRIES)
        )
        return (polling + 2 * retry_waits) / 60 + 2 * self.job_timeout_minutes + EXECUTION_MARGIN_MINUTES

    def dataset(self, name: str) -> DatasetSpec:
        for spec in self.datasets:
            if spec.name == name:
                return spec
        raise KeyError(f"unknown dataset {name!r}; configured: {', '.join(d.name for d in self.datasets)}")


_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "batch_window_seconds": (0, 300),  # EventBridge Pipes MaximumBatchingWindowInSeconds
    # The Pipe's input template sends ~150 bytes plus the key per object (workflows/trigger.py): 200 objects with
    # 1,024-character keys stay under the 256 KiB StartExecution accepts.
    "batch_size": (1, 200),
    "crawler_poll_interval_seconds": (1, 600),
    "job_retry_interval_seconds": (1, 300),
    "crawler_max_polls": (1, 1000),
    "etl_number_of_workers": (2, 299),
    "dq_number_of_workers": (2, 299),
    "job_timeout_minutes": (1, 2880),
    "job_max_concurrent_runs": (1, 1000),
    "execution_timeout_minutes": (5, 525_600),
    "athena_bytes_scanned_cutoff_mb": (10, 10_000_000),
    "log_retention_days": (1, 3653),
    "curated_noncurrent_days": (1, 365),
}
_KNOWN_KEYS = {
    "account", "region", "removal_policy", "oncall_emails", "oncall_https_endpoints", "datasets",
    "etl_worker_type", "dq_worker_type", "lineage_url", "vacuum_schedule", *_INT_BOUNDS,
}  # fmt: skip


def _int(raw: Mapping[str, Any], key: str, prefix: str) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    low, high = _INT_BOUNDS[key]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{prefix}.{key}", f"must be an integer from {low} to {high}, got {value!r}")
    return value


def _subscriptions(
    raw: Mapping[str, Any], key: str, prefix: str, pattern: re.Pattern[str], what: str
) -> tuple[str, ...]:
    values = raw.get(key, [])
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"{prefix}.{key}", f"must be a list of {what}s")
    for index, value in enumerate(values):
        if not pattern.match(value):
            raise ConfigError(f"{prefix}.{key}[{index}]", f"{value!r} is not a valid {what}")
        if PLACEHOLDER.search(value):
            raise ConfigError(
                f"{prefix}.{key}[{index}]",
                f"{value!r} is a placeholder; put the real on-call {what} here (or remove it) before deploying",
            )
    return tuple(values)


def _worker(raw: Mapping[str, Any], key: str, prefix: str) -> str | None:
    if key not in raw:
        return None
    if raw[key] not in WORKER_TYPES:
        raise ConfigError(f"{prefix}.{key}", f"{raw[key]!r} is not one of {', '.join(WORKER_TYPES)}")
    return str(raw[key])


def _optional_match(raw: Mapping[str, Any], key: str, prefix: str, pattern: re.Pattern[str]) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(f"{prefix}.{key}", f"{value!r} is not a valid {key}")
    return value


def _schedule(value: Any, key: str) -> str | None:
    """A Glue cron expression, or None for "off" (no schedule; CDK context drops JSON nulls, so no null)."""
    if value == "off":
        return None
    if not (isinstance(value, str) and CRON.match(value)):
        raise ConfigError(key, f"must be a Glue cron expression such as {DEFAULT_VACUUM_SCHEDULE!r} (UTC), or "
                               f"\"off\" for no schedule; got {value!r}")  # fmt: skip
    return value


def _datasets(raw: Mapping[str, Any], prefix: str, datasets_root: Path) -> tuple[DatasetSpec, ...]:
    names = raw.get("datasets")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{prefix}.datasets", "must be a non-empty list of dataset folder names under datasets/")
    for index, name in enumerate(names):
        if not (datasets_root / name / "dataset.yaml").is_file():
            raise ConfigError(f"{prefix}.datasets[{index}]", f"no {datasets_root / name / 'dataset.yaml'}")
    if len(set(names)) != len(names):
        raise ConfigError(f"{prefix}.datasets", "lists a dataset twice")
    try:
        return load_datasets(datasets_root, names)
    except DatasetSpecError as error:
        raise ConfigError(f"{prefix}.datasets", str(error)) from error


def parse_stage(name: str, raw: Any, datasets_root: Path) -> StageConfig:
    """Validate `context.stages.<name>` and return its StageConfig."""
    prefix = f"stages.{name}"
    if not STAGE_NAME.match(name):
        raise ConfigError("stage", f"{name!r} must start with a letter and use letters, digits and '-'")
    if not isinstance(raw, Mapping):
        raise ConfigError(prefix, "must be an object")
    unknown = sorted(set(raw) - _KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{prefix}.{unknown[0]}", f"unknown key; known keys: {', '.join(sorted(_KNOWN_KEYS))}")
    removal = raw.get("removal_policy", "retain")
    if removal not in ("retain", "destroy"):
        raise ConfigError(f"{prefix}.removal_policy", f"must be 'retain' or 'destroy', got {removal!r}")
    lineage_url = raw.get("lineage_url")
    if lineage_url is not None and not (isinstance(lineage_url, str) and lineage_url.startswith("https://")):
        raise ConfigError(f"{prefix}.lineage_url", f"must be an https:// URL, got {lineage_url!r}")
    overrides: dict[str, Any] = {key: value for key in _INT_BOUNDS if (value := _int(raw, key, prefix)) is not None}
    if "vacuum_schedule" in raw:
        overrides["vacuum_schedule"] = _schedule(raw["vacuum_schedule"], f"{prefix}.vacuum_schedule")
    for key in ("etl_worker_type", "dq_worker_type"):
        if (worker := _worker(raw, key, prefix)) is not None:
            overrides[key] = worker
    config = StageConfig(
        name=name,
        datasets=_datasets(raw, prefix, datasets_root),
        account=_optional_match(raw, "account", prefix, ACCOUNT),
        region=_optional_match(raw, "region", prefix, REGION),
        destroy_on_removal=removal == "destroy",
        oncall_emails=_subscriptions(raw, "oncall_emails", prefix, EMAIL, "email address"),
        oncall_https_endpoints=_subscriptions(
            raw, "oncall_https_endpoints", prefix, re.compile(r"^https://\S+$"), "https:// URL"
        ),
        lineage_url=lineage_url,
        **overrides,
    )
    if config.account and not config.region:  # app.py pins the environment by its region: an account alone is dropped
        raise ConfigError(f"{prefix}.account", "needs `region` too: the stack's environment is pinned by its region")
    if config.log_retention_days not in LOG_RETENTION_DAYS:
        raise ConfigError(
            f"{prefix}.log_retention_days",
            f"{config.log_retention_days} is not a CloudWatch retention; use one of {LOG_RETENTION_DAYS}",
        )
    worst_case = config.worst_case_execution_minutes
    polling_minutes = config.crawler_poll_interval_seconds * config.crawler_max_polls / 60
    if config.execution_timeout_minutes < worst_case:
        raise ConfigError(
            f"{prefix}.execution_timeout_minutes",
            f"{config.execution_timeout_minutes} min is shorter than an execution's worst case of {worst_case:.0f} min "
            f"(crawler_poll_interval_seconds x crawler_max_polls = "
            f"{polling_minutes:.0f} min, 2 x job_timeout_minutes = "
            f"{2 * config.job_timeout_minutes} min, job-start retry waits at job_retry_interval_seconds, "
            f"{EXECUTION_MARGIN_MINUTES} min margin); raise it to at least {math.ceil(worst_case)} or lower those",
        )
    return config


def load_stage(context: Mapping[str, Any], datasets_root: Path, stage: str | None = None) -> StageConfig:
    """Pick `stage` (default: context `stage`) from context `stages` and validate it."""
    stages = context.get("stages")
    if not isinstance(stages, Mapping) or not stages:
        raise ConfigError("stages", "missing: define at least one stage under context.stages in cdk.json")
    name = stage or context.get("stage")
    if not name:
        raise ConfigError("stage", f"not set; pass -c stage=<name> with one of: {', '.join(stages)}")
    if name not in stages:
        raise ConfigError("stage", f"unknown stage {name!r}; defined stages: {', '.join(stages)}")
    return parse_stage(str(name), stages[name], datasets_root)
