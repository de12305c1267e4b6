"""Vacuum: delete the curated run folders that no catalog partition points at any more (`lake vacuum`, and the
scheduled vacuum job, etl/vacuum_job.py).

Every execution writes a new run folder per partition, and a batch copies the published files it does not touch
into it (etl/snapshot.py), so a partition fed 24 times a day is stored about 12 times over by evening. Readers
only see the folder its catalog partition points at; the other folders are superseded snapshots (kept while
queries planned against them may still run), candidates that failed data quality (kept for investigation), or
the candidate of an execution still running or that may be redriven. A folder no partition points at is deleted
- once it is known to have been superseded more than `QUERY_GRACE` ago (`superseded_times`, from the batch
  manifests or the partition's `lake_published_at`), unless an execution that merges onto it may still read it;
- otherwise once its newest object is older than `keep_days` (at least `min_keep_days`), unless an execution
  whose manifest was written within `keep_days` merges onto it and may still read it (a folder written long ago
  may have been superseded only yesterday, while an execution that read it can still be redriven at its ETL), or
  it may have been superseded within `QUERY_GRACE` (a manifest written within `keep_days` names it, or its
  partition was republished within `QUERY_GRACE`).
An execution may still read the folder it merges onto (its batch manifest names the folder as the partition's
published snapshot) until it has published its own: only then is it done with it (`pending_merge_bases`). A
folder that is not a run folder of the dataset's layout is never touched.

The curated bucket is versioned, so a deleted object stays restorable as a noncurrent version until the bucket's
lifecycle rule expires it (`curated_noncurrent_days`). A deleted folder's footer index and DQ statistics (staging)
go with it.
"""

from __future__ import annotations

import json
import math
import re
from bisect import bisect_left
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from etl.snapshot import footer_index_uri
from etl.spec import DatasetSpec
from etl.storage import Storage, StoredObject, join_uri
from etl.transforms import RUN_FOLDER
from quality.job import stats_uri


class VacuumError(ValueError):
    """A vacuum that deleted nothing, and why."""


@dataclass(frozen=True)
class RunFolder:
    partition: str  # key=value
    uri: str  # s3://<curated>/<dataset>/<key>=<value>/run_id=<execution>
    objects: tuple[StoredObject, ...]

    @property
    def newest(self) -> datetime:
        return max(o.modified for o in self.objects)

    @property
    def size(self) -> int:
        return sum(o.size for o in self.objects)


@dataclass
class VacuumPlan:
    delete: list[RunFolder] = field(default_factory=list)
    published: list[RunFolder] = field(default_factory=list)
    recent: list[RunFolder] = field(default_factory=list)  # not published, but younger than keep_days
    merge_bases: list[RunFolder] = field(default_factory=list)  # old, but a recent execution merges onto it
    superseded: list[RunFolder] = field(default_factory=list)  # deleted before their keep: superseded long enough
    grace: list[RunFolder] = field(default_factory=list)  # old, but maybe superseded within QUERY_GRACE

    @property
    def bytes_freed(self) -> int:
        return sum(f.size for f in self.delete)


@dataclass(frozen=True)
class Published:
    """A catalog partition: the folder it points at, and when the pipeline pointed it there (its
    `lake_published_at` parameter, workflows/pipeline.py; None on partitions published before it was recorded).
    Every other folder of the partition had been superseded by then."""

    location: str  # without the trailing slash
    at: datetime | None


def published_partitions(glue: Any, database: str, table: str, partition_key: str) -> dict[str, Published]:
    """Partition (`key=value`) -> what it publishes, for every partition of the table."""
    published: dict[str, Published] = {}
    try:
        for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
            for partition in page["Partitions"]:
                at = (partition.get("Parameters") or {}).get(PUBLISHED_AT)
                try:
                    at = datetime.fromisoformat(at) if at else None
                except ValueError as error:
                    raise VacuumError(f"partition {partition['Values']} of {database}.{table}: {PUBLISHED_AT} "
                                      f"{at!r} is not an ISO 8601 time; nothing was deleted") from error  # fmt: skip
                published[f"{partition_key}={partition['Values'][0]}"] = Published(
                    partition["StorageDescriptor"]["Location"].rstrip("/"), at
                )
    except glue.exceptions.EntityNotFoundException as error:
        raise VacuumError(f"table {database}.{table} does not exist: nothing was ever published, nothing to "
                          f"vacuum (deploy, or run the dataset once)") from error  # fmt: skip
    return published


