"""Tests of quality.rules and quality.evaluate on tiny inline DataFrames (expected values by hand)."""

from __future__ import annotations

import json

import pytest

from quality.dqdl import parse_dqdl
from quality.evaluate import evaluate
from quality.rules import RULE_CHECKS, RuleResult

pytestmark = pytest.mark.spark

SCHEMA = "id string, country string, amount double, qty int"
ROWS = [
    ("o1", "DE", 10.0, 1),
    ("o2", "FR", 20.0, 2),
    ("o3", None, 30.0, 3),
    ("o4", "GBR", 40.0, 4),
]


@pytest.fixture(scope="module")
def df(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


@pytest.fixture(scope="module")
def dup_df(spark):
    return spark.createDataFrame([("a",), ("a",), ("b",), (None,)], "id string")


def check(df, rule_text: str) -> RuleResult:
    (rule,) = parse_dqdl(f"Rules = [ {rule_text} ]", "t.dqdl")
    return RULE_CHECKS[rule.rule_type](df, rule)


def assert_passed(result: RuleResult, metrics: dict) -> None:
    assert (result.outcome, result.reason) == ("Passed", None)
    assert result.metrics == pytest.approx(metrics)


def assert_failed(result: RuleResult, metrics: dict, *reason_parts: str) -> None:
    assert result.outcome == "Failed"
    assert result.metrics == pytest.approx(metrics)
    for part in reason_parts:
        assert part in result.reason


def test_row_count__above_threshold_passes(df):
    assert_passed(check(df, "RowCount > 3"), {"Dataset.*.RowCount": 4})


def test_row_count__outside_range_fails(df):
    assert_failed(
        check(df, "RowCount between 5 and 10"),
        {"Dataset.*.RowCount": 4},
        "RowCount is 4, expected between 5 and 10",
    )


def test_is_complete__no_nulls_passes(df):
    assert_passed(check(df, 'IsComplete "id"'), {"Column.id.Completeness": 1.0})


def test_is_complete__one_null_fails(df):
    assert_failed(
        check(df, 'IsComplete "country"'),
        {"Column.country.Completeness": 0.75},
        '"country"',
        "0.75",
        "1 of 4 values are null",
    )


def test_completeness__at_threshold_passes(df):
    assert_passed(check(df, 'Completeness "country" >= 0.75'), {"Column.country.Completeness": 0.75})


def test_completeness__below_threshold_fails(df):
    assert_failed(
        check(df, 'Completeness "country" >= 0.9'),
        {"Column.country.Completeness": 0.75},
        'Completeness of "country" is 0.75, expected >= 0.9',
    )


def test_is_unique__distinct_values_pass(df):
    assert_passed(check(df, 'IsUnique "id"'), {"Column.id.Uniqueness": 1.0})


def test_is_unique__duplicates_and_null_fail(dup_df):
    # only "b" occurs exactly once: 1 of 4 rows
    assert_failed(
        check(dup_df, 'IsUnique "id"'),
        {"Column.id.Uniqueness": 0.25},
        'Uniqueness of "id" is 0.25',
        "3 of 4 rows",
    )


def test_uniqueness__above_threshold_passes(dup_df):
    assert_passed(check(dup_df, 'Uniqueness "id" > 0.2'), {"Column.id.Uniqueness": 0.25})


def test_uniqueness__below_threshold_fails(dup_df):
    assert_failed(
        check(dup_df, 'Uniqueness "id" >= 0.5'), {"Column.id.Uniqueness": 0.25}, '"id"', "expected >= 0.5"
    )


def test_column_exists__present_passes(df):
    assert_passed(check(df, 'ColumnExists "amount"'), {"Column.amount.Exists": 1.0})


def test_column_exists__absent_fails(df):
    assert_failed(
        check(df, 'ColumnExists "price"'), {"Column.price.Exists": 0.0}, 'column "price" does not exist'
    )


def test_column_values__in_list_ignores_nulls_and_passes(df):
    assert_passed(
        check(df, 'ColumnValues "country" in ["DE", "FR", "GBR"]'),
        {"Column.country.ColumnValues.Compliance": 1.0},
    )


def test_column_values__not_in_list_fails(df):
    assert_failed(
        check(df, 'ColumnValues "country" in ["DE", "FR"]'),
        {"Column.country.ColumnValues.Compliance": 2 / 3},
        '1 of 3 non-null values of "country" are not in ["DE", "FR"]',
    )


def test_column_values__not_in_passes_and_fails(df):
    assert_passed(
        check(df, 'ColumnValues "country" not in ["XX"]'), {"Column.country.ColumnValues.Compliance": 1.0}
    )
    assert_failed(
        check(df, 'ColumnValues "country" not in ["DE"]'),
        {"Column.country.ColumnValues.Compliance": 2 / 3},
        'not not in ["DE"]',
    )


def test_column_values__between_passes(df):
    assert_passed(
        check(df, 'ColumnValues "amount" between 10 and 40'), {"Column.amount.ColumnValues.Compliance": 1.0}
    )


def test_column_values__between_fails_outside(df):
    assert_failed(
        check(df, 'ColumnValues "amount" between -0.5 and 25.5'),
        {"Column.amount.ColumnValues.Compliance": 0.5},
        '"amount"',
        "between -0.5 and 25.5",
    )


def test_column_values__comparison_fails(df):
    assert_failed(check(df, 'ColumnValues "qty" > 1'), {"Column.qty.ColumnValues.Compliance": 0.75}, "> 1")


def test_column_values__string_equality_fails(df):
    assert_failed(
        check(df, 'ColumnValues "country" = "DE"'),
        {"Column.country.ColumnValues.Compliance": 1 / 3},
        '= "DE"',
    )


def test_column_values__matches_whole_value(df):
    assert_passed(check(df, 'ColumnValues "id" matches "o[0-9]"'), {"Column.id.ColumnValues.Compliance": 1.0})
    # "[A-Z]{2}" also occurs inside "GBR", but the whole value must match
    assert_failed(
        check(df, 'ColumnValues "country" matches "[A-Z]{2}"'),
        {"Column.country.ColumnValues.Compliance": 2 / 3},
        'matches "[A-Z]{2}"',
    )


def test_column_values__with_threshold(df):
    assert_passed(
        check(df, 'ColumnValues "qty" > 1 with threshold >= 0.75'),
        {"Column.qty.ColumnValues.Compliance": 0.75},
    )
    assert_failed(
        check(df, 'ColumnValues "qty" > 1 with threshold > 0.8'),
        {"Column.qty.ColumnValues.Compliance": 0.75},
        "expected > 0.8",
    )


def test_column_length__equal_fails_on_long_value(df):
    assert_failed(
        check(df, 'ColumnLength "country" = 2'),
        {
            "Column.country.ColumnLength.Compliance": 2 / 3,
            "Column.country.MinimumLength": 2,
            "Column.country.MaximumLength": 3,
        },
        '1 of 3 non-null values of "country"',
        "= 2",
    )


def test_column_length__between_passes(df):
    assert_passed(
        check(df, 'ColumnLength "country" between 2 and 3'),
        {
            "Column.country.ColumnLength.Compliance": 1.0,
            "Column.country.MinimumLength": 2,
            "Column.country.MaximumLength": 3,
        },
    )


def test_mean__in_range_passes(df):
    assert_passed(check(df, 'Mean "amount" between 1 and 5000'), {"Column.amount.Mean": 25.0})


def test_mean__above_threshold_fails(df):
    assert_failed(
        check(df, 'Mean "amount" < 20'), {"Column.amount.Mean": 25.0}, 'Mean of "amount" is 25, expected < 20'
    )


def test_sum__passes_and_fails(df):
    assert_passed(check(df, 'Sum "qty" = 10'), {"Column.qty.Sum": 10})
    assert_failed(
        check(df, 'Sum "amount" > 100'),
        {"Column.amount.Sum": 100.0},
        'Sum of "amount" is 100, expected > 100',
    )


def test_standard_deviation__population_passes_and_fails(df):
    # amounts 10, 20, 30, 40: population variance (225 + 25 + 25 + 225) / 4 = 125
    expected = {"Column.amount.StandardDeviation": 125**0.5}
    assert_passed(check(df, 'StandardDeviation "amount" between 11 and 11.2'), expected)
    assert_failed(
        check(df, 'StandardDeviation "amount" <= 10'),
        expected,
        'StandardDeviation of "amount" is 11.1803',
        "expected <= 10",
    )


def test_mean__all_null_fails(spark):
    nulls = spark.createDataFrame([(None,), (None,)], "amount double")
    assert_failed(check(nulls, 'Mean "amount" > 0'), {"Column.amount.Mean": None}, "undefined")


def test_sum__all_null_fails_as_undefined(spark):
    nulls = spark.createDataFrame([(None,), (None,)], "amount double")
    assert_failed(check(nulls, 'Sum "amount" > -1'), {"Column.amount.Sum": None}, "undefined")


def test_custom_sql__passes(df):
    assert_passed(
        check(df, 'CustomSql "select count(*) from primary where amount > 15" = 3'),
        {"Dataset.*.CustomSQL": 3},
    )


def test_custom_sql__fails_with_value(df):
    assert_failed(
        check(df, 'CustomSql "select max(qty) from primary" between 0 and 3'),
        {"Dataset.*.CustomSQL": 4},
        "CustomSql result is 4, expected between 0 and 3",
    )


def test_custom_sql__many_rows_fails(df):
    assert_failed(check(df, 'CustomSql "select id from primary" = 1'), {}, "one row with one column")


def test_missing_column__fails_naming_it_for_every_column_rule(df):
    for text in [
        'IsComplete "nope"',
        'Completeness "nope" > 0.5',
        'IsUnique "nope"',
        'ColumnValues "nope" in ["a"]',
        'ColumnLength "nope" = 1',
        'Mean "nope" > 1',
        'Sum "nope" > 1',
        'StandardDeviation "nope" > 1',
    ]:
        result = check(df, text)
        assert result.outcome == "Failed", text
        assert 'column "nope" does not exist' in result.reason, text


RULESET = """Rules = [
    RowCount = 4,
    IsComplete "country",
    IsUnique "id",
    ColumnValues "country" in ["DE", "FR", "GBR"],
    Mean "amount" = 25,
    ColumnLength "missing_col" = 2,
    CustomSql "select sum(qty) from primary" = 10
]"""


def test_evaluate__report_counts_and_order(spark, df):
    report = evaluate(df, parse_dqdl(RULESET, "t.dqdl"), spark)
    assert report.outcome == "Failed"
    assert (report.rules_passed, report.rules_failed, report.row_count) == (5, 2, 4)
    assert [r.outcome for r in report.results] == [
        "Passed",
        "Failed",
        "Passed",
        "Passed",
        "Passed",
        "Failed",
        "Passed",
    ]
    assert report.results[1].metrics == {"Column.country.Completeness": 0.75}
    assert report.results[4].metrics == {"Column.amount.Mean": 25.0}
    assert "missing_col" in report.results[5].reason
    document = report.to_dict()
    assert json.loads(json.dumps(document)) == document
    assert document["rules"][0] == {
        "rule": "RowCount = 4",
        "outcome": "Passed",
        "metrics": {"Dataset.*.RowCount": 4},
        "reason": None,
    }


def test_evaluate__all_passing_is_passed(spark, df):
    rules = parse_dqdl('Rules = [ RowCount > 0, IsComplete "id", Sum "qty" between 9 and 11 ]', "t.dqdl")
    report = evaluate(df, rules, spark)
    assert (report.outcome, report.rules_passed, report.rules_failed) == ("Passed", 3, 0)


def test_evaluate__bad_regex_fails_only_its_rule(spark, df):
    rules = parse_dqdl(
        'Rules = [ ColumnValues "id" matches "(unclosed", RowCount = 4, Mean "qty" = 2.5 ]', "t.dqdl"
    )
    report = evaluate(df, rules, spark)
    assert [r.outcome for r in report.results] == ["Failed", "Passed", "Passed"]
    assert report.results[0].reason.startswith("could not evaluate")
    assert report.row_count == 4


def test_evaluate__bad_sql_fails_only_its_rule(spark, df):
    rules = parse_dqdl('Rules = [ CustomSql "select nope from primary" = 0, RowCount = 4 ]', "t.dqdl")
    report = evaluate(df, rules, spark)
    assert [r.outcome for r in report.results] == ["Failed", "Passed"]
    assert "could not evaluate" in report.results[0].reason
