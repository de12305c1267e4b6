"""Dataset specifications: `datasets/<name>/dataset.yaml`, parsed and validated.

The same code validates a dataset at synth time (workflows/) and at job start (etl/, quality/), so a
bad dataset file fails `cdk synth` with a message naming the file and key, long before a 3 a.m. run.
Only PyYAML is needed here: nothing in this module imports Spark or CDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

FORMATS = ("csv", "json", "parquet")
COMPRESSIONS = ("auto", "none", "gzip")
SIMPLE_TYPES = ("string", "int", "bigint", "double", "float", "boolean", "date", "timestamp")
DECIMAL_TYPE = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
DATASET_FILE = "dataset.yaml"
RULES_FILE = "rules.dqdl"


class DatasetSpecError(ValueError):
    """A dataset file is invalid. The message names the file and the key."""

    def __init__(self, source: str | Path, key: str, problem: str) -> None:
        self.source = str(source)
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}")


@dataclass(frozen=True)
class Column:
    """One column of a dataset's enforced schema."""

    name: str
    type: str
    nullable: bool = True
    format: str | None = None  # date/timestamp pattern, Spark datetime syntax


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset, as declared in `datasets/<name>/dataset.yaml`.

    Raw objects live under `<raw bucket>/<name>/<partition_key>=<value>/<file>`; objects without the
    Hive-style segment are reported by the state machine and not processed.
    """

    name: str
    description: str
    format: str
    compression: str
    reader_options: tuple[tuple[str, str], ...]
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    deduplicate_by: str | None
    partition_key: str
    curated_table: str
    freshness_sla_hours: int
    source_file: str
    rules_file: str | None

    @property
    def raw_prefix(self) -> str:
        """Key prefix of this dataset's objects in the raw bucket (with trailing slash)."""
        return f"{self.name}/"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def reader_option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.reader_options).get(name, default)


