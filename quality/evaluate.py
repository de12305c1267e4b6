"""Evaluate a parsed ruleset on a DataFrame: one shared aggregation for all aggregate rules.

report = evaluate(df, parse_dqdl(text, "rules.dqdl"), spark)
report.outcome            # "Passed" only if every rule passed
report.to_dict()          # JSON-serialisable: outcome, rules_passed, rules_failed, row_count, rules
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from quality.dqdl import Rule
from quality.rules import (
    FAILED,
    PASSED,
    PRIMARY_VIEW,
    RULE_CHECKS,
    AggregateCheck,
    RuleResult,
    check_rule,
    missing_column_result,
)

ROWS_ALIAS = "__rows"


@dataclass(frozen=True)
class DqReport:
    outcome: str
    results: tuple[RuleResult, ...]
    rules_passed: int
    rules_failed: int
    row_count: int

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


def _alias(index: int, name: str) -> str:
    return f"r{index}__{name}"


def evaluate(df: Any, rules: Sequence[Rule], spark: Any = None) -> DqReport:
    """Evaluate every rule; rule results keep the ruleset's order.

    All aggregate rules (and the row count) are computed in a single `df.agg(...)`; if that one query
    fails (e.g. a regex Java cannot compile), each of those rules is evaluated alone so only the bad one
    fails. `spark` is accepted for symmetry with Glue; the DataFrame's own session runs CustomSql.
    """
    from pyspark.sql import functions as F

    df.createOrReplaceTempView(PRIMARY_VIEW)
    results: dict[int, RuleResult] = {}
    pending: list[int] = []
    expressions: dict[str, Any] = {ROWS_ALIAS: F.count(F.lit(1))}
    for index, rule in enumerate(rules):
        check = RULE_CHECKS[rule.rule_type]
        if (missing := missing_column_result(df, rule)) is not None:
            results[index] = missing
        elif isinstance(check, AggregateCheck):
            expressions.update({_alias(index, k): v for k, v in check.aggregates(rule).items()})
            pending.append(index)
        else:
            results[index] = check_rule(df, rule)

    row_count: int | None = None
    try:
        row = df.agg(*[expr.alias(alias) for alias, expr in expressions.items()]).first().asDict()
    except Exception:  # one bad expression: fall back to one query per rule (see docstring)
        row = None
    if row is not None:
        row_count = row[ROWS_ALIAS]
        for index in pending:
            prefix = _alias(index, "")
            values = {k[len(prefix) :]: v for k, v in row.items() if k.startswith(prefix)}
            check = RULE_CHECKS[rules[index].rule_type]
            results[index] = check.judge(rules[index], values)  # type: ignore[union-attr]
    else:
        row_count = df.count()
        for index in pending:
            results[index] = check_rule(df, rules[index])

    ordered = tuple(results[i] for i in range(len(rules)))
    failed = sum(1 for r in ordered if not r.passed)
    return DqReport(
        outcome=FAILED if failed else PASSED,
        results=ordered,
        rules_passed=len(ordered) - failed,
        rules_failed=failed,
        row_count=int(row_count),
    )
