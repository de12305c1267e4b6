"""Spark session for job scripts: GlueContext's session in AWS Glue, plain local Spark elsewhere."""

from __future__ import annotations

from typing import Any

# Dates and timestamps are written as they are, in the proleptic Gregorian calendar, as Spark 4 does by default and as
# the Arrow-written files declare (etl/arrow_write.py). Spark 3.5's default raises on a date before 1582 or a timestamp
# before 1900, so a batch that rewrites a published file holding one would fail.
REBASE_CONF = {"spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
               "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED"}  # fmt: skip
LOCAL_SPARK_CONF = {
    # Small data offline: few shuffle partitions keep local runs fast on 2 cores.
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.ui.enabled": "false",
    "spark.sql.ansi.enabled": "false",
    # Local mode runs driver and executor in one JVM; 2g ran out of memory on the 1 GB benchmark.
    "spark.driver.memory": "4g",
    # Dates that do not match a column's format become null (and are rejected) instead of raising.
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    **REBASE_CONF,
}


def running_in_glue() -> bool:
    try:
        import awsglue  # noqa: F401
    except ImportError:
        return False
    return True


def build_spark(app_name: str) -> Any:
    """Return a SparkSession. In Glue it comes from GlueContext so job bookmarks and metrics work."""
    if running_in_glue():
        from awsglue.context import GlueContext
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        spark = glue_context.spark_session
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        spark.conf.set("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        for key, value in REBASE_CONF.items():
            spark.conf.set(key, value)
        return spark
    import os
    import sys

    from pyspark.sql import SparkSession

    # Python tasks (etl/fast_csv.py) run in this interpreter, which has the pinned pyarrow; Spark's default is
    # whatever `python3` is first on PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name).master("local[2]")
    for key, value in LOCAL_SPARK_CONF.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def parse_job_args(argv: list[str], required: list[str], optional: list[str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """Parse Glue-style `--key value` arguments (what `getResolvedOptions` does, without awsglue).

    Glue also passes its own arguments (`--JOB_ID`, `--job-bookmark-option`, ...); they are ignored.
    A missing required argument raises ValueError naming it.
    """
    values: dict[str, str] = {}
    index = 0
    while index < len(argv):
        token = argv[index]
        if token.startswith("--"):
            key, _, inline = token[2:].partition("=")
            if inline:
                values[key] = inline
            elif index + 1 < len(argv) and not argv[index + 1].startswith("--"):
                values[key] = argv[index + 1]
                index += 1
            else:
                values[key] = ""
        index += 1
    missing = [name for name in required if not values.get(name)]
    if missing:
        raise ValueError(f"missing job argument(s): {', '.join('--' + m for m in missing)}")
    wanted = set(required) | set(optional)
    return {k: v for k, v in values.items() if k in wanted}
