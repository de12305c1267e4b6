"""etl.spec: validation errors name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etl.spec import DatasetSpecError, load_dataset, normalise_column_name, parse_dataset

SOURCE = Path("datasets/x/dataset.yaml")


def minimal(**overrides):
    data = {"name": "x", "columns": [{"name": "id", "type": "string", "nullable": False}]}
    data.update(overrides)
    return data


def test_load_dataset__orders_spec(repo_root):
    spec = load_dataset(repo_root / "datasets" / "orders")
    assert spec.column_names[:3] == ("order_id", "customer_id", "order_ts")
    assert (spec.primary_key, spec.deduplicate_by, spec.partition_key) == (("order_id",), "updated_at", "ingest_date")
    assert spec.reader_option("header") == "true"
    assert spec.rules_file.endswith("rules.dqdl")


@pytest.mark.parametrize(("data", "key", "problem"), [
    (minimal(format="xml"), "format", "'xml' is not one of"),
    (minimal(columns=[{"name": "Bad Name", "type": "string"}]), "columns[0].name", "is not snake_case"),
    (minimal(columns=[{"name": "a", "type": "varchar"}]), "columns[0].type", "unknown type 'varchar'"),
    (minimal(columns=[{"name": "a", "type": "decimal(2,5)"}]), "columns[0].type", "scale exceeds precision"),
    (minimal(primary_key=["nope"]), "primary_key[0]", "'nope' is not a declared column"),
    (minimal(deduplicate_by="nope"), "deduplicate_by", "is not a declared column"),
    (minimal(surprise=1), "surprise", "unknown key"),
    (minimal(freshness_sla_hours=0), "freshness_sla_hours", "must be an integer"),
    (minimal(partition={"key": "id"}), "partition.key", "must be snake_case and not a column"),
])
def test_parse_dataset__error_names_file_and_key(data, key, problem):
    with pytest.raises(DatasetSpecError) as info:
        parse_dataset(data, SOURCE)
    assert info.value.key == key
    assert str(info.value).startswith(f"{SOURCE}: {key}: ")
    assert problem in info.value.problem


def test_load_dataset__folder_name_must_match(tmp_path):
    folder = tmp_path / "y"
    folder.mkdir()
    (folder / "dataset.yaml").write_text(yaml.safe_dump(minimal()))
    with pytest.raises(DatasetSpecError, match=r"dataset.yaml: name: 'x' must equal its folder name 'y'"):
        load_dataset(folder)


def test_load_dataset__missing_file(tmp_path):
    with pytest.raises(DatasetSpecError, match=r"dataset.yaml: \(file\): not found"):
        load_dataset(tmp_path)


@pytest.mark.parametrize(("raw", "expected"), [
    ("Order ID", "order_id"), ("orderId", "order_id"), (" amount (EUR) ", "amount_eur"), ("---", "_")])
def test_normalise_column_name__snake_case(raw, expected):
    assert normalise_column_name(raw) == expected


def test_load_deployed_dataset__reads_through_storage_and_checks_the_name(tmp_path):
    from etl.spec import load_deployed_dataset
    from etl.storage import LocalStorage

    folder = tmp_path / "assets" / "datasets" / "orders"
    folder.mkdir(parents=True)
    (folder / "dataset.yaml").write_text("name: orders\ncolumns: [{name: a, type: string}]\n")
    spec = load_deployed_dataset(LocalStorage(tmp_path), "s3://assets/datasets", "orders")
    assert (spec.name, spec.column_names, spec.source_file) == (
        "orders", ("a",), "s3://assets/datasets/orders/dataset.yaml")
    with pytest.raises(DatasetSpecError, match="s3://assets/datasets/customers/dataset.yaml: \\(file\\): not found"):
        load_deployed_dataset(LocalStorage(tmp_path), "s3://assets/datasets", "customers")
    (folder / "dataset.yaml").write_text("name: order\ncolumns: [{name: a, type: string}]\n")
    with pytest.raises(DatasetSpecError, match="name: 'order' must equal the dataset argument 'orders'"):
        load_deployed_dataset(LocalStorage(tmp_path), "s3://assets/datasets", "orders")
