"""What one execution's ETL processes: its batch of raw objects and the published snapshots it merges onto.

An execution started by S3 events writes a batch manifest to staging and passes its URI as
`--manifest_uri`; the ETL then parses only the batch's objects and merges their rows onto each partition's
published snapshot. Without a manifest (`lake rerun`, or `--manifest_uri none`) every raw object of the
partitions is reprocessed and nothing is merged. The manifest (JSON):

    {"objects": ["orders/ingest_date=2026-11-24/a.csv", ...],          # keys in the raw bucket
     "published": [{"partition": "ingest_date=2026-11-24",
                    "location": "s3://<curated>/orders/ingest_date=2026-11-24/run_id=<run>/"},
                   {"partition": "ingest_date=2026-11-25", "location": ""}],   # not published yet (or null)
     "started_at": "2026-11-24T10:00:00.123Z"}                          # the execution's start (for the vacuum)

Why merging gives what a full reprocessing gives: the published snapshot holds the winners among the
objects of earlier batches. Its rows that came from an object of this batch are dropped first (the object
was re-delivered or overwritten: its new content is read now, as a full reprocessing would), then the
published rows and the batch's rows are de-duplicated with the same order as a full run. The order is a
total order that is the same for every row wherever it is read, so the winner of the union is the winner
of all objects. Objects deleted from the raw zone after they were published keep their rows until the
partition is re-run (`lake rerun` reprocesses what is there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from etl.readers import RawObject
from etl.storage import Storage, join_uri

FULL_REPROCESSING = ("", "none")


@dataclass(frozen=True)
class Batch:
    """The objects to read per partition, and the snapshot (a curated folder URI) each partition merges onto."""

    objects: dict[str, list[RawObject]]
    published: dict[str, str | None]
    replaced_sources: frozenset[str] = frozenset()  # rows from these objects are replaced, not merged
    missing_objects: list[str] = field(default_factory=list)  # in the manifest, no longer in the raw zone
    from_manifest: bool = False


def full_batch(listed: dict[str, list[RawObject]]) -> Batch:
    """Every listed object of the partitions, merged onto nothing."""
    return Batch(objects=listed, published=dict.fromkeys(listed))


def read_manifest(storage: Storage, manifest_uri: str, raw_uri: str, dataset: str, partitions: list[str],
                  listed: dict[str, list[RawObject]]) -> Batch:  # fmt: skip
    """The batch named by the manifest, restricted to objects still in the raw zone. A malformed manifest
    fails naming the manifest and the offending entry."""
    if manifest_uri.strip().lower() in FULL_REPROCESSING:
        return full_batch(listed)
    try:
        document = json.loads(storage.read_text(manifest_uri))
    except json.JSONDecodeError as error:
        raise ValueError(f"batch manifest {manifest_uri}: not JSON ({error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        raise ValueError(f"batch manifest {manifest_uri}: expected an object with an `objects` list of raw keys")
    keys: list[str] = []
    for index, key in enumerate(document["objects"]):
        partition = _partition_of(key, dataset)
        if partition is None:
            raise ValueError(f"batch manifest {manifest_uri}: objects[{index}] {key!r} is not a key under "
                             f"{dataset}/<partition>/")  # fmt: skip
        if partition not in partitions:
            raise ValueError(f"batch manifest {manifest_uri}: objects[{index}] {key!r} is in {partition}, "
                             f"which is not among the run's partitions {partitions}")  # fmt: skip
        keys.append(key)
    published = _published(document.get("published", []), manifest_uri, partitions)
    wanted = {join_uri(raw_uri, key) for key in keys}
    present = {o.uri for objs in listed.values() for o in objs}
    return Batch(
        objects={p: [o for o in listed[p] if o.uri in wanted] for p in partitions},
        published=published,
        replaced_sources=frozenset(wanted),
        missing_objects=sorted(wanted - present),
        from_manifest=True,
    )


def _partition_of(key: object, dataset: str) -> str | None:
    if not isinstance(key, str):
        return None
    parts = key.split("/")
    if len(parts) < 3 or parts[0] != dataset or "=" not in parts[1] or not parts[-1]:
        return None
    return parts[1]


def _published(entries: object, manifest_uri: str, partitions: list[str]) -> dict[str, str | None]:
    result: dict[str, str | None] = dict.fromkeys(partitions)
    if not isinstance(entries, list):
        raise ValueError(f"batch manifest {manifest_uri}: `published` must be a list of {{partition, location}}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("partition") not in result:
            raise ValueError(f"batch manifest {manifest_uri}: published[{index}] {entry!r} does not name one of "
                             f"the run's partitions {partitions}")  # fmt: skip
        location = entry.get("location") or None  # the state machine writes "" for "not published yet"
        if location is not None and not (isinstance(location, str) and location.startswith("s3://")):
            raise ValueError(f"batch manifest {manifest_uri}: published[{index}].location {location!r} is not "
                             "an s3:// URI or null")  # fmt: skip
        result[entry["partition"]] = location
    return result
