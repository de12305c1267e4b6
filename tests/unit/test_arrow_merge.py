"""The merge's pieces and Arrow ranking (etl/key_ranges.py, etl/arrow_merge.py), without Spark: which pieces may
share a key, and which rows lose theirs, against the ranking written out in Python."""

from __future__ import annotations

import random
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pytest

from etl import arrow_merge as am
from etl.arrow_write import renamed
from etl.key_ranges import Piece, overlapping
from etl.spec import load_dataset

SPEC = load_dataset(Path(__file__).resolve().parents[2] / "datasets" / "orders")


def test_overlapping__marks_both_pieces_of_every_overlap_and_no_other():
    pieces = [Piece("d", {"order_id": ("a", "c")}), Piece("d", {"order_id": ("d", "f")}),
              Piece("d", {"order_id": ("f", "g")}), Piece("d", {"order_id": ("x", "z")}),
              Piece("e", {"order_id": ("a", "z")}), Piece("d", {"order_id": ("h", "w")})]  # fmt: skip
    assert overlapping(pieces, "order_id") == {1, 2}  # touching at "f" is an overlap; "e" is another partition
    wide = [*pieces, Piece("d", {"order_id": ("b", "b")})]
    assert overlapping(wide, "order_id") == {0, 1, 2, 6}


def test_overlapping__a_piece_of_unknown_range_may_share_a_key_with_every_other():
    pieces = [Piece("d", {"order_id": ("a", "c")}), Piece("d", {"order_id": ("x", "z")}), Piece("d", {})]
    assert overlapping(pieces, "order_id") == {0, 1, 2}
    assert overlapping([Piece("d", {})], "order_id") == set()  # alone, it shares nothing


def test_overlapping__agrees_with_a_pairwise_check_on_random_pieces():
    rng = random.Random(3)
    for _ in range(200):
        pieces = []
        for _ in range(rng.randint(1, 12)):
            low = rng.randint(0, 100)
            pieces.append(Piece(rng.choice("ab"), {"k": (low, low + rng.randint(0, 15))}))
        pairs = {i for i, a in enumerate(pieces) for j, b in enumerate(pieces) if i != j and a.value == b.value
                 and a.ranges["k"][0] <= b.ranges["k"][1] and b.ranges["k"][0] <= a.ranges["k"][1]}  # fmt: skip
        assert overlapping(pieces, "k") == pairs


def ranked(rows: list[dict]) -> pa.Table:
    columns = {name: [r.get(name) for r in rows] for name in am.ranked_schema(SPEC).names}
    columns["updated_at"] = [datetime(2026, 11, 24, r["at"]) if r.get("at") is not None else None for r in rows]
    return am.conform(pa.table({name: pa.array(values, am.ranked_schema(SPEC).field(name).type)
                                for name, values in columns.items()}), SPEC)  # fmt: skip


def test_rank__keeps_what_the_run_ranking_keeps_and_says_where_the_losers_are():
    """Per (partition, order id) the latest updated_at wins (a null loses), then the greater source object, line
    number and raw-line hash (a null loses); fast, published and slow rows are told apart by where they are."""
    rng = random.Random(11)
    rows = []
    for n in range(400):
        kind = rng.choice(["fast", "published", "slow"])
        rows.append({am.VALUE: rng.choice(["d", "e"]), "order_id": rng.choice(["o1", "o2", "o3", None]),
                     "at": rng.choice([None, 1, 2]), am.SOURCE_OBJECT: rng.choice(["s3://r/a", "s3://r/b"]),
                     am.LINE: None if kind == "published" else n + 2,
                     am.ROW_HASH: rng.choice([None, 5, 9]) if kind == "slow" else None,
                     am.CURATED_FILE: {"fast": "s3://c/f", "published": "s3://p/g", "slow": None}[kind],
                     am.CURATED_ROW: None if kind == "slow" else n})  # fmt: skip
    losers = am.rank(ranked(rows), SPEC, {"s3://c/f"})

    def order(r: dict) -> tuple:
        return (r["at"] is not None, r["at"] or 0, r[am.SOURCE_OBJECT], r[am.LINE] is not None, r[am.LINE] or 0,
                r[am.ROW_HASH] is not None, r[am.ROW_HASH] or 0)  # fmt: skip

    winners: dict = {}
    for r in rows:
        key = (r[am.VALUE], r["order_id"])  # a null order id is a key of its own, as Spark's window has it
        if key not in winners or order(r) > order(winners[key]):
            winners[key] = r
    lost = [r for r in rows if winners[(r[am.VALUE], r["order_id"])] is not r]
    assert sorted(losers.fast["s3://c/f"]) == sorted(r[am.CURATED_ROW] for r in lost if r[am.CURATED_FILE] == "s3://c/f")
    assert sorted(losers.published["s3://p/g"]) == sorted(r[am.CURATED_ROW] for r in lost
                                                         if r[am.CURATED_FILE] == "s3://p/g")  # fmt: skip
    assert sorted(losers.slow) == sorted((r[am.SOURCE_OBJECT], r[am.LINE]) for r in lost if r[am.CURATED_FILE] is None)
    assert losers.duplicates == {v: sum(1 for r in lost if r[am.VALUE] == v) for v in ("d", "e")}


def test_rank__a_table_without_repeated_keys_has_no_losers():
    rows = [{am.VALUE: "d", "order_id": f"o{n}", "at": 1, am.SOURCE_OBJECT: "s3://r/a", am.LINE: n,
             am.CURATED_FILE: "s3://c/f", am.CURATED_ROW: n} for n in range(5)]  # fmt: skip
    assert am.rank(ranked(rows), SPEC, {"s3://c/f"}) == am.Losers()


def test_rank__a_ranking_that_disagrees_with_the_key_count_fails(monkeypatch):
    """The losers are found by sorting, their number by counting versions per key: a sort that drops a group
    boundary (here: every key compares equal) is caught."""
    rows = [{am.VALUE: "d", "order_id": f"o{n % 2}", "at": n, am.SOURCE_OBJECT: "s3://r/a", am.LINE: n,
             am.CURATED_FILE: "s3://c/f", am.CURATED_ROW: n} for n in range(4)]  # fmt: skip
    import pyarrow.compute as pc

    monkeypatch.setattr(pc, "equal", lambda a, b: pa.array([True] * len(a)))
    with pytest.raises(RuntimeError, match=r"the merge's ranking removed \{'d': 3\} rows, but the key columns "
                                           r"count \{'d': 2\} older versions"):  # fmt: skip
        am.rank(ranked(rows), SPEC, {"s3://c/f"})


def test_renamed__replaces_an_earlier_rewrites_suffix():
    once = renamed("s3://c/o/d/run_id=1/part-00000-abc.snappy.parquet", "s3://c/o/d/run_id=2/", "0123abcd")
    assert once == "s3://c/o/d/run_id=2/part-00000-abc.snappy-r0123abcd.parquet"
    assert renamed(once, "s3://c/o/d/run_id=3", "ffffffff") == "s3://c/o/d/run_id=3/part-00000-abc.snappy-rffffffff.parquet"