def normalise_column_name(name: str) -> str:
    """Column names in the lake are snake_case ASCII: `Order ID` -> `order_id`."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    text = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    return text or "_"


def _require(data: dict[str, Any], key: str, source: Path) -> Any:
    if key not in data or data[key] in (None, ""):
        raise DatasetSpecError(source, key, "is required")
    return data[key]


def _check_type(type_name: str, source: Path, key: str) -> str:
    normalised = type_name.strip().lower()
    if normalised in SIMPLE_TYPES or DECIMAL_TYPE.match(normalised):
        if (match := DECIMAL_TYPE.match(normalised)) and int(match[2]) > int(match[1]):
            raise DatasetSpecError(source, key, f"decimal scale exceeds precision in {type_name!r}")
        return normalised
    allowed = ", ".join((*SIMPLE_TYPES, "decimal(p,s)"))
    raise DatasetSpecError(source, key, f"unknown type {type_name!r}; expected one of {allowed}")


def _parse_columns(raw: Any, source: Path) -> tuple[Column, ...]:
    if not isinstance(raw, list) or not raw:
        raise DatasetSpecError(source, "columns", "must be a non-empty list of {name, type, nullable}")
    columns: list[Column] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        key = f"columns[{index}]"
        if not isinstance(item, dict):
            raise DatasetSpecError(source, key, "must be a mapping with name and type")
        unknown = set(item) - {"name", "type", "nullable", "format"}
        if unknown:
            raise DatasetSpecError(source, f"{key}.{sorted(unknown)[0]}", "unknown key")
        name = str(_require(item, "name", source))
        if not IDENTIFIER.match(name):
            raise DatasetSpecError(source, f"{key}.name", f"{name!r} is not snake_case (a-z, 0-9, _)")
        if name in seen:
            raise DatasetSpecError(source, f"{key}.name", f"duplicate column {name!r}")
        seen.add(name)
        nullable = item.get("nullable", True)
        if not isinstance(nullable, bool):
            raise DatasetSpecError(source, f"{key}.nullable", "must be true or false")
        columns.append(
            Column(
                name=name,
                type=_check_type(str(_require(item, "type", source)), source, f"{key}.type"),
                nullable=nullable,
                format=item.get("format"),
            )
        )
    return tuple(columns)


def _parse_key_columns(data: dict[str, Any], columns: tuple[Column, ...], source: Path) -> tuple[str, ...]:
    primary_key = data.get("primary_key") or []
    if isinstance(primary_key, str):
        primary_key = [primary_key]
    names = {c.name for c in columns}
    for index, column in enumerate(primary_key):
        if column not in names:
            raise DatasetSpecError(source, f"primary_key[{index}]", f"{column!r} is not a declared column")
    return tuple(primary_key)


def parse_dataset(data: Any, source: Path, rules_file: Path | None = None) -> DatasetSpec:
    """Validate one parsed `dataset.yaml` document."""
    if not isinstance(data, dict):
        raise DatasetSpecError(source, "(document)", "must be a mapping")
    allowed = {
        "name", "description", "format", "compression", "reader", "columns", "primary_key",
        "deduplicate_by", "partition", "curated_table", "freshness_sla_hours",
    }  # fmt: skip
    unknown = set(data) - allowed
    if unknown:
        raise DatasetSpecError(source, sorted(unknown)[0], f"unknown key; allowed: {', '.join(sorted(allowed))}")
    name = str(_require(data, "name", source))
    if not IDENTIFIER.match(name):
        raise DatasetSpecError(source, "name", f"{name!r} must be snake_case (a-z, 0-9, _), at most 63 chars")
    fmt = str(data.get("format", "csv")).lower()
    if fmt not in FORMATS:
        raise DatasetSpecError(source, "format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    compression = str(data.get("compression", "auto")).lower()
    if compression not in COMPRESSIONS:
        raise DatasetSpecError(source, "compression", f"{compression!r} is not one of {', '.join(COMPRESSIONS)}")
    reader = data.get("reader") or {}
    if not isinstance(reader, dict):
        raise DatasetSpecError(source, "reader", "must be a mapping of reader options")
    columns = _parse_columns(data.get("columns"), source)
    dedupe = data.get("deduplicate_by")
    if dedupe is not None and dedupe not in {c.name for c in columns}:
        raise DatasetSpecError(source, "deduplicate_by", f"{dedupe!r} is not a declared column")
    partition = data.get("partition") or {}
    if not isinstance(partition, dict):
        raise DatasetSpecError(source, "partition", "must be a mapping with a key")
    partition_key = str(partition.get("key", "ingest_date"))
    if not IDENTIFIER.match(partition_key) or partition_key in {c.name for c in columns}:
        raise DatasetSpecError(source, "partition.key", f"{partition_key!r} must be snake_case and not a column")
    curated_table = str(data.get("curated_table", name))
    if not IDENTIFIER.match(curated_table):
        raise DatasetSpecError(source, "curated_table", f"{curated_table!r} must be snake_case")
    sla = data.get("freshness_sla_hours", 24)
    if not isinstance(sla, int) or isinstance(sla, bool) or not 1 <= sla <= 24 * 31:
        raise DatasetSpecError(source, "freshness_sla_hours", f"must be an integer from 1 to 744, got {sla!r}")
    return DatasetSpec(
        name=name,
        description=str(data.get("description", "")),
        format=fmt,
        compression=compression,
        reader_options=tuple(
            sorted((str(k), str(v).lower() if isinstance(v, bool) else str(v)) for k, v in reader.items())
        ),
        columns=columns,
        primary_key=_parse_key_columns(data, columns, source),
        deduplicate_by=dedupe,
        partition_key=partition_key,
        curated_table=curated_table,
        freshness_sla_hours=sla,
        source_file=str(source),
        rules_file=str(rules_file) if rules_file else None,
    )


def load_dataset(folder: Path) -> DatasetSpec:
    """Load `<folder>/dataset.yaml`; the folder name must equal the dataset name."""
    source = folder / DATASET_FILE
    if not source.is_file():
        raise DatasetSpecError(source, "(file)", "not found")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DatasetSpecError(source, "(yaml)", str(error).replace("\n", " ")) from error
    rules = folder / RULES_FILE
    spec = parse_dataset(data, source, rules if rules.is_file() else None)
    if spec.name != folder.name:
        raise DatasetSpecError(source, "name", f"{spec.name!r} must equal its folder name {folder.name!r}")
    return spec


def load_datasets(root: Path, names: list[str] | tuple[str, ...] | None = None) -> tuple[DatasetSpec, ...]:
    """Load the named datasets under `root` (all of them when `names` is None), sorted by name."""
    if names is None:
        folders = sorted(p for p in root.iterdir() if (p / DATASET_FILE).is_file())
    else:
        folders = [root / name for name in names]
    return tuple(load_dataset(folder) for folder in folders)


def load_deployed_dataset(storage: Any, datasets_uri: str, dataset: str) -> DatasetSpec:
    """Load `<datasets_uri>/<dataset>/dataset.yaml` through a Storage (what the Glue jobs read at start)."""
    uri = f"{datasets_uri.rstrip('/')}/{dataset}/{DATASET_FILE}"
    if not storage.exists(uri):
        raise DatasetSpecError(uri, "(file)", "not found")
    try:
        data = yaml.safe_load(storage.read_text(uri))
    except yaml.YAMLError as error:
        raise DatasetSpecError(uri, "(yaml)", str(error).replace("\n", " ")) from error
    spec = parse_dataset(data, source=uri)  # type: ignore[arg-type]
    if spec.name != dataset:
        raise DatasetSpecError(uri, "name", f"{spec.name!r} must equal the dataset argument {dataset!r}")
    return spec
