"""Terminal rendering for the `lake` command (rich): executions as the console shows them, reports, rows."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from lake.executions import ExecutionResult

STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "yellow", "RUNNING": "cyan"}


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _rows(states: list[Any]) -> list[tuple[Any, int, float | None]]:
    """Top-level states in order; the states of Map iterations folded into one row per state name
    (with the iteration count and the longest duration), as the console's Map view summarises them."""
    rows: list[list[Any]] = []
    folded: dict[str, list[Any]] = {}
    for state in states:
        if not state.in_map_iteration:
            folded = {} if state.type == "Map" else folded
            rows.append([state, 1, state.duration_s])
            continue
        row = folded.get(state.name)
        if row is None:
            row = folded[state.name] = [state, 0, None]
            rows.append(row)
        row[1] += 1
        if state.duration_s is not None:
            row[2] = max(row[2] or 0.0, state.duration_s)
        if state.error and not row[0].error:
            row[0] = state
    return [tuple(r) for r in rows]


def execution_table(name: str, status: str, states: list[Any], seconds: float | None) -> Table:
    """States in order with durations; errors in red (yellow when the execution went on: caught)."""
    style = STATUS_STYLE.get(status, "white")
    table = Table(title=f"[bold]{name}[/] [{style}]{status}[/] {_seconds(seconds)}", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("state")
    table.add_column("type", style="dim")
    table.add_column("duration", justify="right")
    table.add_column("error")
    top_level_failed = any(s.error for s in states if not s.in_map_iteration and s.type != "Map")
    for index, (state, count, duration) in enumerate(_rows(states), start=1):
        label = f"  {state.name} [dim]x{count}[/]" if state.in_map_iteration else state.name
        error = ""
        # An error inside a Map iteration that the execution went past was caught (e.g. the partition lookup).
        caught = status == "SUCCEEDED" or (state.in_map_iteration and top_level_failed)
        if state.error:
            error = f"[yellow]caught {state.error}[/]" if caught else f"[red]{state.error}[/]"
            label = label if caught else f"[red]{label}[/]"
        table.add_row(str(index), label, state.type, _seconds(duration), error)
    return table


def readable_cause(cause: str | None) -> str:
    """A Glue job run's failure cause is the JobRun as JSON; its ErrorMessage is what names the fault."""
    try:
        run = json.loads(cause or "")
    except json.JSONDecodeError:
        return (cause or "")[:600]
    if isinstance(run, dict) and run.get("ErrorMessage"):
        job = f"Glue job {run.get('JobName', '?')} run {run.get('Id', '?')} {run.get('JobRunState', '')}".strip()
        return f"{job}: {run['ErrorMessage']}"
    return (cause or "")[:600]


def print_result(console: Console, result: ExecutionResult) -> None:
    console.print(execution_table(result.name, result.status, list(result.states), result.duration_s))
    failed = result.failed_state if result.status != "SUCCEEDED" else None
    if failed is not None:
        console.print(f"  failed at [bold red]{failed.name}[/]: {failed.error}: {escape(readable_cause(failed.cause))}")
    elif result.status != "SUCCEEDED" and result.error:
        console.print(f"  [red]{result.error}[/]: {escape(readable_cause(result.cause))}")
    crawl = (result.last_output or {}).get("raw_crawl") if isinstance(result.last_output, dict) else None
    if isinstance(crawl, dict) and crawl.get("note", "ok") != "ok":
        console.print(f"  [yellow]raw table crawl:[/] {escape(str(crawl['note']))}")


def print_etl_outcome(console: Console, metrics: dict) -> None:
    """Rows in/out and every object the ETL could not read (quarantined, not processed), with its reason."""
    console.print(f"  rows: {metrics.get('input_rows', 0)} read, {metrics.get('output_rows', 0)} written, "
                  f"{metrics.get('rejected_rows', 0)} rejected, {metrics.get('duplicates_removed', 0)} duplicates "
                  f"removed")  # fmt: skip
    parts = [p for p in (metrics.get("per_partition") or {}).values() if p.get("merged_onto")]
    if parts:  # what the batch did to the published files it merged onto
        files = {key: sum(p.get(key, 0) for p in parts) for key in ("copied_files", "rewritten_files",
                                                                    "compacted_files")}  # fmt: skip
        console.print(f"  merged onto {metrics.get('carried_rows', 0)} published rows: {files['copied_files']} files "
                      f"copied, {files['rewritten_files']} rewritten, {files['compacted_files']} compacted into "
                      f"{sum(1 for p in parts if p.get('compacted_files'))}")  # fmt: skip
    stages = metrics.get("stage_seconds") or {}
    if stages:  # slowest first; stages under 0.1 s are left out
        shown = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in
                          sorted(stages.items(), key=lambda item: -item[1]) if seconds >= 0.1)  # fmt: skip
        console.print(f"  ETL time by stage: {sum(stages.values()):.1f} s ({shown or 'each under 0.1 s'})")
    quarantined = metrics.get("quarantined_objects") or []
    if quarantined:
        table = Table(title=f"quarantined objects ({len(quarantined)}, not processed)", title_justify="left")
        for column in ("object", "partition", "reason"):
            table.add_column(column)
        for item in quarantined:
            table.add_row(item.get("object", ""), item.get("partition", ""), item.get("reason", ""))
        console.print(table)


def print_notifications(console: Console, messages: list[dict]) -> None:
    for message in messages:
        console.print(Panel(message["message"], title=message.get("subject") or "notification", title_align="left"))


def print_dq_report(console: Console, report: dict, only_failures: bool = True) -> None:
    """Rules per partition with outcome, metrics and reason (only the failed rules, by default)."""
    style = "green" if report["outcome"] == "Passed" else "red"
    passed = ", ".join(report.get("partitions_passed", [])) or "none"
    failed = ", ".join(report.get("partitions_failed", [])) or "none"
    table = Table(
        title=f"Data quality {report['dataset']} run {report['run_id']}: [{style}]{report['outcome']}[/] "
        f"(passed: {passed}; failed: {failed}; {report['row_count']} rows)",
        title_justify="left",
    )
    for column in ("partition", "rule", "outcome", "metric", "reason"):
        table.add_column(column)
    for rule in report["rules"]:
        if only_failures and rule["outcome"] == "Passed":
            continue
        outcome_style = "green" if rule["outcome"] == "Passed" else "red"
        metrics = ", ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in (rule.get("metrics") or {}).items())
        table.add_row(rule.get("partition", ""), rule["rule"], f"[{outcome_style}]{rule['outcome']}[/]", metrics,
                      rule.get("reason") or "")  # fmt: skip
    console.print(table)


def print_dq_outcome(console: Console, report: dict) -> None:
    """One line when every partition passed; otherwise what was published, what was quarantined, and why."""
    if report["outcome"] == "Passed":
        console.print(f"  data quality: [green]Passed[/] ({report['rules_passed']} rules, {report['row_count']} rows)")
        return
    console.print(f"  published: {', '.join(report.get('partitions_passed', [])) or 'none'}; "
                  f"quarantined: {', '.join(report.get('partitions_failed', []))}")  # fmt: skip
    print_dq_report(console, report)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def print_rows(console: Console, columns: list[str], rows: list[tuple], title: str = "") -> None:
    table = Table(title=title or None, title_justify="left")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)
