"""Parser for the subset of AWS Glue Data Quality Definition Language (DQDL) that this lake supports.

There is no maintained Python DQDL parser on PyPI (AWS ships its grammar only inside the Glue service),
so this is a small hand-written tokenizer plus recursive-descent parser. docs/dqdl.md lists the subset.

    Rules = [
        RowCount > 0,                                   # comments run to the end of the line
        IsComplete "order_id",
        ColumnValues "currency" in ["EUR", "USD"],
        CustomSql "select count(*) from primary where amount < 0" = 0
    ]

`parse_dqdl(text, source)` returns a tuple of frozen `Rule`s; any problem raises `DqdlSyntaxError`, whose
`str()` is `<source>:<line>:<column>: <message>` (1-based line and column). A trailing comma before `]`
is rejected, so that every file accepted here is also accepted by Glue Data Quality.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Union

Value = Union[int, float, str]  # noqa: UP007 - readable alias

COMPARISONS = (">", ">=", "<", "<=", "=", "!=")
KIND_SCALAR = "scalar"  # comparison / between / not between on a number
KIND_VALUES = "values"  # scalar forms, plus in / not in / matches / not matches, on a column's values

# rule type -> (number of quoted arguments, kind of condition or None when the rule takes none)
RULE_TYPES: dict[str, tuple[int, str | None]] = {
    "RowCount": (0, KIND_SCALAR),
    "IsComplete": (1, None),
    "Completeness": (1, KIND_SCALAR),
    "IsUnique": (1, None),
    "Uniqueness": (1, KIND_SCALAR),
    "ColumnExists": (1, None),
    "ColumnValues": (1, KIND_VALUES),
    "ColumnLength": (1, KIND_SCALAR),
    "Mean": (1, KIND_SCALAR),
    "Sum": (1, KIND_SCALAR),
    "StandardDeviation": (1, KIND_SCALAR),
    "CustomSql": (1, KIND_SCALAR),
}
WITH_THRESHOLD = frozenset({"ColumnValues"})  # rules that accept `with threshold <op> <number>`


class DqdlSyntaxError(ValueError):
    """A rules file is not valid (supported) DQDL. `str()` is `source:line:column: message`."""

    def __init__(self, source: str, line: int, column: int, message: str) -> None:
        self.source = source
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{source}:{line}:{column}: {message}")


@dataclass(frozen=True)
class Condition:
    """What a metric or value must satisfy: `>= 0.9`, `between 1 and 5`, `in ["a", "b"]`, `matches "re"`."""

    operator: str  # one of COMPARISONS, "between", "not between", "in", "not in", "matches", "not matches"
    values: tuple[Value, ...]

    def test(self, value: Value) -> bool:
        """Evaluate on a Python value (scalar metrics)."""
        op, vals = self.operator, self.values
        if op in ("between", "not between"):
            inside = vals[0] <= value <= vals[1]  # type: ignore[operator]
            return inside if op == "between" else not inside
        if op in ("in", "not in"):
            return (value in vals) == (op == "in")
        if op in ("matches", "not matches"):
            found = re.fullmatch(str(vals[0]), str(value)) is not None
            return found == (op == "matches")
        other = vals[0]
        return {
            ">": lambda: value > other,  # type: ignore[operator]
            ">=": lambda: value >= other,  # type: ignore[operator]
            "<": lambda: value < other,  # type: ignore[operator]
            "<=": lambda: value <= other,  # type: ignore[operator]
            "=": lambda: value == other,
            "!=": lambda: value != other,
        }[op]()

    def describe(self) -> str:
        """DQDL text of the condition: `between 1 and 5000`, `in ["EUR", "USD"]`, `>= 0.9`."""
        if self.operator in ("between", "not between"):
            return f"{self.operator} {format_value(self.values[0])} and {format_value(self.values[1])}"
        if self.operator in ("in", "not in"):
            return f"{self.operator} [{', '.join(format_value(v) for v in self.values)}]"
        return f"{self.operator} {format_value(self.values[0])}"


@dataclass(frozen=True)
class Rule:
    """One parsed rule. `text` is the rule as written; `line`/`column` locate its first character."""

    rule_type: str
    columns: tuple[str, ...]
    condition: Condition | None
    text: str
    line: int
    column: int = 1
    sql: str | None = None  # CustomSql only (then `columns` is empty)
    threshold: Condition | None = None  # `with threshold ...` (ColumnValues only)

    @property
    def target(self) -> str | None:
        """The rule's column, if it has one."""
        return self.columns[0] if self.columns else None

    @property
    def operator(self) -> str | None:
        return self.condition.operator if self.condition else None

    @property
    def values(self) -> tuple[Value, ...]:
        return self.condition.values if self.condition else ()


