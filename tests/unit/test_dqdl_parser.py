"""Tests of quality.dqdl: every supported syntax form, error positions, the shipped rules file."""

from __future__ import annotations

import pytest

from quality.dqdl import Condition, DqdlSyntaxError, Rule, parse_dqdl


def one(rule_text: str) -> Rule:
    rules = parse_dqdl(f"Rules = [ {rule_text} ]", "t.dqdl")
    assert len(rules) == 1
    return rules[0]


@pytest.mark.parametrize(
    ("text", "rule_type", "columns", "condition"),
    [
        ("RowCount > 0", "RowCount", (), Condition(">", (0,))),
        ("RowCount >= 10", "RowCount", (), Condition(">=", (10,))),
        ("RowCount < 5", "RowCount", (), Condition("<", (5,))),
        ("RowCount <= 5", "RowCount", (), Condition("<=", (5,))),
        ("RowCount = 3", "RowCount", (), Condition("=", (3,))),
        ("RowCount != 3", "RowCount", (), Condition("!=", (3,))),
        ("RowCount between 1 and 100", "RowCount", (), Condition("between", (1, 100))),
        ("RowCount not between 1 and 100", "RowCount", (), Condition("not between", (1, 100))),
        ('IsComplete "order_id"', "IsComplete", ("order_id",), None),
        ('Completeness "country" >= 0.9', "Completeness", ("country",), Condition(">=", (0.9,))),
        ('IsUnique "order_id"', "IsUnique", ("order_id",), None),
        ('Uniqueness "email" > 0.95', "Uniqueness", ("email",), Condition(">", (0.95,))),
        ('ColumnExists "amount"', "ColumnExists", ("amount",), None),
        ('ColumnValues "c" in ["EUR", "USD"]', "ColumnValues", ("c",), Condition("in", ("EUR", "USD"))),
        ('ColumnValues "q" in [1, 2, 3]', "ColumnValues", ("q",), Condition("in", (1, 2, 3))),
        ('ColumnValues "c" not in ["XXX"]', "ColumnValues", ("c",), Condition("not in", ("XXX",))),
        (
            'ColumnValues "a" between -0.01 and 100000',
            "ColumnValues",
            ("a",),
            Condition("between", (-0.01, 100000)),
        ),
        (
            'ColumnValues "a" not between -5 and -1',
            "ColumnValues",
            ("a",),
            Condition("not between", (-5, -1)),
        ),
        ('ColumnValues "a" > -2.5', "ColumnValues", ("a",), Condition(">", (-2.5,))),
        ('ColumnValues "s" = "paid"', "ColumnValues", ("s",), Condition("=", ("paid",))),
        ('ColumnValues "s" != "paid"', "ColumnValues", ("s",), Condition("!=", ("paid",))),
        (
            'ColumnValues "id" matches "o[0-9]+\\.x"',
            "ColumnValues",
            ("id",),
            Condition("matches", ("o[0-9]+\\.x",)),
        ),
        ('ColumnValues "id" not matches "x"', "ColumnValues", ("id",), Condition("not matches", ("x",))),
        ('ColumnLength "country" = 2', "ColumnLength", ("country",), Condition("=", (2,))),
        ('ColumnLength "name" between 1 and 40', "ColumnLength", ("name",), Condition("between", (1, 40))),
        ('Mean "amount" between 1 and 5000', "Mean", ("amount",), Condition("between", (1, 5000))),
        ('Sum "amount" < 1000000.5', "Sum", ("amount",), Condition("<", (1000000.5,))),
        ('StandardDeviation "amount" <= 20', "StandardDeviation", ("amount",), Condition("<=", (20,))),
    ],
)
def test_parse__supported_forms(text, rule_type, columns, condition):
    rule = one(text)
    assert (rule.rule_type, rule.columns, rule.condition) == (rule_type, columns, condition)
    assert rule.text == text
    assert rule.threshold is None


def test_parse__custom_sql_keeps_sql_and_condition():
    rule = one("CustomSql \"select count(*) from primary where status <> 'x'\" between 0 and 3")
    assert rule.rule_type == "CustomSql"
    assert rule.sql == "select count(*) from primary where status <> 'x'"
    assert rule.columns == ()
    assert rule.condition == Condition("between", (0, 3))


