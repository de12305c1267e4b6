"""Driver-side line counting (etl/readers.py::LineCounter): the counts the row accounting checks Spark against."""

from __future__ import annotations

import random

import pytest

from etl.readers import BOM, LineCounter, line_breaks

HEADER = "id,name"


def spark_lines(text: str) -> list[str]:
    """Lines as Spark's text reader and `_text_lines` see them, written the obvious way: split at \\r\\n, \\n and a
    lone \\r, strip one leading BOM per line, drop lines that are blank after trimming spaces."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [line.removeprefix(BOM) for line in lines if line.removeprefix(BOM).strip(" ")]


def counted(text: str, chunk: int) -> LineCounter:
    counter, pending = LineCounter(), ""
    for start in range(0, len(text), chunk):
        pending = counter.add(pending + text[start : start + chunk])
    counter.add_last(pending)
    return counter


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
def test_line_counter__equals_a_line_by_line_count_at_any_chunk_boundary(chunk):
    rng = random.Random(chunk)
    pieces = [HEADER, "1,a", "2,b", "", " ", "   ", BOM + HEADER, BOM, "3, c", " 4,d ", HEADER + " ", "id", ","]
    breaks = ["\n", "\r\n", "\r", "\n\n", "\r\r\n"]
    for case in range(40):
        text = BOM * (case % 2) + "".join(rng.choice(pieces) + rng.choice(breaks) for _ in range(rng.randint(0, 30)))
        if case % 3 == 0:
            text += rng.choice(pieces)  # no line break after the last line
        expected = spark_lines(text)
        counter = counted(text, chunk)
        first = expected[0] if expected else None
        assert (counter.first, counter.lines, counter.header_lines) == (
            first, len(expected), sum(line == first for line in expected)), repr(text)  # fmt: skip


def test_line_counter__only_blank_lines_have_no_first_line_and_no_rows():
    counter = counted(" \n\r\n   \r" + BOM + "\n", chunk=3)
    assert (counter.first, counter.lines, counter.header_lines) == (None, 0, 0)


def test_line_counter__a_line_containing_the_header_is_not_a_header_line():
    counter = counted(f"{HEADER}\nx{HEADER}\n{HEADER}x\n{HEADER}\n{HEADER}", chunk=5)
    assert (counter.first, counter.lines, counter.header_lines) == (HEADER, 5, 3)


def test_line_breaks__crlf_is_one_break_and_a_lone_cr_is_one():
    assert [line_breaks(t) for t in ("a\r\nb\r\n", "a\rb\r", "a\nb", "a\r\r\n", "")] == [2, 2, 1, 2, 0]