def run_folders(storage: Storage, curated_uri: str, spec: DatasetSpec) -> list[RunFolder]:
    """The dataset's run folders (`<key>=<value>/run_id=<execution>/`) with their objects; anything else under the
    dataset's prefix is left out."""
    prefix = join_uri(curated_uri, spec.name) + "/"
    layout = re.compile(rf"^({re.escape(spec.partition_key)}=[^/]+)/({RUN_FOLDER}=[^/]+)/")
    grouped: dict[tuple[str, str], list[StoredObject]] = {}
    for stored in storage.list_objects(prefix):
        if match := layout.match(stored.uri[len(prefix) :]):
            grouped.setdefault((match[1], match[2]), []).append(stored)
    return [RunFolder(partition, join_uri(prefix, partition, run), tuple(objects))
            for (partition, run), objects in sorted(grouped.items())]  # fmt: skip


# Step Functions redrives a failed execution up to 14 days after it ended
# (https://docs.aws.amazon.com/step-functions/latest/apireference/API_RedriveExecution.html).
REDRIVE_WINDOW_DAYS = 14


def min_keep_days(execution_timeout_minutes: int) -> int:
    """The shortest keep the pipeline can live with. An execution reads the folder it merges onto until it ends and
    publishes its own candidate only at its end, and a failed one can be redriven for 14 days and then run again for
    up to its timeout: a redrive that resumes at the publish would point the partition at a deleted folder."""
    return REDRIVE_WINDOW_DAYS + max(1, math.ceil(execution_timeout_minutes / (24 * 60)))


# A folder superseded in the catalog is deleted only this long after: a query planned against it may still be
# reading it. Athena cancels a DML query after 30 minutes by default, after at most 240 on request
# (https://docs.aws.amazon.com/athena/latest/ug/service-limits.html); the rest is margin for queueing.
QUERY_GRACE = timedelta(hours=6)
PUBLISHED_AT = "lake_published_at"  # the partition parameter the publish step sets ($$.State.EnteredTime)
S3_TIME_RESOLUTION = timedelta(seconds=1)  # S3 lists LastModified in whole seconds; start times have milliseconds


@dataclass(frozen=True)
class BatchManifest:
    """What the vacuum needs of an execution's batch manifest (etl/batch.py)."""

    execution: str  # its name: the `run_id` of the folders it writes
    written: datetime  # last modified: after the execution looked the published snapshots up
    started: datetime | None  # when the execution started, before it looked them up (absent in older manifests)
    bases: dict[str, str]  # partition -> the published folder it merges onto (without the trailing slash)


def read_manifests(storage: Storage, staging_uri: str, spec: DatasetSpec, since: datetime) -> list[BatchManifest]:
    """The batch manifests (`manifests/<dataset>/<execution>.json`, written at the start; see etl/batch.py) of the
    executions that wrote them after `since`. An unreadable manifest fails the vacuum naming it rather than risk
    deleting what it names."""
    manifests = []
    for stored in storage.list_objects(join_uri(staging_uri, "manifests", spec.name) + "/"):
        if stored.modified <= since or not stored.uri.endswith(".json"):
            continue
        try:
            document = json.loads(storage.read_text(stored.uri))
            entries = document.get("published") or []
            bases = {e["partition"]: e["location"].rstrip("/") for e in entries if e.get("location")}
            started = document.get("started_at")
            started = datetime.fromisoformat(started) if started is not None else None
        except (ValueError, AttributeError, TypeError, KeyError) as error:
            raise VacuumError(
                f"batch manifest {stored.uri} is not readable ({error}): cannot tell which folder "
                f"its execution merges onto, so nothing was deleted; fix or remove it"
            ) from error
        manifests.append(BatchManifest(PurePosixPath(stored.uri).stem, stored.modified, started, bases))
    return sorted(manifests, key=lambda m: m.written)


