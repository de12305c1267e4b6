"""Glue data-quality job: evaluate a dataset's rules.dqdl on one run's candidate curated Parquet.

    python -m quality.job --dataset orders --partitions ingest_date=2026-11-24,ingest_date=2026-11-25 \
        --run_id R --curated_uri s3://curated --staging_uri s3://staging \
        --datasets_uri s3://artifacts/datasets [--lake_root /tmp/lake] [--lineage_url http://...]

Reads   {datasets_uri}/{dataset}/dataset.yaml and rules.dqdl,
        {curated_uri}/{dataset}/{partition}/run_id={run_id}/ for every partition (one report for all),
        {staging_uri}/runs/{dataset}/{run_id}/etl_metrics.json when present (copied into the result).
Writes  {staging_uri}/runs/{dataset}/{run_id}/dq_result.json: dataset, run_id, partitions, outcome
        ("Passed" | "Failed"), rules_passed, rules_failed, row_count, rules [{rule, outcome, metrics,
        reason}], etl; and OpenLineage events under {staging_uri}/lineage/{dataset}/{run_id}/.
        {staging_uri}/runs/{dataset}/{run_id}/dq_summary.json: what the state machine reads (see
        `compact_summary`): counts, partition lists, the first failed rules and quarantined objects, and
        the URI of dq_result.json. Its size does not grow with rules x partitions.

Exit status 0 whenever the rules were evaluated, even if some failed (the state machine reads `outcome`);
non-zero with a message when they cannot be (missing candidate data, invalid rules or dataset file).
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from etl.readers import parse_partitions
from etl.spec import RULES_FILE, DatasetSpecError, load_deployed_dataset
from etl.storage import Storage, join_uri, read_json, write_json
from quality.dqdl import DqdlSyntaxError, Rule, parse_dqdl
from quality.evaluate import STATS_VERSION, Carried, DqReport, FolderStats, aggregate_rule_texts, evaluate

REQUIRED_ARGS = ["dataset", "partitions", "run_id", "curated_uri", "staging_uri", "datasets_uri"]
DQ_SUMMARY_FILE = "dq_summary.json"
SUMMARY_SAMPLE = 10  # failed rules and quarantined objects listed in the summary (all are in the details)
SUMMARY_TEXT_CHARS = 300
OPTIONAL_ARGS = ["lake_root", "lineage_url"]
RUN_FOLDER = "run_id"


class DqJobError(RuntimeError):
    """The rules cannot be evaluated (as opposed to: they were evaluated and failed)."""


def run_folder(staging_uri: str, dataset: str, run_id: str) -> str:
    return join_uri(staging_uri, "runs", dataset, run_id)


def result_uri(staging_uri: str, dataset: str, run_id: str) -> str:
    return join_uri(run_folder(staging_uri, dataset, run_id), "dq_result.json")


def summary_uri(staging_uri: str, dataset: str, run_id: str) -> str:
    return join_uri(run_folder(staging_uri, dataset, run_id), DQ_SUMMARY_FILE)


def _clip(text: str) -> str:
    return text if len(text) <= SUMMARY_TEXT_CHARS else text[: SUMMARY_TEXT_CHARS - 1] + "…"


def compact_summary(document: dict[str, Any], details_uri: str) -> dict[str, Any]:
    """The part of a dq_result document the state machine needs, bounded in size.

    Step Functions limits every state's input and output to 256 KiB; the full result has one entry per rule
    and partition. The summary keeps the counts and partition lists (bounded by the trigger's batch size),
    the first SUMMARY_SAMPLE failed rules and quarantined objects (each clipped), and where the rest is.
    """
    etl = document.get("etl") or {}
    quarantined = etl.get("quarantined_objects") or []
    failed_rules = [r for r in document["rules"] if r.get("outcome") != "Passed"]
    return {
        "dataset": document["dataset"],
        "run_id": document["run_id"],
        **{key: document[key] for key in ("outcome", "partitions_passed", "partitions_failed", "passed_count",
                                          "failed_count", "rules_passed", "rules_failed", "row_count")},
        "failed_rules": [_clip(f"{r.get('partition')}: {r['rule']}: {r.get('reason') or ''}".rstrip(": "))
                         for r in failed_rules[:SUMMARY_SAMPLE]],
        "etl": {
            **{key: int(etl.get(key, 0)) for key in ("input_rows", "output_rows", "rejected_rows",
                                                       "duplicates_removed")},
            "ingested_at": etl.get("ingested_at", ""),
            "quarantined_count": len(quarantined),
            "quarantined": [_clip(f"{q['object']}: {q['reason']}") for q in quarantined[:SUMMARY_SAMPLE]],
        },
        "details": details_uri,
    }  # fmt: skip


def candidate_uri(curated_uri: str, dataset: str, partition: str, run_id: str) -> str:
    return join_uri(curated_uri, dataset, partition, f"{RUN_FOLDER}={run_id}")


def load_rules(storage: Storage, datasets_uri: str, dataset: str) -> tuple[Rule, ...]:
    """Parse `{datasets_uri}/{dataset}/rules.dqdl`; DqdlSyntaxError names the file, line and column."""
    uri = join_uri(datasets_uri, dataset, RULES_FILE)
    if not storage.exists(uri):
        raise DqJobError(f"no rules file for dataset {dataset!r}: {uri} does not exist")
    return parse_dqdl(storage.read_text(uri), source=uri)


def read_candidate(spark: Any, storage: Storage, uris: list[str]) -> Any:
    """One DataFrame over the candidate folders (checked to hold Parquet files by `run`)."""
    return spark.read.parquet(*[storage.spark_path(u) for u in uris])


def stats_uri(staging_uri: str, dataset: str, partition: str, folder: str) -> str:
    """Where the DQ statistics of a judged curated folder live (`quality.evaluate.FolderStats`), named like the
    folder's footer index (etl/snapshot.py) after its `run_id=` segment."""
    return join_uri(staging_uri, "dq_stats", dataset, partition, PurePosixPath(folder.rstrip("/")).name, "stats.json")


def write_stats(storage: Storage, staging_uri: str, dataset: str, partition: str, folder: str,
                stats: FolderStats) -> None:  # fmt: skip
    document = {"version": STATS_VERSION, "folder": folder.rstrip("/"), **stats.to_json()}
    write_json(storage, stats_uri(staging_uri, dataset, partition, folder), document)


def read_stats(storage: Storage, staging_uri: str, dataset: str, partition: str, folder: str) -> FolderStats | None:
    """The kept stats of a judged folder, or None when there are none, or they were written by another version or
    for another folder, or are damaged: then the folder's files are judged from their rows."""
    uri = stats_uri(staging_uri, dataset, partition, folder)
    if not storage.exists(uri):
        return None
    try:
        document = read_json(storage, uri)
        if document.get("version") != STATS_VERSION or document.get("folder") != folder.rstrip("/"):
            return None
        return FolderStats.from_json(document)
    except (ValueError, KeyError, TypeError, AttributeError):  # not JSON, not UTF-8, or not a stats document
        return None


def _merged_onto(etl_metrics: dict[str, Any] | None, partition: str) -> str | None:
    """The published folder the ETL merged this partition's batch onto (its untouched files were copied)."""
    return ((etl_metrics or {}).get("per_partition") or {}).get(partition, {}).get("merged_onto")


def evaluate_folder(spark: Any, storage: Storage, folder: str, parquet_files: list[str], rules: tuple[Rule, ...],
                    previous: FolderStats | None) -> DqReport:  # fmt: skip
    """Evaluate the rules on a candidate folder. Its files that are copies of files of the `previous` folder (an
    earlier run judged it and kept their partial aggregates: same name, since the ETL keeps the UUID-named part
    files' names when it copies them) are not scanned by the aggregate rules; see quality/evaluate.py."""
    from pyspark.sql import functions as F

    files = {PurePosixPath(k).name: k for k in parquet_files}
    whole = read_candidate(spark, storage, [folder])
    texts = aggregate_rule_texts(rules)
    carried = sorted(name for name in files if previous.covers(name, texts)) if previous else []
    if not carried:
        return replace(evaluate(whole, rules, spark, fresh=whole), files=len(files))

    def rows(names: list[str]) -> Any:
        if not names:
            return whole.where(F.lit(False))
        return spark.read.schema(whole.schema).parquet(*[storage.spark_path(files[n]) for n in names])

    judged = Carried(rows(carried), tuple(carried), previous)
    report = evaluate(whole, rules, spark, fresh=rows([n for n in files if n not in carried]), carried=judged)
    return replace(report, files=len(files), files_from_stats=len(carried))


def run(args: dict[str, str], storage: Storage, spark: Any) -> dict[str, Any]:
    """Evaluate the rules on each partition's candidate data; returns (and writes) the dq_result document.

    Partitions are judged separately, so the state machine publishes the ones that passed and quarantines
    only the ones that failed.
    """
    dataset, run_id = args["dataset"], args["run_id"]
    spec = load_deployed_dataset(storage, args["datasets_uri"], dataset)
    rules = load_rules(storage, args["datasets_uri"], dataset)
    partitions = parse_partitions(args["partitions"], spec.partition_key)
    inputs = {p: candidate_uri(args["curated_uri"], dataset, p, run_id) for p in partitions}
    output = result_uri(args["staging_uri"], dataset, run_id)
    lineage = _emit_lineage(args, storage, list(inputs.values()), output)
    try:
        listed = {p: [k for k in storage.list_keys(u + "/") if k.endswith(".parquet")] for p, u in inputs.items()}
        missing = [inputs[p] for p, files in listed.items() if not files]
        if missing:
            raise DqJobError(f"no candidate data (Parquet files) at {', '.join(missing)}; did the ETL job run?")
        metrics_uri = join_uri(run_folder(args["staging_uri"], dataset, run_id), "etl_metrics.json")
        etl_metrics = read_json(storage, metrics_uri) if storage.exists(metrics_uri) else None
        reports = {}
        for partition, uri in inputs.items():
            judged = _merged_onto(etl_metrics, partition)
            previous = read_stats(storage, args["staging_uri"], dataset, partition, judged) if judged else None
            reports[partition] = evaluate_folder(spark, storage, uri, listed[partition], rules, previous)
            write_stats(storage, args["staging_uri"], dataset, partition, uri, reports[partition].stats)
        document = {
            "dataset": dataset,
            "run_id": run_id,
            "partitions": partitions,
            **summarise(reports),
            "etl": etl_metrics,
        }
        write_json(storage, output, document)
        write_json(storage, summary_uri(args["staging_uri"], dataset, run_id), compact_summary(document, output))
    except BaseException as error:
        lineage.fail(error)
        raise
    lineage.complete(reports, inputs)
    return document


def summarise(reports: dict[str, DqReport]) -> dict[str, Any]:
    """The outcome per partition and overall (Passed only when every partition passed)."""
    passed = [p for p, r in reports.items() if r.outcome == "Passed"]
    failed = [p for p, r in reports.items() if r.outcome != "Passed"]
    return {
        "outcome": "Passed" if not failed else "Failed",
        "partitions_passed": passed,
        "partitions_failed": failed,
        "passed_count": len(passed),
        "failed_count": len(failed),
        "rules_passed": sum(r.rules_passed for r in reports.values()),
        "rules_failed": sum(r.rules_failed for r in reports.values()),
        "row_count": sum(r.row_count for r in reports.values()),
        "by_partition": {
            p: {"outcome": r.outcome, "rules_passed": r.rules_passed, "rules_failed": r.rules_failed,
                "row_count": r.row_count, "files": r.files, "files_from_stats": r.files_from_stats}
            for p, r in reports.items()
        },  # fmt: skip
        "rules": [{"partition": p, **rule} for p, r in reports.items() for rule in r.to_dict()["rules"]],
    }


class _Lineage:
    """START at creation, then COMPLETE (inputs carry the DQ assertions facet) or FAIL; see etl/lineage.py."""

    def __init__(self, emitter: Any, inputs: list[str], output: str) -> None:
        from etl.lineage import LineageDataset

        self.emitter, self.inputs, self.output = emitter, inputs, output
        self.emitter.start([LineageDataset(u) for u in inputs], [LineageDataset(output)])

    def complete(self, reports: dict[str, DqReport], inputs: dict[str, str]) -> None:
        from etl.lineage import LineageDataset, dq_assertions_facet

        datasets = []
        for partition, report in reports.items():
            facet = dq_assertions_facet([(r.rule, r.passed, r.column) for r in report.results])
            datasets.append(LineageDataset(inputs[partition], facets={"dataQualityAssertions": facet}))
        self.emitter.complete(datasets, [LineageDataset(self.output)])

    def fail(self, error: BaseException) -> None:
        from etl.lineage import LineageDataset

        self.emitter.fail(error, [LineageDataset(u) for u in self.inputs])


def _emit_lineage(args: dict[str, str], storage: Storage, inputs: list[str], output: str) -> _Lineage:
    """OpenLineage events of this run (job name `<dataset>-dq`), stored under the staging bucket."""
    from etl.lineage import LineageEmitter

    emitter = LineageEmitter(
        storage,
        args["staging_uri"],
        args["dataset"],
        args["run_id"],
        f"{args['dataset']}-dq",
        url=args.get("lineage_url") or None,
    )
    return _Lineage(emitter, inputs, output)


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when the rules were evaluated; SystemExit(message) when they cannot be."""
    from etl.session import build_spark, parse_job_args
    from etl.storage import storage_for

    try:
        args = parse_job_args(list(sys.argv[1:] if argv is None else argv), REQUIRED_ARGS, OPTIONAL_ARGS)
        storage = storage_for(args.get("lake_root"))
        spark = build_spark(f"{args['dataset']}-dq")
        document = run(args, storage, spark)
    except (DqJobError, DqdlSyntaxError, DatasetSpecError, ValueError) as error:
        raise SystemExit(f"data quality job cannot evaluate the rules: {error}") from error
    print(
        f"{document['dataset']} run {document['run_id']}: data quality {document['outcome']} "
        f"({document['rules_passed']} passed, {document['rules_failed']} failed, "
        f"{document['row_count']} rows)"
    )
    for rule in document["rules"]:
        if rule["outcome"] != "Passed":
            print(f"  FAILED {rule['rule']}: {rule['reason']}")
    return 0


if __name__ == "__main__":
    main(sys.argv[1:])
