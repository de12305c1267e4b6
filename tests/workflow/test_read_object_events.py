"""The synthesized "Read object events" state (one JSONata state) on a mixed batch, executed alone in the emulator:
the same classification the per-record Choice made, for a whole batch in one transition."""

from __future__ import annotations

import json

import pytest

from lake.executions import run_definition
from lake.local.emulator import Emulator

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
    ]}  # fmt: skip


def test_read_object_events__a_single_record_stays_a_list_and_nothing_kept_says_so(read_object_events):
    assert run_state(read_object_events, [record("orders/ingest_date=2026-11-24/a.csv")])["objects"] == [
        {"keep": True, "unpartitioned": False, "dataset": "orders", "partition": "ingest_date=2026-11-24",
         "key": "orders/ingest_date=2026-11-24/a.csv"}]  # fmt: skip
    assert run_state(read_object_events, [record("orders/ingest_date=2026-11-24/x.tmp")]) == {
        "any": False, "unpartitioned": False, "objects": [{"keep": False, "unpartitioned": False}]}