def named_folders(manifests: list[BatchManifest]) -> set[str]:
    """The folders the manifests name as a partition's published snapshot: each was published when named."""
    return {location for m in manifests for location in m.bases.values()}


def pending_merge_bases(manifests: list[BatchManifest], published: Collection[str], curated_uri: str,
                        spec: DatasetSpec) -> set[str]:  # fmt: skip
    """The folders some execution merges onto and may still read: it has not published its own folder of that
    partition yet (it may be running, or fail and be redriven at its ETL). An execution has published its folder if a
    partition points at it now, or if another execution's manifest names it (that execution looked it up as the
    published snapshot). One that failed data quality never publishes: its merge bases wait out the keep."""
    named = set(published) | named_folders(manifests)
    return {
        base
        for m in manifests
        for partition, base in m.bases.items()
        if join_uri(curated_uri, spec.name, partition, f"{RUN_FOLDER}={m.execution}") not in named
    }


def superseded_times(manifests: list[BatchManifest], published: dict[str, Published]) -> dict[str, datetime]:
    """Folder -> a time by which no partition pointed at it any more, for the folders a manifest names (so they
    were published once) that are not published now.

    Two proofs, the earlier wins. The partition's `lake_published_at`: the folder it points at now replaced every
    other one by then. Or two manifests: execution A's names folder F as the published snapshot of a partition;
    execution B, started after A's manifest was written, names another folder G. A looked F up before writing its
    manifest and B looked G up after it started, so F was replaced in between, before B's manifest was written
    (plus a second: S3 lists times in whole seconds). F cannot come back: a batch run publishes only over the
    snapshot it merged onto, a manual re-run only over an older snapshot, so a folder is published once."""
    current = {p.location for p in published.values()}
    last_named: dict[tuple[str, str], datetime] = {}
    naming: dict[str, list[tuple[datetime, datetime, str]]] = {}  # partition -> (started, written, folder)
    for m in manifests:
        for partition, base in m.bases.items():
            last_named[partition, base] = max(m.written, last_named.get((partition, base), m.written))
            if m.started is not None:
                naming.setdefault(partition, []).append((m.started, m.written + S3_TIME_RESOLUTION, base))
    # Per partition, the earliest write among the manifests started at or after each position, for the best two
    # folders: a query for folder F takes the best that names another folder. One pass instead of one per folder
    # (21,600 manifests in a 15-day keep at bench/burst.py's target).
    earliest: dict[str, tuple[list[datetime], list[list[tuple[datetime, str]]]]] = {}
    for partition, entries in naming.items():
        entries.sort(key=lambda e: e[0])
        best: list[tuple[datetime, str]] = []
        suffix: list[list[tuple[datetime, str]]] = []
        for _, written, folder in reversed(entries):
            merged = {f: w for w, f in best}
            merged[folder] = min(written, merged.get(folder, written))
            best = sorted((w, f) for f, w in merged.items())[:2]
            suffix.append(best)
        earliest[partition] = ([e[0] for e in entries], suffix[::-1])
    times: dict[str, datetime] = {}
    for (partition, folder), named in last_named.items():
        if folder in current:
            continue
        later = []
        if partition in earliest:
            starts, suffix = earliest[partition]
            index = bisect_left(starts, named + S3_TIME_RESOLUTION)
            if index < len(starts):
                later += [w for w, f in suffix[index] if f != folder][:1]
        if (at := published[partition].at if partition in published else None) is not None:
            later.append(at)
        if later:
            times[folder] = min(later)
    return times


