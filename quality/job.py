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
from typing import Any

from etl.readers import parse_partitions
from etl.spec import RULES_FILE, DatasetSpecError, load_deployed_dataset
from etl.storage import Storage, join_uri, read_json, write_json
from quality.dqdl import DqdlSyntaxError, Rule, parse_dqdl
from quality.evaluate import DqReport, evaluate

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
        missing = [u for u in inputs.values() if not any(k.endswith(".parquet") for k in storage.list_keys(u + "/"))]
        if missing:
            raise DqJobError(f"no candidate data (Parquet files) at {', '.join(missing)}; did the ETL job run?")
        reports = {p: evaluate(read_candidate(spark, storage, [uri]), rules, spark) for p, uri in inputs.items()}
        metrics_uri = join_uri(run_folder(args["staging_uri"], dataset, run_id), "etl_metrics.json")
        document = {
            "dataset": dataset,
            "run_id": run_id,
            "partitions": partitions,
            **summarise(reports),
            "etl": read_json(storage, metrics_uri) if storage.exists(metrics_uri) else None,
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
                "row_count": r.row_count}
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