def format_value(value: Value) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, float):
        return format(value, ".6g")
    return str(value)


# ---------------------------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class Token:
    kind: str  # "ident", "string", "number", "op", "punct", "eof"
    value: Value
    line: int
    column: int
    offset: int
    end: int

    def describe(self) -> str:
        if self.kind == "eof":
            return "end of file"
        if self.kind == "string":
            return f"string {format_value(self.value)}"
        if self.kind == "number":
            return f"number {self.value}"
        return f"'{self.value}'"


_NUMBER = re.compile(r"-?\d+(\.\d+)?(?![A-Za-z_\d.])")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r"[<>=!]+")
_PUNCT = "[],()"


class _Lexer:
    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\n", text)]

    def position(self, offset: int) -> tuple[int, int]:
        line = 0
        for index, start in enumerate(self.line_starts):
            if start > offset:
                break
            line = index
        return line + 1, offset - self.line_starts[line] + 1

    def error(self, offset: int, message: str) -> DqdlSyntaxError:
        return DqdlSyntaxError(self.source, *self.position(offset), message)

    def token(self, kind: str, value: Value, start: int, end: int) -> Token:
        return Token(kind, value, *self.position(start), start, end)

    def tokens(self) -> list[Token]:
        text, pos, out = self.text, 0, []
        while pos < len(text):
            char = text[pos]
            if char.isspace():
                pos += 1
            elif char == "#":
                newline = text.find("\n", pos)
                pos = len(text) if newline < 0 else newline
            elif char == '"':
                value, end = self._string(pos)
                out.append(self.token("string", value, pos, end))
                pos = end
            elif match := _NUMBER.match(text, pos):
                number = match.group()
                out.append(
                    self.token("number", float(number) if "." in number else int(number), pos, match.end())
                )
                pos = match.end()
            elif match := _IDENT.match(text, pos):
                out.append(self.token("ident", match.group(), pos, match.end()))
                pos = match.end()
            elif match := _OPERATOR.match(text, pos):
                if match.group() not in COMPARISONS:
                    raise self.error(
                        pos, f"unknown operator '{match.group()}'; expected one of {', '.join(COMPARISONS)}"
                    )
                out.append(self.token("op", match.group(), pos, match.end()))
                pos = match.end()
            elif char in _PUNCT:
                out.append(self.token("punct", char, pos, pos + 1))
                pos += 1
            else:
                raise self.error(pos, f"unexpected character {char!r}")
        out.append(self.token("eof", "", len(text), len(text)))
        return out

    def _string(self, start: int) -> tuple[str, int]:
        """A double-quoted string; `\\"` and `\\\\` are escapes, other backslashes stay (regexes)."""
        text, pos, chars = self.text, start + 1, []
        while pos < len(text):
            char = text[pos]
            if char == "\\" and pos + 1 < len(text) and text[pos + 1] in '"\\':
                chars.append(text[pos + 1])
                pos += 2
            elif char == '"':
                return "".join(chars), pos + 1
            elif char == "\n":
                break
            else:
                chars.append(char)
                pos += 1
        raise self.error(start, "unterminated string")