def test_parse__with_threshold_on_column_values():
    rule = one('ColumnValues "c" in ["a", "b"] with threshold >= 0.95')
    assert rule.condition == Condition("in", ("a", "b"))
    assert rule.threshold == Condition(">=", (0.95,))
    assert rule.text == 'ColumnValues "c" in ["a", "b"] with threshold >= 0.95'


def test_parse__escaped_quote_in_string():
    rule = one('ColumnValues "c" = "say \\"hi\\""')
    assert rule.values == ('say "hi"',)


def test_parse__comments_lines_and_columns():
    text = '# header comment\nRules = [\n    RowCount > 0,   # trailing comment\n\n  IsComplete "a"\n]\n'
    rules = parse_dqdl(text, "t.dqdl")
    assert [(r.rule_type, r.line, r.column) for r in rules] == [("RowCount", 3, 5), ("IsComplete", 5, 3)]


def test_parse__shipped_orders_rules(repo_root):
    path = repo_root / "datasets" / "orders" / "rules.dqdl"
    rules = parse_dqdl(path.read_text(encoding="utf-8"), str(path))
    assert len(rules) == 12
    assert rules[0].rule_type == "RowCount"
    assert rules[-1].rule_type == "CustomSql"
    assert rules[-1].sql == "select count(*) from primary where amount < 0 and status <> 'refunded'"
    assert rules[6].condition == Condition("between", (-0.01, 100000))


def error_of(text: str) -> DqdlSyntaxError:
    with pytest.raises(DqdlSyntaxError) as info:
        parse_dqdl(text, "datasets/orders/rules.dqdl")
    return info.value


def test_error__unknown_rule_type_position_and_message():
    error = error_of('Rules = [\n    RowCount > 0,\n    ColumnValuez "a" in ["x"]\n]')
    assert (error.source, error.line, error.column) == ("datasets/orders/rules.dqdl", 3, 5)
    assert str(error).startswith(
        "datasets/orders/rules.dqdl:3:5: unknown rule type 'ColumnValuez'; expected one of "
    )
    assert "ColumnValues" in str(error)


def test_error__bad_operator():
    error = error_of('Rules = [\n  Completeness "a" => 0.9\n]')
    assert (error.line, error.column) == (2, 20)
    assert "unknown operator '=>'" in error.message


def test_error__missing_threshold_operator():
    error = error_of('Rules = [ Completeness "a" 0.9 ]')
    assert (error.line, error.column) == (1, 28)
    assert "expected a comparison" in error.message


def test_error__unterminated_string_points_at_opening_quote():
    error = error_of('Rules = [\n  IsComplete "order_id\n]')
    assert (error.line, error.column) == (2, 14)
    assert error.message == "unterminated string"


def test_error__missing_closing_bracket():
    error = error_of("Rules = [\n  RowCount > 0\n")
    assert (error.line, error.column) == (3, 1)
    assert error.message == "expected ',' or ']' after a rule, got end of file"


def test_error__missing_comma_between_rules():
    error = error_of('Rules = [ RowCount > 0 IsComplete "a" ]')
    assert (error.line, error.column) == (1, 24)
    assert "got 'IsComplete'" in error.message


def test_error__missing_rules_header():
    error = error_of("# no header\n[ RowCount > 0 ]")
    assert (error.line, error.column) == (2, 1)
    assert "'Rules = ['" in error.message


def test_error__missing_open_bracket():
    error = error_of("Rules = RowCount > 0")
    assert (error.line, error.column) == (1, 9)


def test_error__trailing_comma_rejected():
    error = error_of("Rules = [ RowCount > 0, ]")
    assert (error.line, error.column) == (1, 25)
    assert "trailing comma" in error.message


def test_error__empty_ruleset():
    assert "empty ruleset" in error_of("Rules = [ ]").message


def test_error__column_name_must_be_quoted():
    error = error_of("Rules = [ IsComplete order_id ]")
    assert (error.line, error.column) == (1, 22)
    assert "quoted column name" in error.message


def test_error__in_list_not_allowed_for_scalar_rules():
    error = error_of('Rules = [ Mean "a" in [1, 2] ]')
    assert (error.line, error.column) == (1, 20)


def test_error__reversed_between_range():
    error = error_of('Rules = [ ColumnValues "a" between 5 and 1 ]')
    assert (error.line, error.column) == (1, 42)
    assert "empty range" in error.message


def test_error__text_after_closing_bracket():
    error = error_of("Rules = [ RowCount > 0 ] extra")
    assert (error.line, error.column) == (1, 26)
