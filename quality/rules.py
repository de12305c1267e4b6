"""Rule checks: one small function per DQDL rule type, `(df, rule) -> RuleResult`, and a registry.

Most rule types are *aggregate checks*: a few partial aggregates plus a pure `judge` turning their merged values
into a result. A partial aggregate is one whose values over parts of the data merge into its value over the whole
(`Partial`: counts and sums add up, minima and maxima keep the extreme, moments merge by Chan's formula), so
`quality.evaluate` computes the expressions of all such rules in ONE Spark aggregation per file, and a file that an
earlier run judged needs no scan (its partials are kept). Calling a check directly (`RULE_CHECKS["Mean"](df, rule)`)
runs just its own, over the whole DataFrame. IsUnique/Uniqueness (a group-by) and CustomSql (its own query) run one
job each.

Conventions (see docs/dqdl.md):
- A rule on a column the data does not have fails with a reason naming the column; it never raises.
- ColumnValues and ColumnLength check non-null values only (nulls are what IsComplete/Completeness
  measure); Completeness/Uniqueness of an empty dataset are 1.0; Mean/Sum/StandardDeviation without any
  non-null value fail. StandardDeviation is the population standard deviation (as Deequ, under Glue DQ).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from quality.dqdl import Condition, Rule, format_value

PASSED = "Passed"
FAILED = "Failed"
ROW_COUNT_METRIC = "Dataset.*.RowCount"
CUSTOM_SQL_METRIC = "Dataset.*.CustomSQL"
PRIMARY_VIEW = "primary"


@dataclass(frozen=True)
class RuleResult:
    rule: str
    outcome: str  # "Passed" | "Failed"
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    column: str | None = None

    @property
    def passed(self) -> bool:
        return self.outcome == PASSED

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "outcome": self.outcome,
            "metrics": dict(self.metrics),
            "reason": self.reason,
        }


def result(rule: Rule, passed: bool, metrics: dict[str, Any], reason: str) -> RuleResult:
    """`reason` is only kept when the rule failed."""
    return RuleResult(
        rule.text, PASSED if passed else FAILED, metrics, None if passed else reason, rule.target
    )


def fmt(value: Any) -> str:
    return format_value(value) if isinstance(value, int | float | str) else str(value)


def to_number(value: Any) -> Any:
    """Spark values -> JSON-friendly numbers (Decimal -> float)."""
    return float(value) if isinstance(value, Decimal) else value


def ratio(part: int | None, whole: int | None) -> float:
    return 1.0 if not whole else (part or 0) / whole


def col(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col("`" + name.replace("`", "``") + "`")


def missing_column_result(df: Any, rule: Rule) -> RuleResult | None:
    """A Failed result when one of the rule's columns is not in the data (ColumnExists judges itself)."""
    missing = [c for c in rule.columns if c not in df.columns]
    if not missing or rule.rule_type == "ColumnExists":
        return None
    return RuleResult(
        rule.text,
        FAILED,
        {},
        f'column "{missing[0]}" does not exist in the data (columns: {", ".join(df.columns)})',
        rule.target,
    )


def condition_column(condition: Condition, column: Any) -> Any:
    """The condition as a boolean Spark expression on `column`."""
    op, values = condition.operator, condition.values
    if op in ("between", "not between"):
        expr = column.between(values[0], values[1])
    elif op in ("in", "not in"):
        expr = column.isin(list(values))
    elif op in ("matches", "not matches"):
        expr = column.cast("string").rlike(rf"\A(?:{values[0]})\z")  # whole value, as Glue
    else:
        return {
            ">": column > values[0], ">=": column >= values[0], "<": column < values[0],
            "<=": column <= values[0], "=": column == values[0], "!=": column != values[0],
        }[op]  # fmt: skip
    return ~expr if op.startswith("not ") else expr


# --------------------------------------------------------------------------------------- aggregate checks


@dataclass(frozen=True)
class Partial:
    """An aggregate expression and how its values over parts of the data merge into its value over the whole."""

    expr: Any
    merge: str  # a key of MERGES: "count" (0 over no rows), "sum" (None over no values), "min", "max", "moments"


def _add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else a + b


