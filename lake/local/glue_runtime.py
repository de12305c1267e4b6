"""Make moto's Glue `StartJobRun` really run the job (a local Python subprocess) or a simulated policy.

`GlueRuntime(root, endpoint_url).install()` hooks `moto.glue.models.FakeJob.start_job_run`: the run moto
creates (after its own MaxConcurrentRuns check) becomes a `LocalJobRun` whose `JobRunState` is the real
one (RUNNING -> SUCCEEDED/FAILED/TIMEOUT), with StartedOn/CompletedOn/ExecutionTime/ErrorMessage. The
script is `Command.ScriptLocation` resolved through LocalStorage(root); arguments are DefaultArguments
overridden by the run's Arguments (Glue semantics), plus `--lake_root`, `--JOB_NAME`, `--JOB_RUN_ID`.
Logs: `<root>/_logs/glue/<job>/<run id>.log`. After a run, `*.json` files it wrote under any bucket's
`runs/` prefix are mirrored into moto's S3, where a state machine's `aws-sdk:s3:getObject` reads them; and
before a run, objects a state machine wrote into moto's S3 under `manifests/` (`aws-sdk:s3:putObject`) are
copied into the lake, where the job reads them.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from etl.storage import LocalStorage, split_s3_uri

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR_PREFIX = "runs/"
IMPORT_PREFIX = "manifests/"

_install_lock = threading.Lock()
_start_lock = threading.Lock()
_active: GlueRuntime | None = None
_original_start_job_run: Any = None


@dataclass(frozen=True)
class SimulatedJob:
    """Stand-in for a job (no Spark): sleep `duration_s`, then end in `outcome` with `error`.

    `reject_starts` first StartJobRun calls raise ConcurrentRunsExceededException (throttling tests).
    """

    duration_s: float = 0.0
    outcome: str = "SUCCEEDED"
    error: str | None = None
    reject_starts: int = 0
    # Called with (run arguments, lake root) before a successful finish: what the real job would write.
    writes: Callable[[dict[str, str], Path], None] | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _last_exception_line(log_text: str) -> str | None:
    """The exception line of the last traceback in `log_text`, else its last non-empty line."""
    lines = log_text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if starts:
        for line in lines[starts[-1] + 1 :]:
            if line and not line[0].isspace():
                return line.strip()
    tail = [line.strip() for line in lines if line.strip()]
    return tail[-1] if tail else None


def _local_job_run_class() -> type:
    from moto.glue.models import FakeJobRun

    class LocalJobRun(FakeJobRun):
        """A FakeJobRun whose state is driven by the runtime, not by moto's state manager."""

        real_state = "RUNNING"
        error_message: str | None = None
        ended_on: datetime | None = None
        log_path: str | None = None

        @property
        def status(self) -> str:  # type: ignore[override]
            return self.real_state

        @status.setter
        def status(self, value: str) -> None:
            self.real_state = value

        def advance(self) -> None:
            return None

        def as_dict(self) -> dict[str, Any]:
            data = super().as_dict()
            end = self.ended_on or _now()
            data["ExecutionTime"] = int((end - self.started_on).total_seconds())
            data["LastModifiedOn"] = end
            data.pop("CompletedOn", None)
            if self.ended_on is not None:
                data["CompletedOn"] = self.ended_on
            if self.error_message:
                data["ErrorMessage"] = self.error_message
            if self.timeout:
                data["Timeout"] = self.timeout
            data["LogGroupName"] = self.log_path or ""
            return data

    return LocalJobRun


