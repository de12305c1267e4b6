"""What the real Glue jobs write, for runs that simulate Glue instead of running Spark (workflow tests,
`bench/burst.py`): the DQ result document the state machine reads after the DQ job."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from etl.storage import LocalStorage
from quality.job import compact_summary, result_uri, summary_uri

RULES_PER_PARTITION = 12  # datasets/orders/rules.dqdl


def dq_result_writer(
    failing: tuple[str, ...] | str = (),
    rules_failed_per_partition: int = 2,
    quarantined: tuple[dict, ...] = (),
    ingested_at: str | None = None,
) -> Callable[[dict[str, str], Path], None]:
    """A `SimulatedJob.writes` callback writing `dq_result.json` and `dq_summary.json` in the DQ job's format.

    `failing`: the partitions whose rules fail ("all" for every partition of the run); `quarantined`: the
    ETL's quarantined objects ({"object", "partition", "reason"}); `ingested_at`: the ETL's listing time
    (default: now).
    """

    def write(args: dict[str, str], root: Path) -> None:
        dataset, run_id, partitions = args["--dataset"], args["--run_id"], json.loads(args["--partitions"])
        failed = list(partitions) if failing == "all" else [p for p in partitions if p in failing]
        passed = [p for p in partitions if p not in failed]
        document = {
            "dataset": dataset,
            "run_id": run_id,
            "partitions": partitions,
            "outcome": "Failed" if failed else "Passed",
            "partitions_passed": passed,
            "partitions_failed": failed,
            "passed_count": len(passed),
            "failed_count": len(failed),
            "rules_passed": RULES_PER_PARTITION * len(partitions) - rules_failed_per_partition * len(failed),
            "rules_failed": rules_failed_per_partition * len(failed),
            "row_count": len(partitions),
            # One entry per rule and partition, as the real job writes them (~0.3 KB each).
            "rules": [
                {"partition": p, "rule": f'ColumnValues "currency" in ["EUR", "USD", "GBP"] with threshold > 0.9 #{n}',
                 "outcome": "Failed" if p in failed and n < rules_failed_per_partition else "Passed",
                 "metrics": {"Column.currency.Compliance": 0.75, "Column.currency.Rows": 400},
                 "reason": "100 of 400 non-null values of \"currency\" are not in the set"
                 if p in failed and n < rules_failed_per_partition else None}
                for p in partitions for n in range(RULES_PER_PARTITION)
            ],
            "etl": {"input_rows": 3, "output_rows": 1, "rejected_rows": 1, "duplicates_removed": 1,
                    "ingested_at": ingested_at or datetime.now(UTC).isoformat(timespec="microseconds"),
                    "quarantined_objects": list(quarantined)},
        }  # fmt: skip
        storage = LocalStorage(root)
        details = result_uri(args["--staging_uri"], dataset, run_id)
        storage.write_text(details, json.dumps(document, indent=2))
        storage.write_text(summary_uri(args["--staging_uri"], dataset, run_id),
                           json.dumps(compact_summary(document, details)))

    return write