def _extreme(pick: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda a, b: b if a is None else a if b is None else pick(a, b)


def _moments(a: Any, b: Any) -> Any:
    """(count, mean, sum of squared deviations) of two parts -> of both (Chan et al.; what Spark's stddev does
    between its own partitions). A part without values is (0, None, None)."""
    if not a or not a[0]:
        return b
    if not b or not b[0]:
        return a
    (na, ma, qa), (nb, mb, qb) = a, b
    n, delta = na + nb, mb - ma
    return [n, ma + delta * nb / n, qa + qb + delta * delta * na * nb / n]


MERGES: dict[str, Callable[[Any, Any], Any]] = {"count": _add, "sum": _add, "min": _extreme(min),
                                                "max": _extreme(max), "moments": _moments}  # fmt: skip


def merge_partials(parts: list[Mapping[str, Any]], kinds: Mapping[str, str]) -> dict[str, Any]:
    """The values of partial aggregates (`kinds`: alias -> merge) over the union of `parts`. No parts: the values
    of an empty DataFrame (counts 0, everything else None: a sum of no values is undefined, as in Spark)."""
    merged: dict[str, Any] = {alias: 0 if kind == "count" else None for alias, kind in kinds.items()}
    for part in parts:
        for alias, kind in kinds.items():
            merged[alias] = MERGES[kind](merged[alias], part[alias])
    return merged


def partial_values(row: Mapping[str, Any]) -> dict[str, Any]:
    """A Spark result row's partial values as plain values (moments come back as a struct)."""
    return {k: list(v) if hasattr(v, "asDict") else v for k, v in row.items()}


@dataclass(frozen=True)
class AggregateCheck:
    """A rule type measured by partial aggregates (alias -> Partial) and judged by a pure function of their
    merged values."""

    aggregates: Callable[[Rule], dict[str, Partial]]
    judge: Callable[[Rule, Mapping[str, Any]], RuleResult]

    def __call__(self, df: Any, rule: Rule) -> RuleResult:
        if missing := missing_column_result(df, rule):
            return missing
        partials = self.aggregates(rule)
        row = df.agg(*[p.expr.alias(name) for name, p in partials.items()]).first()
        return self.judge(rule, merge_partials([partial_values(row.asDict())], kinds(partials)))


def kinds(partials: Mapping[str, Partial]) -> dict[str, str]:
    return {alias: p.merge for alias, p in partials.items()}


def _count_rows(_rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    return {"rows": Partial(F.count(F.lit(1)), "count")}


def _judge_row_count(rule: Rule, values: Mapping[str, Any]) -> RuleResult:
    rows = values["rows"]
    assert rule.condition is not None
    return result(
        rule,
        rule.condition.test(rows),
        {ROW_COUNT_METRIC: rows},
        f"RowCount is {rows}, expected {rule.condition.describe()}",
    )


def _completeness_aggregates(rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    return {"rows": Partial(F.count(F.lit(1)), "count"), "non_null": Partial(F.count(col(rule.columns[0])), "count")}


def _judge_completeness(rule: Rule, values: Mapping[str, Any]) -> RuleResult:
    name, rows, non_null = rule.columns[0], values["rows"], values["non_null"]
    completeness = ratio(non_null, rows)
    metrics = {f"Column.{name}.Completeness": completeness}
    if rule.condition is None:  # IsComplete
        return result(
            rule,
            non_null == rows,
            metrics,
            f'Completeness of "{name}" is {fmt(completeness)}, '
            f"expected 1.0 ({rows - non_null} of {rows} values are null)",
        )
    return result(
        rule,
        rule.condition.test(completeness),
        metrics,
        f'Completeness of "{name}" is {fmt(completeness)}, expected {rule.condition.describe()}',
    )


def _column_values_aggregates(rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    assert rule.condition is not None
    column = col(rule.columns[0])
    ok = F.when(column.isNotNull() & condition_column(rule.condition, column), 1).otherwise(0)
    return {"non_null": Partial(F.count(column), "count"), "compliant": Partial(F.sum(ok), "sum")}


def _judge_column_values(rule: Rule, values: Mapping[str, Any]) -> RuleResult:
    assert rule.condition is not None
    name, non_null, compliant = rule.columns[0], values["non_null"], values["compliant"] or 0
    compliance = ratio(compliant, non_null)
    metrics = {f"Column.{name}.ColumnValues.Compliance": compliance}
    threshold = rule.threshold
    passed = threshold.test(compliance) if threshold else compliant == non_null
    expected = f"expected {threshold.describe()}" if threshold else "expected 1.0"
    return result(
        rule,
        passed,
        metrics,
        f'{non_null - compliant} of {non_null} non-null values of "{name}" '
        f"are not {rule.condition.describe()} (compliance {fmt(compliance)}, {expected})",
    )


def _column_length_aggregates(rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    assert rule.condition is not None
    length = F.length(col(rule.columns[0]).cast("string"))
    ok = F.when(length.isNotNull() & condition_column(rule.condition, length), 1).otherwise(0)
    return {"non_null": Partial(F.count(length), "count"), "compliant": Partial(F.sum(ok), "sum"),
            "min": Partial(F.min(length), "min"), "max": Partial(F.max(length), "max")}  # fmt: skip


def _judge_column_length(rule: Rule, values: Mapping[str, Any]) -> RuleResult:
    assert rule.condition is not None
    name, non_null, compliant = rule.columns[0], values["non_null"], values["compliant"] or 0
    metrics = {
        f"Column.{name}.ColumnLength.Compliance": ratio(compliant, non_null),
        f"Column.{name}.MinimumLength": values["min"],
        f"Column.{name}.MaximumLength": values["max"],
    }
    return result(
        rule,
        compliant == non_null,
        metrics,
        f'{non_null - compliant} of {non_null} non-null values of "{name}" have a length not '
        f"{rule.condition.describe()} (lengths {values['min']} to {values['max']})",
    )


def _sum(rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    return {"sum": Partial(F.sum(col(rule.columns[0])), "sum")}


def _sum_and_count(rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    return {**_sum(rule), "count": Partial(F.count(col(rule.columns[0]).cast("double")), "count")}


def _moments_of(rule: Rule) -> dict[str, Partial]:
    from pyspark.sql import functions as F

    value = col(rule.columns[0]).cast("double")
    n = F.count(value)
    return {"moments": Partial(F.struct(n, F.avg(value), F.var_pop(value) * n), "moments")}


def _mean(values: Mapping[str, Any]) -> Any:
    return values["sum"] / values["count"] if values["count"] else None


def _standard_deviation(values: Mapping[str, Any]) -> Any:
    moments = values["moments"]
    return (moments[2] / moments[0]) ** 0.5 if moments and moments[0] else None


def _statistic(metric: str, aggregates: Callable[[Rule], dict[str, Partial]],
               value_of: Callable[[Mapping[str, Any]], Any]) -> AggregateCheck:  # fmt: skip
    """Mean / Sum / StandardDeviation: a statistic of the column's non-null values (from its partial aggregates),
    compared with the threshold."""

    def judge(rule: Rule, values: Mapping[str, Any]) -> RuleResult:
        assert rule.condition is not None
        name, value = rule.columns[0], to_number(value_of(values))
        if value is None:
            return result(
                rule,
                False,
                {f"Column.{name}.{metric}": None},
                f'{metric} of "{name}" is undefined (no non-null numeric values), '
                f"expected {rule.condition.describe()}",
            )
        return result(
            rule,
            rule.condition.test(value),
            {f"Column.{name}.{metric}": value},
            f'{metric} of "{name}" is {fmt(value)}, expected {rule.condition.describe()}',
        )

    return AggregateCheck(aggregates, judge)


# ------------------------------------------------------------------------------------------- other checks


def check_uniqueness(df: Any, rule: Rule) -> RuleResult:
    """IsUnique / Uniqueness: share of rows whose non-null value occurs exactly once (as Deequ)."""
    if missing := missing_column_result(df, rule):
        return missing
    return judge_uniqueness(rule, *uniqueness_counts(df, rule.columns[0]))


def uniqueness_counts(df: Any, name: str) -> tuple[int, int]:
    """(rows, rows whose non-null value of `name` occurs exactly once)."""
    from pyspark.sql import functions as F

    groups = df.groupBy(col(name).alias("value")).agg(F.count(F.lit(1)).alias("n"))
    row = groups.agg(
        F.sum("n").alias("rows"),
        F.sum(F.when(F.col("value").isNotNull() & (F.col("n") == 1), 1).otherwise(0)).alias("unique"),
    ).first()
    return row["rows"] or 0, row["unique"] or 0


def uniqueness_counts_onto(fresh: Any, judged: Any, name: str) -> tuple[int, int]:
    """`uniqueness_counts` of the union of `fresh` and `judged`, where every value of `judged` is known to be
    non-null and to occur once in it (rows of files an earlier run found fully unique). Only `fresh` is grouped;
    of `judged` only the rows within the range of `fresh`'s values are read (Parquet skips row groups outside it)
    and matched to those values, so the cost follows `fresh`, not the partition: a scan of the fresh column for
    its range, then one job that groups it and joins the matches."""
    from pyspark.sql import functions as F

    low, high, fresh_rows = fresh.agg(F.min(col(name)), F.max(col(name)), F.count(F.lit(1))).first()
    judged_rows = judged.count()
    if low is None:  # no non-null fresh value: nothing of `judged` can collide, no fresh row is unique
        return fresh_rows + judged_rows, judged_rows
    groups = fresh.groupBy(col(name).alias("value")).agg(F.count(F.lit(1)).alias("n"))
    in_range = judged.select(col(name).alias("value")).where(F.col("value").between(low, high))
    # Each value of `judged` occurs once: a fresh value is unique if it occurs once in `fresh` and not there.
    marked = groups.join(in_range.withColumn("hit", F.lit(1)), "value", "left")
    unique_fresh, collisions = marked.agg(
        F.sum(F.when(F.col("value").isNotNull() & (F.col("n") == 1) & F.col("hit").isNull(), 1).otherwise(0)),
        F.count("hit"),
    ).first()
    return fresh_rows + judged_rows, (unique_fresh or 0) + judged_rows - collisions


def judge_uniqueness(rule: Rule, rows: int, unique: int) -> RuleResult:
    name = rule.columns[0]
    uniqueness = ratio(unique, rows)
    metrics = {f"Column.{name}.Uniqueness": uniqueness}
    if rule.condition is None:  # IsUnique
        return result(
            rule,
            unique == rows,
            metrics,
            f'Uniqueness of "{name}" is {fmt(uniqueness)}, expected 1.0 '
            f"({rows - unique} of {rows} rows have a duplicated or null value)",
        )
    return result(
        rule,
        rule.condition.test(uniqueness),
        metrics,
        f'Uniqueness of "{name}" is {fmt(uniqueness)}, expected {rule.condition.describe()}',
    )


def check_column_exists(df: Any, rule: Rule) -> RuleResult:
    name = rule.columns[0]
    exists = name in df.columns
    return result(
        rule,
        exists,
        {f"Column.{name}.Exists": 1.0 if exists else 0.0},
        f'column "{name}" does not exist in the data (columns: {", ".join(df.columns)})',
    )


def check_custom_sql(df: Any, rule: Rule) -> RuleResult:
    """Run the rule's SQL with the data registered as the temp view `primary`; judge its single value."""
    assert rule.condition is not None and rule.sql is not None
    df.createOrReplaceTempView(PRIMARY_VIEW)
    rows = df.sparkSession.sql(rule.sql).limit(2).collect()
    if len(rows) != 1 or len(rows[0]) != 1:
        shape = f"{len(rows)}{'+' if len(rows) > 1 else ''} row(s) of {len(rows[0]) if rows else 0} column(s)"
        return result(rule, False, {}, f"CustomSql must return one row with one column, got {shape}")
    value = to_number(rows[0][0])
    metrics = {CUSTOM_SQL_METRIC: value}
    if not isinstance(value, int | float) or isinstance(value, bool):
        return result(
            rule,
            False,
            metrics,
            f"CustomSql result {value!r} is not a number, expected {rule.condition.describe()}",
        )
    return result(
        rule,
        rule.condition.test(value),
        metrics,
        f"CustomSql result is {fmt(value)}, expected {rule.condition.describe()}",
    )


COMPLETENESS = AggregateCheck(_completeness_aggregates, _judge_completeness)

RULE_CHECKS: dict[str, Callable[[Any, Rule], RuleResult]] = {
    "RowCount": AggregateCheck(_count_rows, _judge_row_count),
    "IsComplete": COMPLETENESS,
    "Completeness": COMPLETENESS,
    "IsUnique": check_uniqueness,
    "Uniqueness": check_uniqueness,
    "ColumnExists": check_column_exists,
    "ColumnValues": AggregateCheck(_column_values_aggregates, _judge_column_values),
    "ColumnLength": AggregateCheck(_column_length_aggregates, _judge_column_length),
    "Mean": _statistic("Mean", _sum_and_count, _mean),
    "Sum": _statistic("Sum", _sum, lambda values: values["sum"]),
    "StandardDeviation": _statistic("StandardDeviation", _moments_of, _standard_deviation),
    "CustomSql": check_custom_sql,
}


def check_rule(df: Any, rule: Rule) -> RuleResult:
    """Evaluate one rule on its own; an error while evaluating fails the rule with the error as reason."""
    try:
        return RULE_CHECKS[rule.rule_type](df, rule)
    except Exception as error:  # a bad regex or SQL fails its rule, it must not stop the others
        return could_not_evaluate(rule, error)


def could_not_evaluate(rule: Rule, error: Exception) -> RuleResult:
    """The rule failed because evaluating it raised `error` (its first line is the reason)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return RuleResult(rule.text, FAILED, {}, f"could not evaluate: {message}", rule.target)