class GlueRuntime:
    """Runs Glue jobs started through the emulator. One is installed per process at a time."""

    def __init__(
        self,
        root: Path,
        endpoint_url: str | None = None,
        simulated: dict[str, SimulatedJob] | None = None,
        minute_s: float = 60.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = Path(root)
        self.storage = LocalStorage(self.root)
        self.endpoint_url = endpoint_url
        self.simulated = dict(simulated or {})
        self.minute_s = minute_s  # seconds per Timeout minute (tests shrink it)
        self.extra_env = dict(extra_env or {})
        self._rejections: dict[str, int] = {}
        self._threads: list[threading.Thread] = []
        self._run_class = _local_job_run_class()

    # -- hook ---------------------------------------------------------------------------------------
    def install(self) -> GlueRuntime:
        global _active, _original_start_job_run
        from moto.glue import models

        with _install_lock:
            if _original_start_job_run is None:
                _original_start_job_run = models.FakeJob.start_job_run
                models.FakeJob.start_job_run = _hooked_start_job_run
            _active = self
        return self

    def uninstall(self) -> None:
        global _active
        with _install_lock:
            if _active is self:
                _active = None

    def join(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- runs ---------------------------------------------------------------------------------------
    def start(self, job: Any, run: Any) -> None:
        self._import_from_s3()
        run.__class__ = self._run_class
        run.real_state = "RUNNING"
        run.started_on = _now()
        policy = self.simulated.get(job.name)
        target = self._simulate if policy else self._execute
        thread = threading.Thread(
            target=target, args=(job, run), name=f"glue-{job.name}-{run.job_run_id}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def reject_start(self, job_name: str) -> bool:
        policy = self.simulated.get(job_name)
        if policy is None:
            return False
        seen = self._rejections.get(job_name, 0)
        self._rejections[job_name] = seen + 1
        return seen < policy.reject_starts

    def _timeout_s(self, run: Any, job: Any) -> float | None:
        minutes = run.timeout or job.timeout
        return float(minutes) * self.minute_s if minutes else None

    def _finish(self, run: Any, state: str, error: str | None = None) -> None:
        run.error_message = error
        run.ended_on = _now()
        run.real_state = state

    def _simulate(self, job: Any, run: Any) -> None:
        policy = self.simulated[job.name]
        limit = self._timeout_s(run, job)
        if limit is not None and limit < policy.duration_s:
            time.sleep(limit)
            self._finish(run, "TIMEOUT", f"Job run timed out after {run.timeout or job.timeout} minutes")
            return
        started = time.time()
        time.sleep(policy.duration_s)
        if policy.writes is not None and policy.outcome == "SUCCEEDED":
            policy.writes(dict(run.arguments or {}), self.root)
            self._mirror_json(started)
        self._finish(run, policy.outcome, policy.error)

    def command_for(self, job: Any, run: Any) -> list[str]:
        script_uri = job.command["ScriptLocation"]
        script = self.storage.local_path(script_uri)
        args = dict(run.arguments or {})  # moto merged Default <- run <- NonOverridable arguments
        args.update({"--lake_root": str(self.root), "--JOB_NAME": job.name, "--JOB_RUN_ID": run.job_run_id})
        argv = [sys.executable, str(script)]
        for key, value in args.items():
            argv.extend([key if key.startswith("--") else f"--{key}", str(value)])
        return argv

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(REPO_ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        if self.endpoint_url:
            env.update(
                AWS_ENDPOINT_URL=self.endpoint_url,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
                AWS_REGION="us-east-1",
            )
        env.update(self.extra_env)
        return env

    def log_path(self, job_name: str, run_id: str) -> Path:
        return self.root / "_logs" / "glue" / job_name / f"{run_id}.log"

    def _execute(self, job: Any, run: Any) -> None:
        log_path = self.log_path(job.name, run.job_run_id)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        run.log_path = str(log_path)
        started = time.time()
        try:
            argv = self.command_for(job, run)
            if not Path(argv[1]).is_file():
                raise FileNotFoundError(f"script {job.command['ScriptLocation']} not found at {argv[1]}")
            with log_path.open("w", encoding="utf-8") as log:
                process = subprocess.Popen(
                    argv, stdout=log, stderr=subprocess.STDOUT, env=self.environment(), cwd=str(REPO_ROOT)
                )
                try:
                    code = process.wait(timeout=self._timeout_s(run, job))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    self._finish(
                        run, "TIMEOUT", f"Job run timed out after {run.timeout or job.timeout} minutes"
                    )
                    return
            self._mirror_json(started)
            if code == 0:
                self._finish(run, "SUCCEEDED")
            else:
                text = log_path.read_text(encoding="utf-8", errors="replace")
                self._finish(run, "FAILED", _last_exception_line(text) or f"exit code {code}")
        except Exception as exc:  # the run fails, the emulator keeps serving
            self._finish(run, "FAILED", f"{type(exc).__name__}: {exc}")

    def _mirror_json(self, since: float) -> None:
        """Copy `*.json` written under `<bucket>/runs/` since `since` into moto's in-memory S3."""
        from moto.s3.models import s3_backends

        backend = s3_backends["123456789012"]["aws"]
        for bucket_name in list(backend.buckets):
            base = self.root / bucket_name / MIRROR_PREFIX
            if not base.is_dir():
                continue
            for path in base.rglob("*.json"):
                if path.stat().st_mtime >= since - 1:
                    key = path.relative_to(self.root / bucket_name).as_posix()
                    backend.put_object(bucket_name, key, path.read_bytes())


    def _import_from_s3(self) -> None:
        """Copy what state machines wrote into moto's S3 under `manifests/` into the lake folder."""
        from moto.s3.models import s3_backends

        backend = s3_backends["123456789012"]["aws"]
        for bucket_name, bucket in list(backend.buckets.items()):
            for key in [k for k in list(bucket.keys.keys()) if k.startswith(IMPORT_PREFIX)]:
                path = self.root / bucket_name / key
                data = bucket.keys[key].value
                if not path.is_file() or path.read_bytes() != data:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)


def mirror_file(root: Path, uri: str) -> None:
    """Copy one lake file (`s3://bucket/key` under `root`) into moto's S3."""
    from moto.s3.models import s3_backends

    bucket, key = split_s3_uri(uri)
    s3_backends["123456789012"]["aws"].put_object(
        bucket, key, LocalStorage(Path(root)).local_path(uri).read_bytes()
    )


# Patched onto moto.glue.models.FakeJob (same signature as moto 5.2.5's method).
def _hooked_start_job_run(
    self: Any,
    allocated_capacity: int | None,
    max_capacity: float | None,
    timeout: int | None,
    worker_type: str | None,
    security_configuration: str | None,
    number_of_workers: int | None,
    notification_property: dict[str, int] | None,
    previous_run_id: str | None,
    arguments: dict[str, str] | None,
) -> str:
    from moto.glue.exceptions import ConcurrentRunsExceededException

    runtime = _active
    kwargs = {
        "allocated_capacity": allocated_capacity,
        "max_capacity": max_capacity,
        "timeout": timeout,
        "worker_type": worker_type,
        "security_configuration": security_configuration,
        "number_of_workers": number_of_workers,
        "notification_property": notification_property,
        "previous_run_id": previous_run_id,
        "arguments": arguments,
    }
    if runtime is None:
        return _original_start_job_run(self, **kwargs)
    with _start_lock:  # moto's MaxConcurrentRuns check is not atomic under the threaded server
        if runtime.reject_start(self.name):
            raise ConcurrentRunsExceededException(f"Job with name {self.name} already running (simulated)")
        run_id = _original_start_job_run(self, **kwargs)
        run = next(r for r in self.job_runs if r.job_run_id == run_id)
        runtime.start(self, run)
    return run_id
