"""Tests of etl.lineage: event files, eventType, datasets, DQ facet."""

from __future__ import annotations

import json

from etl.lineage import LineageDataset, LineageEmitter, dq_assertions_facet
from etl.storage import LocalStorage


class FakeClient:
    def __init__(self):
        self.events = []

    def emit(self, event):
        self.events.append(event)


def test_emitter__start_complete_files(tmp_path):
    emitter = LineageEmitter(LocalStorage(tmp_path), "s3://staging", "orders", "exec-1", "orders-etl")
    inputs = [LineageDataset("s3://raw/orders/ingest_date=2026-11-24")]
    outputs = [LineageDataset("s3://cur/orders/ingest_date=2026-11-24/run_id=exec-1", (("order_id", "string"),))]
    emitter.start(inputs, outputs)
    emitter.complete(inputs, outputs)
    folder = tmp_path / "staging/lineage/orders/exec-1"
    assert sorted(p.name for p in folder.iterdir()) == ["orders-etl-1-START.json", "orders-etl-2-COMPLETE.json"]
    start = json.loads((folder / "orders-etl-1-START.json").read_text())
    done = json.loads((folder / "orders-etl-2-COMPLETE.json").read_text())
    assert (start["eventType"], done["eventType"]) == ("START", "COMPLETE")
    assert start["run"]["runId"] == done["run"]["runId"]
    assert start["inputs"] == [{"namespace": "s3://raw", "name": "orders/ingest_date=2026-11-24",
                                "facets": {}, "inputFacets": {}}]
    assert done["outputs"][0]["facets"]["schema"]["fields"][0]["name"] == "order_id"
    assert done["run"]["facets"]["lake_run"]["run_id"] == "exec-1"


def test_emitter__fail_has_error_message_and_is_sent(tmp_path):
    client = FakeClient()
    emitter = LineageEmitter(LocalStorage(tmp_path), "s3://staging", "orders", "exec-2", "orders-dq", client=client)
    uri = emitter.fail(ValueError("boom"))
    assert uri == "s3://staging/lineage/orders/exec-2/orders-dq-1-FAIL.json"
    event = json.loads((tmp_path / "staging/lineage/orders/exec-2/orders-dq-1-FAIL.json").read_text())
    assert event["run"]["facets"]["errorMessage"]["message"] == "ValueError: boom"
    assert [e.eventType.value for e in client.events] == ["FAIL"]


def test_dq_assertions_facet__from_tuples(tmp_path):
    facet = dq_assertions_facet([("RowCount > 0", True, None), ('IsComplete "order_id"', False, "order_id")])
    emitter = LineageEmitter(LocalStorage(tmp_path), "s3://staging", "orders", "e", "orders-dq")
    emitter.complete([LineageDataset("s3://cur/orders/x", facets={"dataQualityAssertions": facet})])
    event = json.loads((tmp_path / "staging/lineage/orders/e/orders-dq-1-COMPLETE.json").read_text())
    assertions = event["inputs"][0]["facets"]["dataQualityAssertions"]["assertions"]
    assert [(a["assertion"], a["success"], a.get("column")) for a in assertions] == [
        ("RowCount > 0", True, None), ('IsComplete "order_id"', False, "order_id")]
