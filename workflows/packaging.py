"""Build the files the Glue jobs run: entry scripts and one zip of the job libraries.

Glue runs a single script file and imports the rest from `--extra-py-files` zips. The zip is built at
synth time, deterministically (fixed timestamps, sorted entries), so an unchanged source tree gives an
unchanged asset hash and no redeploy. This is a few lines of zipfile rather than a bundling tool because
CDK's Python bundling needs Docker, which this project must not require.
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

JOB_PACKAGES = ("etl", "quality")
ENTRY_SCRIPTS = {"etl_job.py": "etl/job.py", "dq_job.py": "quality/job.py", "vacuum_job.py": "etl/vacuum_job.py"}
LIBRARY_ZIP = "lake_jobs.zip"
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def build_job_bundle(repo_root: Path, out_dir: Path) -> Path:
    """Write the entry scripts and `lake_jobs.zip` into `out_dir` (replaced) and return it."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    for target, source in ENTRY_SCRIPTS.items():
        shutil.copyfile(repo_root / source, out_dir / target)
    with zipfile.ZipFile(out_dir / LIBRARY_ZIP, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for package in JOB_PACKAGES:
            for path in sorted((repo_root / package).rglob("*.py")):
                info = zipfile.ZipInfo(path.relative_to(repo_root).as_posix(), date_time=_FIXED_TIME)
                info.external_attr = 0o644 << 16
                archive.writestr(info, path.read_bytes(), compress_type=zipfile.ZIP_DEFLATED)
    return out_dir
