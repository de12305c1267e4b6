"""Deterministic sample `orders` raw data with real-world mess, for tests, the demo and the benchmark.

    python scripts/generate_sample_data.py --out build/sample [--days 3] [--rows-per-file 200] [--bad-partition]
    python scripts/generate_sample_data.py --out build/bench --size-gb 1.0

Writes `<out>/orders/ingest_date=YYYY-MM-DD/orders-NNNN.csv[.gz]` (copy `<out>/orders` into a raw bucket).
Per day, two files: orders-0001.csv and orders-0002.csv.gz. The mess, on purpose:
- malformed rows: wrong field count, unparseable amount, bad timestamp (3 per day, all rejected by ETL)
- duplicate order versions: `dups_per_day` orders appear again in the .gz file with a later updated_at
- day 1: UTF-8 BOM; day 2 (if any): Windows line endings; every day: a few blank lines
- `--bad-partition`: one extra day whose rows are well-formed (ETL accepts them) but break the DQ rules
  (a quarter of rows with unknown currency, negative amounts that are not refunds).
`generate()` returns what it wrote, with the expected ETL counts per partition.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

HEADER = ["order_id", "customer_id", "order_ts", "status", "currency", "amount", "quantity", "country",
          "updated_at"]
STATUSES = ["placed", "paid", "shipped", "delivered", "cancelled"]
CURRENCIES = ["EUR", "USD", "GBP"]
COUNTRIES = ["DE", "FR", "NL", "GB", "US", "ES", "IT", "PL"]
TS = "%Y-%m-%d %H:%M:%S"
START = date(2026, 11, 24)


def _order(rng: random.Random, day: date, n: int, bad_dq: bool = False) -> list[str]:
    ts = datetime.combine(day, datetime.min.time()) + timedelta(seconds=rng.randrange(86_400))
    amount = round(rng.uniform(5, 400), 2)
    currency = rng.choice(CURRENCIES)
    status = rng.choice(STATUSES)
    if bad_dq and n % 4 == 0:
        currency = rng.choice(["XXX", "BTC", "JPY"])
    if bad_dq and n % 4 == 1:
        amount, status = -amount, "paid"
    country = "" if rng.random() < 0.03 else rng.choice(COUNTRIES)
    return [f"o-{day:%Y%m%d}-{n:06d}", f"c-{rng.randrange(1, 5000):05d}", ts.strftime(TS), status, currency,
            f"{amount:.2f}", str(rng.randrange(1, 6)), country, ts.strftime(TS)]


def _csv_text(rows: list[list[str]], newline: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows(rows)
    return buffer.getvalue()


def _malformed(rng: random.Random, day: date, n: int) -> list[str]:
    """Three bad lines: wrong field count, unparseable amount, bad timestamp."""
    short = _order(rng, day, n)[:7]
    bad_amount = _order(rng, day, n + 1)
    bad_amount[5] = "12,34.x"
    bad_ts = _order(rng, day, n + 2)
    bad_ts[2] = "24/11/2026 10:00"
    return [",".join(short), _csv_text([bad_amount]).rstrip("\n"), _csv_text([bad_ts]).rstrip("\n")]


def generate(out: Path, days: int = 3, rows_per_file: int = 200, bad_partition: bool = False,
             seed: int = 20261124, dups_per_day: int = 5) -> dict[str, Any]:
    """Write the sample; returns {"files": [...], "partitions": {partition: expected counts}}."""
    rng = random.Random(seed)
    root = Path(out) / "orders"
    result: dict[str, Any] = {"files": [], "partitions": {}, "bad_partition": None}
    for index in range(days + (1 if bad_partition else 0)):
        day = START + timedelta(days=index)
        is_bad = bad_partition and index == days
        partition = f"ingest_date={day:%Y-%m-%d}"
        folder = root / partition
        folder.mkdir(parents=True, exist_ok=True)
        first = [_order(rng, day, n, is_bad) for n in range(rows_per_file)]
        second = [_order(rng, day, rows_per_file + n, is_bad) for n in range(rows_per_file)]
        dups = min(dups_per_day, rows_per_file)
        for row in first[:dups]:  # a later version of the same order, in the later file
            later = list(row)
            later[3] = "shipped"
            later[8] = (datetime.strptime(row[8], TS) + timedelta(hours=2)).strftime(TS)
            second.append(later)
        newline = "\r\n" if index == 1 else "\n"
        bad_lines = _malformed(rng, day, 10 * rows_per_file)
        text = _csv_text([HEADER] + first[: rows_per_file // 2], newline) + newline
        text += newline.join(bad_lines) + newline + newline
        text += _csv_text(first[rows_per_file // 2:], newline)
        if index == 0:
            text = "\ufeff" + text
        path1 = folder / "orders-0001.csv"
        path1.write_bytes(text.encode("utf-8"))
        path2 = folder / "orders-0002.csv.gz"
        with gzip.GzipFile(path2, "wb", mtime=0) as handle:  # mtime=0: byte-identical on every run
            handle.write(_csv_text([HEADER] + second).encode("utf-8"))
        input_rows = len(first) + len(bad_lines) + len(second)
        result["files"] += [str(path1), str(path2)]
        result["partitions"][partition] = {
            "input_rows": input_rows, "rejected_rows": len(bad_lines), "duplicates_removed": dups,
            "output_rows": input_rows - len(bad_lines) - dups, "source_objects": 2,
        }
        if is_bad:
            result["bad_partition"] = partition
    return result


def generate_size(out: Path, size_gb: float, file_mb: int = 128) -> dict[str, Any]:
    """Benchmark input: ~size_gb of orders CSV (0.1% duplicates, 0.01% bad amounts), one day; deterministic."""
    folder = Path(out) / "orders" / f"ingest_date={START:%Y-%m-%d}"
    folder.mkdir(parents=True, exist_ok=True)
    target, written, n, files, rows = int(size_gb * 1024**3), 0, 0, [], 0
    base = datetime.combine(START, datetime.min.time())
    head = ",".join(HEADER) + "\n"
    while written < target:
        path = folder / f"orders-{len(files) + 1:04d}.csv"
        lines = [head]
        size = len(head)
        while size < file_mb * 1024**2 and written + size < target:
            n += 1
            ts = (base + timedelta(seconds=n % 86_400)).strftime(TS)
            order = n - 1 if n % 1000 == 0 else n
            amount = "x1" if n % 10_000 == 5 else f"{(n * 37) % 40_000 / 100 + 1:.2f}"
            line = (f"o-{order:010d},c-{n % 50_000:05d},{ts},{STATUSES[n % 5]},{CURRENCIES[n % 3]},"
                    f"{amount},{n % 5 + 1},{COUNTRIES[n % 8]},{ts}\n")
            lines.append(line)
            size += len(line)
        path.write_text("".join(lines), encoding="utf-8")
        files.append(str(path))
        rows += len(lines) - 1
        written += size
    return {"files": files, "rows": rows, "bytes": written}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--rows-per-file", type=int, default=200)
    parser.add_argument("--bad-partition", action="store_true")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--size-gb", type=float, default=None, help="benchmark mode: ~this much CSV")
    args = parser.parse_args(argv)
    if args.size_gb:
        summary = generate_size(args.out, args.size_gb)
    else:
        summary = generate(args.out, args.days, args.rows_per_file, args.bad_partition, args.seed)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
