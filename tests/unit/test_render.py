"""Execution rendering: Map iterations folded per state, caught errors not shown as failures."""

from rich.console import Console

from lake import render
from lake.executions import ExecutionResult, StateVisit


def _result(status: str) -> ExecutionResult:
    states = (
        StateVisit("Check raw partitions", "Map", 0.5),
        StateVisit("Get raw partition", "Task", 0.0, in_map_iteration=True),
        StateVisit("Raw partition is new", "Pass", 0.1, in_map_iteration=True),
        StateVisit("Get raw partition", "Task", 0.2, in_map_iteration=True),
        StateVisit("Raw partition is new", "Pass", 0.0, in_map_iteration=True),
        StateVisit("Run ETL job", "Task", 30.0, error="States.TaskFailed" if status == "FAILED" else None),
        StateVisit("Get partition", "Task", 0.1, error="Glue.EntityNotFoundException", in_map_iteration=True),
    )
    return ExecutionResult(arn="arn:aws:states:us-east-1:1:execution:sm:run-1", status=status, states=states)


def _text(result: ExecutionResult) -> str:
    console = Console(record=True, width=140)
    render.print_result(console, result)
    return console.export_text()


def test_execution_table__folds_map_iterations():
    text = _text(_result("SUCCEEDED"))
    assert "Get raw partition x2" in text and "Raw partition is new x2" in text
    assert text.count("Get raw partition") == 1


def test_execution_table__caught_errors_in_a_succeeded_run_are_not_failures():
    text = _text(_result("SUCCEEDED"))
    assert "caught Glue.EntityNotFoundException" in text
    assert "failed at" not in text


def test_execution_table__failed_run_names_the_failed_state():
    text = _text(_result("FAILED"))
    assert "failed at Run ETL job: States.TaskFailed" in text
    assert "States.TaskFailed" in text


def test_dq_report__lists_failed_rules_with_their_partition():
    report = {
        "dataset": "orders", "run_id": "run-1", "outcome": "Failed", "row_count": 3,
        "partitions_passed": ["ingest_date=2026-11-24"], "partitions_failed": ["ingest_date=2026-11-25"],
        "rules": [
            {"partition": "ingest_date=2026-11-24", "rule": "RowCount > 0", "outcome": "Passed",
             "metrics": {"Dataset.*.RowCount": 2}, "reason": None},
            {"partition": "ingest_date=2026-11-25", "rule": 'IsComplete "order_id"', "outcome": "Failed",
             "metrics": {"Column.order_id.Completeness": 0.5}, "reason": "Completeness of order_id is 0.5"},
        ],
    }  # fmt: skip
    console = Console(record=True, width=200)
    render.print_dq_report(console, report)
    text = console.export_text()
    assert "failed: ingest_date=2026-11-25" in text
    assert "Completeness of order_id is 0.5" in text and "Completeness=0.5" in text
    assert "RowCount > 0" not in text


def test_dq_outcome__passed_run_is_one_line():
    console = Console(record=True, width=200)
    render.print_dq_outcome(console, {"outcome": "Passed", "rules_passed": 12, "row_count": 400, "rules": []})
    assert console.export_text().strip() == "data quality: Passed (12 rules, 400 rows)"


def test_print_result__glue_failure_shows_the_job_runs_error_message():
    import dataclasses
    import json

    error = "FileNotFoundError: no raw objects for partition ingest_date=2026-11-24"
    cause = json.dumps({"Id": "jr_1", "JobName": "EtlJob", "JobRunState": "FAILED", "Arguments": {"--x": "y" * 900},
                        "ErrorMessage": error})  # fmt: skip
    result = _result("FAILED")
    states = tuple(dataclasses.replace(s, cause=cause) if s.name == "Run ETL job" else s for s in result.states)
    text = _text(dataclasses.replace(result, states=states)).replace("\n", "")
    assert f"Glue job EtlJob run jr_1 FAILED: {error}" in text
    assert "yyyy" not in text


def test_print_result__a_failed_crawl_is_noted_even_when_the_run_succeeded():
    import dataclasses

    note = "crawler orders-raw ended its last crawl FAILED: cannot read s3://raw/orders/ingest_date=1/x.gz"
    result = dataclasses.replace(_result("SUCCEEDED"), last_output={"raw_crawl": {"note": note}})
    assert f"raw table crawl: {note}" in _text(result).replace("\n", "")
    quiet = dataclasses.replace(_result("SUCCEEDED"), last_output={"raw_crawl": {"note": "ok"}})
    assert "raw table crawl" not in _text(quiet)


def test_print_etl_outcome__lists_quarantined_objects_with_reasons():
    console = Console(record=True, width=200)
    render.print_etl_outcome(console, {
        "input_rows": 40, "output_rows": 39, "rejected_rows": 1, "duplicates_removed": 0,
        "quarantined_objects": [{"object": "s3://raw/orders/ingest_date=2026-11-24/corrupt.csv.gz",
                                 "partition": "ingest_date=2026-11-24", "reason": "not a valid gzip file"}],
    })  # fmt: skip
    text = console.export_text()
    assert "40 read, 39 written, 1 rejected, 0 duplicates removed" in text
    assert "ETL time" not in text  # metrics written before stage times were recorded
    assert "quarantined objects (1, not processed)" in text
    assert "corrupt.csv.gz" in text and "not a valid gzip file" in text


def test_last_state_output__ignores_map_iterations():
    from lake.executions import last_state_output

    def exited(output):
        return {"type": "PassStateExited", "stateExitedEventDetails": {"name": "s", "output": output}}

    events = [exited('{"raw_crawl": {"note": "ok"}}'), {"type": "MapIterationStarted"}, exited('{"item": 1}'),
              {"type": "MapIterationSucceeded"}]  # fmt: skip
    assert last_state_output(events) == {"raw_crawl": {"note": "ok"}}


def test_print_etl_outcome__stage_times_slowest_first():
    console = Console(record=True, width=200)
    render.print_etl_outcome(console, {"input_rows": 4, "output_rows": 4, "stage_seconds": {
        "plan_sources": 0.21, "parse_and_count": 3.04, "merge": 3.54, "copy_untouched": 0.01}})
    assert "ETL time by stage: 6.8 s (merge 3.5 s, parse_and_count 3.0 s, plan_sources 0.2 s)" in console.export_text()


def test_print_etl_outcome__what_an_incremental_batch_did_to_the_published_files():
    console = Console(record=True, width=200)
    onto = "s3://curated/orders/ingest_date=2026-11-2{}/run_id=r/"
    render.print_etl_outcome(console, {"mode": "incremental", "input_rows": 10, "output_rows": 110, "carried_rows": 100,
                                       "per_partition": {
        "ingest_date=2026-11-24": {"copied_files": 3, "rewritten_files": 1, "compacted_files": 8,
                                   "merged_onto": onto.format(4)},
        "ingest_date=2026-11-25": {"copied_files": 2, "rewritten_files": 0, "compacted_files": 0,
                                   "merged_onto": onto.format(5)},
        "ingest_date=2026-11-26": {"merged_onto": None}}})  # fmt: skip
    assert "merged onto 100 published rows: 5 files copied, 1 rewritten, 8 compacted into 1" in console.export_text()
    first = Console(record=True, width=200)  # a batch of partitions not published yet merges onto nothing
    render.print_etl_outcome(first, {"mode": "incremental", "input_rows": 10, "output_rows": 10, "per_partition": {
        "ingest_date=2026-11-26": {"merged_onto": None, "copied_files": 0}}})  # fmt: skip
    assert "merged onto" not in first.export_text()
