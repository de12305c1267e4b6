"""`lake query`: SQL over the curated tables. Athena in AWS; DuckDB offline, reading exactly the
partitions the Glue catalog publishes (so unpublished or quarantined runs are invisible, as in Athena)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from etl.storage import LocalStorage
from lake.errors import LakeError


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]


def _partition_values(glue: Any, database: str, table: str) -> list[dict]:
    partitions: list[dict] = []
    for page in glue.get_paginator("get_partitions").paginate(DatabaseName=database, TableName=table):
        partitions.extend(page["Partitions"])
    return partitions


def local_table_sql(glue: Any, storage: LocalStorage, database: str, table: str) -> str | None:
    """A DuckDB SELECT over the table's published partitions, or None when it has none."""
    described = glue.get_table(DatabaseName=database, Name=table)["Table"]
    keys = [k["Name"] for k in described.get("PartitionKeys", [])]
    selects = []
    for partition in sorted(_partition_values(glue, database, table), key=lambda p: p["Values"]):
        folder = storage.local_path(partition["StorageDescriptor"]["Location"])
        if not any(folder.glob("*.parquet")):
            continue
        literals = ", ".join(
            f"'{value.replace(chr(39), chr(39) * 2)}' AS {key}"
            for key, value in zip(keys, partition["Values"], strict=True)
        )
        # The run folder sits under `key=value/run_id=.../`: no Hive columns from the path, the catalog's value wins.
        files = f"read_parquet('{folder.as_posix()}/*.parquet', hive_partitioning = false)"
        selects.append(f"SELECT *, {literals} FROM {files}")
    return " UNION ALL BY NAME ".join(selects) if selects else None


def query_local(sql: str, *, glue: Any, storage: LocalStorage, database: str) -> QueryResult:
    import duckdb

    connection = duckdb.connect()
    tables = [t["Name"] for page in glue.get_paginator("get_tables").paginate(DatabaseName=database)
              for t in page["TableList"]]  # fmt: skip
    for table in tables:
        select = local_table_sql(glue, storage, database, table)
        if select is None:
            described = glue.get_table(DatabaseName=database, Name=table)["Table"]
            columns = [*described["StorageDescriptor"]["Columns"], *described.get("PartitionKeys", [])]
            ddl = ", ".join(f'"{c["Name"]}" VARCHAR' for c in columns)
            connection.execute(f'CREATE TABLE "{table}" ({ddl})')
        else:
            connection.execute(f'CREATE VIEW "{table}" AS {select}')
    try:
        cursor = connection.execute(sql)
    except duckdb.Error as error:
        raise LakeError(f"query failed: {error}") from error
    return QueryResult(columns=[d[0] for d in cursor.description or []], rows=cursor.fetchall())


def query_athena(sql: str, *, athena: Any, workgroup: str, database: str, timeout_s: float = 300) -> QueryResult:
    started = athena.start_query_execution(
        QueryString=sql, WorkGroup=workgroup, QueryExecutionContext={"Database": database}
    )
    query_id = started["QueryExecutionId"]
    deadline = time.monotonic() + timeout_s
    while True:
        status = athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Status"]
        if status["State"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            break
        if time.monotonic() > deadline:
            raise LakeError(f"Athena query {query_id} still {status['State']} after {timeout_s:.0f} s")
        time.sleep(1)
    if status["State"] != "SUCCEEDED":
        raise LakeError(f"Athena query {query_id} {status['State']}: {status.get('StateChangeReason', '')}")
    rows: list[tuple] = []
    columns: list[str] = []
    for page in athena.get_paginator("get_query_results").paginate(QueryExecutionId=query_id):
        if not columns:
            columns = [c["Name"] for c in page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
        for row in page["ResultSet"]["Rows"]:
            rows.append(tuple(d.get("VarCharValue") for d in row["Data"]))
    return QueryResult(columns=columns, rows=rows[1:])  # Athena repeats the header as the first row
