"""Evaluate a parsed ruleset on a DataFrame: one shared aggregation for all aggregate rules.

report = evaluate(df, parse_dqdl(text, "rules.dqdl"), spark)
report.outcome            # "Passed" only if every rule passed
report.to_dict()          # JSON-serialisable: outcome, rules_passed, rules_failed, row_count, rules

Incremental: a batch's candidate folder holds the files this run wrote and unchanged copies of published files an
earlier run judged (etl/snapshot.py). With `fresh` (the rows of the files not carried over, read from the files) and
`carried` (the copies' rows and what the earlier run kept, `FolderStats`), the aggregate rules scan only the fresh
files: each rule's partial aggregates are computed per fresh file and merged with the kept partials of the copies
(quality/rules.py). IsUnique/Uniqueness groups only the fresh rows when the earlier folder was fully unique
(`uniqueness_counts_onto`). The report's `stats` are what the next batch needs of this folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import unquote

from quality.dqdl import Rule
from quality.rules import (
    FAILED,
    PASSED,
    PRIMARY_VIEW,
    RULE_CHECKS,
    AggregateCheck,
    Partial,
    RuleResult,
    check_rule,
    could_not_evaluate,
    judge_uniqueness,
    kinds,
    merge_partials,
    missing_column_result,
    partial_values,
    uniqueness_counts,
    uniqueness_counts_onto,
)

ROWS = "__rows"
UNIQUENESS_RULES = ("IsUnique", "Uniqueness")
STATS_VERSION = 1  # of the kept stats: bump when a rule's partial aggregates change (older stats are then ignored)


@dataclass(frozen=True)
class FolderStats:
    """What the evaluation of a folder keeps for the next batch: per file, each aggregate rule's partial values (by
    rule text, with the row count under `__rows`), and per uniqueness rule the rows with a duplicated or null
    value."""

    files: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    non_unique: dict[str, int] = field(default_factory=dict)

    def covers(self, name: str, rule_texts: Sequence[str]) -> bool:
        """Whether the partials of file `name` are kept for every one of `rule_texts`."""
        kept = self.files.get(name, {})
        return ROWS in kept and all(text in kept for text in rule_texts)

    def to_json(self) -> dict[str, Any]:
        return {"files": _encode(self.files), "non_unique": dict(self.non_unique)}

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> FolderStats:
        return cls(_decode(document["files"]), {str(k): int(v) for k, v in document["non_unique"].items()})


@dataclass(frozen=True)
class Carried:
    """Files of the folder being judged that are unchanged copies of files of a folder an earlier run judged."""

    rows: Any  # the copies' rows
    names: tuple[str, ...]  # their file names (each covered by `stats`)
    stats: FolderStats  # what the earlier run kept of its folder


@dataclass(frozen=True)
class DqReport:
    outcome: str
    results: tuple[RuleResult, ...]
    rules_passed: int
    rules_failed: int
    row_count: int
    stats: FolderStats = field(default_factory=FolderStats)
    files: int = 0  # the folder's data files (set by quality.job.evaluate_folder)
    files_from_stats: int = 0  # of them, judged from an earlier run's kept partial aggregates, not scanned

    @property
    def failed(self) -> tuple[RuleResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "rules_passed": self.rules_passed,
            "rules_failed": self.rules_failed,
            "row_count": self.row_count,
            "rules": [r.to_dict() for r in self.results],
        }


def aggregate_rule_texts(rules: Sequence[Rule]) -> list[str]:
    """The texts of the rules measured by partial aggregates (what `FolderStats.files` keeps per file)."""
    return [r.text for r in rules if isinstance(RULE_CHECKS[r.rule_type], AggregateCheck)]


def evaluate(df: Any, rules: Sequence[Rule], spark: Any = None, *, fresh: Any = None,
             carried: Carried | None = None) -> DqReport:  # fmt: skip
    """Evaluate every rule on `df` (the whole folder); rule results keep the ruleset's order.

    All aggregate rules (and the row count) are computed in a single aggregation, per file when `fresh` is given
    (see the module docstring); if that one query fails (e.g. a regex Java cannot compile), each of those rules is
    aggregated alone so only the bad one fails. `spark` is accepted for symmetry with Glue; the DataFrame's own
    session runs CustomSql."""
    if carried is not None and fresh is None:
        raise ValueError("carried files need the fresh files' rows (fresh=...)")
    df.createOrReplaceTempView(PRIMARY_VIEW)
    results: dict[int, RuleResult] = {}
    pending: dict[int, dict[str, Partial]] = {}
    non_unique: dict[str, int] = {}
    for index, rule in enumerate(rules):
        check = RULE_CHECKS[rule.rule_type]
        if (missing := missing_column_result(df, rule)) is not None:
            results[index] = missing
        elif isinstance(check, AggregateCheck):
            pending[index] = check.aggregates(rule)
        elif rule.rule_type in UNIQUENESS_RULES:
            results[index] = _uniqueness(df, rule, fresh, carried, non_unique)
        else:
            results[index] = check_rule(df, rule)

    kept = {name: carried.stats.files[name] for name in carried.names} if carried else {}
    row_count, files = _aggregate_rules(df if fresh is None else fresh, rules, pending, kept, results,
                                        by_file=fresh is not None)  # fmt: skip
    ordered = tuple(results[i] for i in range(len(rules)))
    failed = sum(1 for r in ordered if not r.passed)
    return DqReport(
        outcome=FAILED if failed else PASSED,
        results=ordered,
        rules_passed=len(ordered) - failed,
        rules_failed=failed,
        row_count=int(row_count),
        stats=FolderStats(files, non_unique),
    )


def _aggregate_rules(frame: Any, rules: Sequence[Rule], pending: dict[int, dict[str, Partial]],
                     kept: dict[str, dict[str, dict[str, Any]]], results: dict[int, RuleResult],
                     by_file: bool) -> tuple[int, dict[str, dict[str, dict[str, Any]]]]:  # fmt: skip
    """Judge the `pending` aggregate rules (into `results`) on the partials measured on `frame` merged with the
    `kept` partials of carried files; returns the row count and the partials to keep per file."""
    from pyspark.sql import functions as F

    by_rule = {**pending, -1: {ROWS: Partial(F.count(F.lit(1)), "count")}}
    texts = {i: rules[i].text for i in pending} | {-1: ROWS}
    try:
        measured = _partials(frame, by_rule, by_file)
    except Exception:  # one bad expression: each rule alone (see `evaluate`)
        measured = _partials(frame, {-1: by_rule[-1]}, by_file)  # the row count: if it fails, the data can't be read
        for index, partials in pending.items():
            try:
                measured.update(_partials(frame, {index: partials}, by_file))
            except Exception as error:
                results[index] = could_not_evaluate(rules[index], error)
    files: dict[str, dict[str, dict[str, Any]]] = {}  # one aggregation over everything keeps nothing per file
    for index, per_file in measured.items() if by_file else ():
        for name, values in per_file.items():
            files.setdefault(name, {})[texts[index]] = values
    row_count = 0
    for index, per_file in measured.items():
        parts = [*per_file.values(), *(k[texts[index]] for k in kept.values())]
        merged = merge_partials(parts, kinds(by_rule[index]))
        if index < 0:
            row_count = merged[ROWS]
        else:
            results[index] = RULE_CHECKS[rules[index].rule_type].judge(rules[index], merged)  # type: ignore[union-attr]
    files.update({name: {t: k[t] for t in texts.values() if t in k} for name, k in kept.items()})
    return row_count, files


def _partials(frame: Any, by_rule: dict[int, dict[str, Partial]], by_file: bool) -> dict[int, dict[str, Any]]:
    """{rule index: {file name: partial values}}: one aggregation, grouped by the file a row was read from when
    `by_file` (a file without rows has no group: it adds nothing), else over all rows (as file "*")."""
    from pyspark.sql import functions as F

    columns = [p.expr.alias(f"r{i}__{alias}") for i, partials in by_rule.items() for alias, p in partials.items()]
    if by_file:
        rows = frame.groupBy(F.col("_metadata.file_path").alias("_file")).agg(*columns).collect()
    else:
        rows = [frame.agg(*columns).first()]
    measured: dict[int, dict[str, Any]] = {i: {} for i in by_rule}
    for row in rows:
        values = row.asDict()
        name = unquote(values.pop("_file").rsplit("/", 1)[-1]) if by_file else "*"
        for index, partials in by_rule.items():
            measured[index][name] = partial_values({a: values[f"r{index}__{a}"] for a in partials})
    return measured


def _uniqueness(df: Any, rule: Rule, fresh: Any, carried: Carried | None, non_unique: dict[str, int]) -> RuleResult:
    """IsUnique/Uniqueness, grouping only the fresh rows when the carried files' folder was fully unique."""
    name = rule.columns[0]
    try:
        if carried is not None and carried.names and carried.stats.non_unique.get(rule.text) == 0:
            rows, unique = uniqueness_counts_onto(fresh, carried.rows, name)
        else:
            rows, unique = uniqueness_counts(df, name)
    except Exception as error:
        return could_not_evaluate(rule, error)
    non_unique[rule.text] = rows - unique
    return judge_uniqueness(rule, rows, unique)


def _encode(value: Any) -> Any:
    """Partial values as JSON: a Decimal (an exact sum) as {"decimal": "<digits>"}."""
    if isinstance(value, Decimal):
        return {"decimal": str(value)}
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return Decimal(value["decimal"]) if set(value) == {"decimal"} else {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value
