"""The synthesized "Read object events" state (one JSONata state) on a mixed batch, executed alone in the emulator:
the same classification the per-record Choice made, for a whole batch in one transition."""

from __future__ import annotations

import json
import random
import re

import pytest

from lake.executions import run_definition
from lake.local.emulator import Emulator
from workflows.pipeline import IGNORED_KEY_PATTERNS, _glob_test

STATE = "Read object events"


@pytest.fixture(scope="module")
def read_object_events(local_stack) -> dict:
    (machine,) = [r for r in local_stack.template["Resources"].values()
                  if r["Type"] == "AWS::StepFunctions::StateMachine"]  # fmt: skip
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    states = json.loads("".join(p if isinstance(p, str) else "TOKEN" for p in parts))["States"]
    return {**states[STATE], "End": True, "Next": None}


def run_state(state: dict, records: list[dict]) -> dict:
    state = {k: v for k, v in state.items() if v is not None and k != "Next"}
    with Emulator() as emulator:
        result = run_definition(emulator.client("stepfunctions"), {"StartAt": STATE, "States": {STATE: state}},
                                records, timeout=30)  # fmt: skip
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.visited == [STATE]  # one state for the whole batch
    return result.output


def record(key: str, size: int = 10) -> dict:
    return {"bucket": "raw", "key": key, "size": size, "time": "2026-11-24T10:00:00Z"}


def test_read_object_events__classifies_every_record_of_a_mixed_batch(read_object_events):
    output = run_state(read_object_events, [
        record("orders/ingest_date=2026-11-24/a.csv"),
        record("orders/ingest_date=2026-11-24/empty.csv", size=0),
        record("orders/ingest_date=2026-11-24/_temporary/0/part-0.csv"),
        record("orders/ingest_date=2026-11-24/x.csv.tmp"),
        record("orders/ingest_date=2026-11-24/.hidden"),
        record("orders/ingest_date=2026-11-24/_SUCCESS"),
        record("orders/ingest_date=2026-11-24_$folder$"),
        record("orders/loose.csv"),
        record("customers/a.csv"),
        record("orders/ingest_date=2026-11-25/sub/b.csv.gz"),
        record("orders/ingest_date=2026-11-26/line\nbreak.csv"),
    ])  # fmt: skip
    skip = {"keep": False, "unpartitioned": False}
    assert output == {"any": True, "unpartitioned": True, "objects": [
        {"keep": True, "unpartitioned": False, "dataset": "orders", "partition": "ingest_date=2026-11-24",
         "key": "orders/ingest_date=2026-11-24/a.csv"},
        skip, skip, skip, skip, skip, skip,
        {"keep": False, "unpartitioned": True, "key": "orders/loose.csv", "expected": "orders/ingest_date=<value>/"},
        skip,
        {"keep": True, "unpartitioned": False, "dataset": "orders", "partition": "ingest_date=2026-11-25",
         "key": "orders/ingest_date=2026-11-25/sub/b.csv.gz"},
        {"keep": True, "unpartitioned": False, "dataset": "orders", "partition": "ingest_date=2026-11-26",
         "key": "orders/ingest_date=2026-11-26/line\nbreak.csv"},
    ]}  # fmt: skip


def test_read_object_events__a_single_record_stays_a_list_and_nothing_kept_says_so(read_object_events):
    assert run_state(read_object_events, [record("orders/ingest_date=2026-11-24/a.csv")])["objects"] == [
        {"keep": True, "unpartitioned": False, "dataset": "orders", "partition": "ingest_date=2026-11-24",
         "key": "orders/ingest_date=2026-11-24/a.csv"}]  # fmt: skip
    assert run_state(read_object_events, [record("orders/ingest_date=2026-11-24/x.tmp")]) == {
        "any": False, "unpartitioned": False, "objects": [{"keep": False, "unpartitioned": False}]}


def string_matches(key: str, pattern: str) -> bool:
    """Step Functions' StringMatches: `*` is any run of characters, line breaks included; the whole key must match
    (https://docs.aws.amazon.com/step-functions/latest/dg/state-choice.html)."""
    return re.fullmatch(".*".join(re.escape(part) for part in pattern.split("*")), key, re.DOTALL) is not None


def test_glob_test__agrees_with_string_matches_on_awkward_keys():
    """The JSONata tests the classification is built from match exactly what the per-object Choice's StringMatches
    did, for line breaks, short keys and overlapping ends too (a regex `.` stops at line breaks)."""
    import jsonata

    patterns = [*IGNORED_KEY_PATTERNS, "orders/ingest_date=*/*", "orders/*", "ab*ba", "a*b*c", "exact"]
    pieces = ["a", "b", "c", "/", ".", "_", "$", "=", "*", "\n", "\r", "\u2028", "orders/", "ingest_date=", "tmp",
              "_temporary/", "_SUCCESS", "folder"]  # fmt: skip
    generator = random.Random(7)
    keys = ["", "aba", "abba", ".tmp", "x.tmp\n", "orders/ingest_date=x/a\nb.csv", "orders/loose\n.csv", "exact"]
    keys += ["".join(generator.choice(pieces) for _ in range(generator.randint(0, 8))) for _ in range(1500)]
    for pattern in patterns:
        test = jsonata.Jsonata(f"($o := $$; {_glob_test('$o.key', pattern)})")
        wrong = [key for key in keys if bool(test.evaluate({"key": key})) != string_matches(key, pattern)]
        assert wrong == [], (pattern, wrong[:5])
    with pytest.raises(ValueError, match=r"key pattern 'a\\\\\*b': only patterns"):
        _glob_test("$o.key", "a\\*b")
