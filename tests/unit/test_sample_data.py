"""The sample generator is deterministic and writes the promised mess."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generator():
    from lake import sample_data

    return sample_data


def digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_generate__deterministic(generator, tmp_path):
    first = generator.generate(tmp_path / "a", days=2, rows_per_file=20)
    second = generator.generate(tmp_path / "b", days=2, rows_per_file=20)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert first["partitions"] == second["partitions"]


def test_generate__files_and_mess(generator, tmp_path):
    result = generator.generate(tmp_path, days=2, rows_per_file=20, bad_partition=True)
    folder = tmp_path / "orders"
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "ingest_date=2026-11-24/orders-0001.csv", "ingest_date=2026-11-24/orders-0002.csv.gz",
        "ingest_date=2026-11-25/orders-0001.csv", "ingest_date=2026-11-25/orders-0002.csv.gz",
        "ingest_date=2026-11-26/orders-0001.csv", "ingest_date=2026-11-26/orders-0002.csv.gz"]
    assert result["bad_partition"] == "ingest_date=2026-11-26"
    assert result["partitions"]["ingest_date=2026-11-24"] == {
        "input_rows": 48, "rejected_rows": 3, "duplicates_removed": 5, "output_rows": 40, "source_objects": 2}
    day1 = (folder / "ingest_date=2026-11-24/orders-0001.csv").read_bytes()
    assert day1.startswith(b"\xef\xbb\xbforder_id,")
    assert b"\n\n" in day1
    assert b"\r\n" in (folder / "ingest_date=2026-11-25/orders-0001.csv").read_bytes()
    gz = gzip.decompress((folder / "ingest_date=2026-11-24/orders-0002.csv.gz").read_bytes()).decode()
    assert len(gz.splitlines()) == 1 + 20 + 5
    bad_day = (folder / "ingest_date=2026-11-26/orders-0001.csv").read_text()
    assert ",XXX," in bad_day or ",BTC," in bad_day or ",JPY," in bad_day


def test_generate_size__writes_requested_bytes(generator, tmp_path):
    result = generator.generate_size(tmp_path, 0.001, file_mb=1)
    assert 1_073_741 <= result["bytes"] <= 1_073_741 + 200  # one line past the target at most
    assert len(result["files"]) == 2  # 1 MiB per file
    assert result["rows"] > 9000