# ------------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.lexer = _Lexer(text, source)
        self.text = text
        self.tokens = self.lexer.tokens()
        self.index = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def error(self, token: Token, message: str) -> DqdlSyntaxError:
        return DqdlSyntaxError(self.lexer.source, token.line, token.column, message)

    def is_word(self, word: str) -> bool:
        return self.current.kind == "ident" and self.current.value == word

    def expect(self, kind: str, value: Value | None, what: str) -> Token:
        token = self.current
        if token.kind != kind or (value is not None and token.value != value):
            raise self.error(token, f"expected {what}, got {token.describe()}")
        return self.advance()

    def ruleset(self) -> tuple[Rule, ...]:
        self.expect("ident", "Rules", "'Rules = [' at the start of the rules")
        self.expect("op", "=", "'=' after 'Rules'")
        self.expect("punct", "[", "'[' after 'Rules ='")
        if self.current.kind == "punct" and self.current.value == "]":
            raise self.error(self.current, "empty ruleset; at least one rule is required")
        rules = [self.rule()]
        while self.current.kind == "punct" and self.current.value == ",":
            self.advance()
            if self.current.kind == "punct" and self.current.value == "]":
                raise self.error(self.current, "trailing comma before ']' (not allowed by DQDL)")
            rules.append(self.rule())
        self.expect("punct", "]", "',' or ']' after a rule")
        if self.current.kind != "eof":
            raise self.error(self.current, f"unexpected {self.current.describe()} after the closing ']'")
        return tuple(rules)

    def rule(self) -> Rule:
        start = self.current
        if start.kind != "ident":
            raise self.error(start, f"expected a rule type, got {start.describe()}")
        if start.value not in RULE_TYPES:
            raise self.error(
                start, f"unknown rule type '{start.value}'; expected one of {', '.join(RULE_TYPES)}"
            )
        rule_type = str(self.advance().value)
        arity, kind = RULE_TYPES[rule_type]
        args = []
        for _ in range(arity):
            what = "a quoted SQL statement" if rule_type == "CustomSql" else "a quoted column name"
            token = self.expect("string", None, f"{what} after {rule_type}")
            if not str(token.value).strip():
                raise self.error(token, f"empty {what[2:]}")
            args.append(str(token.value))
        condition = self.condition(rule_type, kind) if kind else None
        threshold = None
        if rule_type in WITH_THRESHOLD and self.is_word("with"):
            self.advance()
            self.expect("ident", "threshold", "'threshold' after 'with'")
            threshold = self.condition(rule_type, KIND_SCALAR)
        end = self.tokens[self.index - 1].end
        sql = args[0] if rule_type == "CustomSql" else None
        columns = () if rule_type == "CustomSql" else tuple(args)
        return Rule(
            rule_type,
            columns,
            condition,
            self.text[start.offset : end],
            start.line,
            start.column,
            sql=sql,
            threshold=threshold,
        )

    def number(self, after: str) -> int | float:
        return self.expect("number", None, f"a number after {after}").value  # type: ignore[return-value]

    def condition(self, rule_type: str, kind: str) -> Condition:
        token = self.current
        negated = self.is_word("not")
        if negated:
            self.advance()
        word = self.current.value if self.current.kind == "ident" else None
        if word == "between":
            self.advance()
            low = self.number("'between'")
            self.expect("ident", "and", "'and' in 'between <low> and <high>'")
            high_token = self.current
            high = self.number("'and'")
            if low > high:
                raise self.error(high_token, f"empty range: {low} is greater than {high}")
            return Condition("not between" if negated else "between", (low, high))
        if kind == KIND_VALUES and word == "in":
            self.advance()
            return Condition("not in" if negated else "in", self.value_list())
        if kind == KIND_VALUES and word == "matches":
            self.advance()
            pattern = self.expect("string", None, "a quoted regular expression after 'matches'").value
            return Condition("not matches" if negated else "matches", (pattern,))
        if not negated and self.current.kind == "op":
            operator = str(self.advance().value)
            if kind == KIND_VALUES and operator in ("=", "!=") and self.current.kind == "string":
                return Condition(operator, (self.advance().value,))
            return Condition(operator, (self.number(f"'{operator}'"),))
        forms = "a comparison (>, >=, <, <=, =, !=), 'between'"
        if kind == KIND_VALUES:
            forms += ", 'in', 'matches'"
        raise self.error(
            token if negated else self.current, f"expected {forms} after {rule_type}, got {token.describe()}"
        )

    def value_list(self) -> tuple[Value, ...]:
        self.expect("punct", "[", "'[' after 'in'")
        values: list[Value] = []
        while True:
            token = self.current
            if token.kind not in ("string", "number"):
                raise self.error(token, f"expected a string or number in the list, got {token.describe()}")
            values.append(self.advance().value)
            if self.current.kind == "punct" and self.current.value == ",":
                self.advance()
                continue
            self.expect("punct", "]", "',' or ']' in the value list")
            return tuple(values)


def parse_dqdl(text: str, source: str = "<rules>") -> tuple[Rule, ...]:
    """Parse a DQDL ruleset (`Rules = [ ... ]`). Raises DqdlSyntaxError naming source:line:column."""
    return _Parser(text, source).ruleset()