def plan_vacuum(folders: list[RunFolder], published: dict[str, Published], now: datetime, keep_days: float,
                minimum_days: int, bases: Collection[str] = (), superseded: dict[str, datetime] | None = None,
                named: Collection[str] = ()) -> VacuumPlan:  # fmt: skip
    """Sort the folders: published; merged onto by an execution that may still read them (`bases`); proven
    superseded more than QUERY_GRACE ago (`superseded`: deleted); younger than the keep; superseded less than
    QUERY_GRACE ago, or maybe (`named` by a manifest within the keep, or of a partition published within the
    grace: queries may still read them); the rest deleted."""
    if keep_days < minimum_days:
        raise VacuumError(f"keep of {keep_days:g} days: keep at least {minimum_days} days, the redrive window "
                          f"({REDRIVE_WINDOW_DAYS} days) plus the stage's longest execution "
                          f"(execution_timeout_minutes): an execution running or redriven may still read a folder "
                          f"superseded since it started, or not have published its own yet")  # fmt: skip
    plan = VacuumPlan()
    cutoff, graced = now - timedelta(days=keep_days), now - QUERY_GRACE
    superseded = superseded or {}
    current = {p.location for p in published.values()}
    for folder in folders:
        uri = folder.uri.rstrip("/")
        republished = published.get(folder.partition, Published("", None)).at
        if uri in current:
            plan.published.append(folder)
        elif uri in bases:
            (plan.recent if folder.newest > cutoff else plan.merge_bases).append(folder)
        elif uri in superseded and superseded[uri] <= graced:
            plan.superseded.append(folder)
            plan.delete.append(folder)
        elif folder.newest > cutoff:
            plan.recent.append(folder)
        elif uri in named or (republished is not None and republished > graced):
            plan.grace.append(folder)
        else:
            plan.delete.append(folder)
    return plan


def vacuum(storage: Storage, glue: Any, database: str, spec: DatasetSpec, curated_uri: str, staging_uri: str,
           now: datetime, keep_days: float, minimum_days: int, dry_run: bool = False) -> VacuumPlan:  # fmt: skip
    """Plan, and unless `dry_run` delete, the dataset's run folders no partition publishes. The pipeline only
    ever publishes a folder its own execution just wrote, so a folder older than `minimum_days` that no partition
    points at now never will, nor will a folder that was published once; and only an execution that started within
    the keep can still read one."""
    published = published_partitions(glue, database, spec.curated_table, spec.partition_key)
    manifests = read_manifests(storage, staging_uri, spec, now - timedelta(days=keep_days))
    bases = pending_merge_bases(manifests, {p.location for p in published.values()}, curated_uri, spec)
    named = named_folders(manifests)
    plan = plan_vacuum(run_folders(storage, curated_uri, spec), published, now, keep_days, minimum_days, bases,
                       superseded_times(manifests, published), named)  # fmt: skip
    if dry_run:
        return plan
    for folder in plan.delete:
        storage.delete([o.uri for o in folder.objects])
        staging = [footer_index_uri(staging_uri, spec, folder.partition, folder.uri),
                   stats_uri(staging_uri, spec.name, folder.partition, folder.uri)]  # fmt: skip
        storage.delete(staging)  # either may be missing (a folder never indexed or judged)
    return plan


def folder_name(folder: RunFolder) -> str:
    return f"{folder.partition}/{PurePosixPath(folder.uri).name}"


def describe(plan: VacuumPlan, dataset: str, keep_days: float, dry_run: bool) -> list[str]:
    """What a vacuum deleted (or would) and kept, a line per deleted folder and a total: `lake vacuum`'s output and
    the vacuum job's log."""
    verb = "would delete" if dry_run else "deleted"
    superseded = {f.uri for f in plan.superseded}
    lines = [f"{verb} {folder_name(f)} ({len(f.objects)} objects, {f.size / 2**20:.1f} MiB, last written "
             f"{f.newest:%Y-%m-%d %H:%M} UTC{', superseded' if f.uri in superseded else ''})"
             for f in plan.delete]  # fmt: skip
    grace_hours = QUERY_GRACE.total_seconds() / 3600
    kept = (
        f"kept {len(plan.published)} published, {len(plan.recent)} younger than {keep_days:g} days, "
        f"{len(plan.merge_bases)} that an execution may still merge onto and {len(plan.grace)} maybe superseded "
        f"less than {grace_hours:g} hours ago"
    )
    early = (
        f", {len(plan.superseded)} of them superseded more than {grace_hours:g} hours ago" if plan.superseded else ""
    )
    return [
        *lines,
        f"{dataset}: {verb} {len(plan.delete)} run folders ({plan.bytes_freed / 2**20:.1f} MiB{early}); {kept}",
    ]
