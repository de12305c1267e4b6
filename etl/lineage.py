"""OpenLineage run events for lake jobs, written as JSON files and optionally sent over HTTP.

Small API used by the ETL job and the DQ job:

    emitter = LineageEmitter(storage, staging_uri, dataset, run_id, job_name="orders-etl", url=None)
    emitter.start(inputs, outputs)            # START
    emitter.complete(inputs, outputs)         # COMPLETE (datasets may carry facets, e.g. DQ assertions)
    emitter.fail(error, inputs, outputs)      # FAIL, with an errorMessage run facet

Datasets are `LineageDataset(uri, columns=(...), facets={...})`: the URI `s3://bucket/a/b` becomes
namespace `s3://bucket`, name `a/b` (the OpenLineage naming convention for S3).

Every event is stored as `{staging_uri}/lineage/{dataset}/{run_id}/<job>-<n>-<eventType>.json`, where n is
the event's sequence number within this emitter (1 = START). When `url` is given the event is also sent with
the client's HTTP transport; a transport error is logged, never fails the job (lineage is observability, the
stored JSON file is the durable record).

The OpenLineage run id must be a UUID: it is derived deterministically (uuid5) from job name and run_id, so
the START and COMPLETE events of a re-run share it. The pipeline's own run id is in the `lake_run` facet.
`dq_assertions_facet([(rule, passed, column), ...])` builds the data-quality assertions dataset facet.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    BaseFacet,
    data_quality_assertions_dataset,
    error_message_run,
    schema_dataset,
)
from openlineage.client.serde import Serde

from etl.storage import Storage, join_uri, split_s3_uri

LOG = logging.getLogger(__name__)
NAMESPACE = "glue-lake"
PRODUCER = "https://github.com/glue-lake/etl"
RUN_ID_NAMESPACE = uuid.UUID("8a6b1c2e-5f0d-4b8e-9a51-2d9b6a0c7e11")


@dataclass(frozen=True)
class LineageDataset:
    """An input or output: an s3:// URI, optional (name, type) columns, optional extra dataset facets."""

    uri: str
    columns: tuple[tuple[str, str], ...] = ()
    facets: dict[str, Any] = field(default_factory=dict)

    def namespace_and_name(self) -> tuple[str, str]:
        bucket, key = split_s3_uri(self.uri)
        return f"s3://{bucket}", key.rstrip("/") or "/"

    def openlineage_facets(self) -> dict[str, Any]:
        facets = dict(self.facets)
        if self.columns:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    schema_dataset.SchemaDatasetFacetFields(name=name, type=type_name, ordinal_position=i + 1)
                    for i, (name, type_name) in enumerate(self.columns)
                ]
            )
        return facets


def dq_assertions_facet(
    results: Iterable[tuple[str, bool, str | None]],
) -> data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet:
    """Build the DataQualityAssertions facet from (rule text, passed, column or None) tuples.

    Attach it to the checked dataset: `LineageDataset(uri, facets={"dataQualityAssertions": facet})`.
    """
    return data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(assertion=rule, success=bool(passed), column=column)
            for rule, passed, column in results
        ]
    )


def openlineage_run_id(job_name: str, run_id: str) -> str:
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{job_name}/{run_id}"))


def _lake_run_facet(run_id: str, dataset: str) -> BaseFacet:
    """Custom run facet carrying the pipeline's own identifiers."""
    return BaseFacet().with_additional_properties(run_id=run_id, dataset=dataset)


class LineageEmitter:
    """Emits START / COMPLETE / FAIL events for one job run (see module docstring)."""

    def __init__(
        self,
        storage: Storage,
        staging_uri: str,
        dataset: str,
        run_id: str,
        job_name: str,
        url: str | None = None,
        client: Any = None,
    ) -> None:
        self.storage = storage
        self.folder = join_uri(staging_uri, "lineage", dataset, run_id)
        self.dataset = dataset
        self.run_id = run_id
        self.job_name = job_name
        self.sequence = 0
        self.written: list[str] = []
        self.client = client
        if self.client is None and url:
            from openlineage.client import OpenLineageClient
            from openlineage.client.transport.http import HttpConfig, HttpTransport

            self.client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=url)))

    def _event(
        self,
        state: RunState,
        inputs: Sequence[LineageDataset],
        outputs: Sequence[LineageDataset],
        run_facets: dict[str, Any] | None = None,
    ) -> RunEvent:
        facets: dict[str, Any] = {"lake_run": _lake_run_facet(self.run_id, self.dataset)}
        facets.update(run_facets or {})
        return RunEvent(
            eventType=state,
            eventTime=datetime.now(UTC).isoformat(),
            run=Run(runId=openlineage_run_id(self.job_name, self.run_id), facets=facets),
            job=Job(namespace=NAMESPACE, name=self.job_name),
            inputs=[InputDataset(*d.namespace_and_name(), facets=d.openlineage_facets()) for d in inputs],
            outputs=[OutputDataset(*d.namespace_and_name(), facets=d.openlineage_facets()) for d in outputs],
            producer=PRODUCER,
        )

    def emit(self, event: RunEvent) -> str:
        """Store the event as JSON (returns its URI) and send it when a client/URL is configured."""
        self.sequence += 1
        state = event.eventType.value if hasattr(event.eventType, "value") else str(event.eventType)
        uri = join_uri(self.folder, f"{self.job_name}-{self.sequence}-{state}.json")
        self.storage.write_text(uri, Serde.to_json(event) + "\n")
        self.written.append(uri)
        if self.client is not None:
            try:
                self.client.emit(event)
            except Exception as error:  # noqa: BLE001 - lineage must not fail the data job
                LOG.warning("could not send lineage event %s to the OpenLineage endpoint: %s", uri, error)
        return uri

    def start(self, inputs: Sequence[LineageDataset] = (), outputs: Sequence[LineageDataset] = ()) -> str:
        return self.emit(self._event(RunState.START, inputs, outputs))

    def complete(self, inputs: Sequence[LineageDataset] = (), outputs: Sequence[LineageDataset] = ()) -> str:
        return self.emit(self._event(RunState.COMPLETE, inputs, outputs))

    def fail(
        self,
        error: BaseException | str,
        inputs: Sequence[LineageDataset] = (),
        outputs: Sequence[LineageDataset] = (),
    ) -> str:
        message = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        facet = error_message_run.ErrorMessageRunFacet(message=message, programmingLanguage="PYTHON")
        return self.emit(self._event(RunState.FAIL, inputs, outputs, {"errorMessage": facet}))
