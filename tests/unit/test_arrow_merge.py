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


FILES = ["s3://c/f", "s3://p/g"]  # the ranking's list of files: a row's FILE is a position in it


def ranked(rows: list[dict]) -> pa.Table:
    columns = {name: [r.get(name) for r in rows] for name in am.ranked_schema(SPEC).names}
    columns[am.FILE] = [FILES.index(r[am.CURATED_FILE]) if r.get(am.CURATED_FILE) else None for r in rows]
    columns["updated_at"] = [datetime(2026, 11, 24, r["at"]) if r.get("at") is not None else None for r in rows]
    return am.conform(pa.table({name: pa.array(values, am.ranked_schema(SPEC).field(name).type)
                                for name, values in columns.items()}), SPEC)  # fmt: skip


@pytest.mark.parametrize("null_keys", [True, False])
def test_rank__keeps_what_the_run_ranking_keeps_and_says_where_the_losers_are(null_keys):
    """Per (partition, order id) the latest updated_at wins (a null loses), then the greater source object, line
    number and raw-line hash (a null loses); fast, published and slow rows are told apart by where they are. With a
    null key every row is sorted; without, only the repeated keys' rows (joined on the keys, then taken). The table
    comes in pieces whose source objects have dictionaries of their own, as the files read do."""
    rng = random.Random(11)
    orders = ["o1", "o2", "o3", None] if null_keys else [f"o{n}" for n in range(300)]
    rows, published = [], set()
    for n in range(400):
        kind, key = rng.choice(["fast", "published", "slow"]), (rng.choice(["d", "e"]), rng.choice(orders))
        if kind == "published" and key in published:
            kind = "fast"  # a published snapshot holds a key once, so two published rows never tie
        elif kind == "published":
            published.add(key)
        rows.append({am.VALUE: key[0], "order_id": key[1],
                     "at": rng.choice([None, 1, 2]), am.SOURCE_OBJECT: rng.choice(["s3://r/a", "s3://r/b", "s3://r/c"]),
                     am.LINE: None if kind == "published" else n + 2,
                     am.ROW_HASH: rng.choice([None, 5, 9]) if kind == "slow" else None,
                     am.CURATED_FILE: {"fast": "s3://c/f", "published": "s3://p/g", "slow": None}[kind],
                     am.CURATED_ROW: None if kind == "slow" else n})  # fmt: skip
    table = pa.concat_tables([ranked(rows[:150]), ranked(rows[150:151]), ranked(rows[151:])])
    assert len({tuple(c.dictionary.to_pylist()) for c in table.column(am.SOURCE_OBJECT).chunks}) > 1
    losers = am.rank(table, SPEC, FILES, {"s3://c/f"})

    def order(r: dict) -> tuple:
        return (r["at"] is not None, r["at"] or 0, r[am.SOURCE_OBJECT], r[am.LINE] is not None, r[am.LINE] or 0,
                r[am.ROW_HASH] is not None, r[am.ROW_HASH] or 0)  # fmt: skip

    orders_per_key: dict = {}
    for r in rows:
        orders_per_key.setdefault((r[am.VALUE], r["order_id"]), []).append(order(r))
    assert all(len(set(o)) == len(o) for o in orders_per_key.values()), "a tie would make the expected losers arbitrary"
    winners: dict = {}
    for r in rows:
        key = (r[am.VALUE], r["order_id"])  # a null order id is a key of its own, as Spark's window has it
        if key not in winners or order(r) > order(winners[key]):
            winners[key] = r
    lost = [r for r in rows if winners[(r[am.VALUE], r["order_id"])] is not r]
    assert len(lost) > 50
    assert sorted(losers.fast["s3://c/f"]) == sorted(r[am.CURATED_ROW] for r in lost if r[am.CURATED_FILE] == "s3://c/f")
    assert sorted(losers.published["s3://p/g"]) == sorted(r[am.CURATED_ROW] for r in lost
                                                         if r[am.CURATED_FILE] == "s3://p/g")  # fmt: skip
    assert sorted(losers.slow) == sorted((r[am.SOURCE_OBJECT], r[am.LINE]) for r in lost if r[am.CURATED_FILE] is None)
    assert losers.duplicates == {v: sum(1 for r in lost if r[am.VALUE] == v) for v in ("d", "e")}


def test_rank__a_table_without_repeated_keys_has_no_losers():
    rows = [{am.VALUE: "d", "order_id": f"o{n}", "at": 1, am.SOURCE_OBJECT: "s3://r/a", am.LINE: n,
             am.CURATED_FILE: "s3://c/f", am.CURATED_ROW: n} for n in range(5)]  # fmt: skip
    assert am.rank(ranked(rows), SPEC, FILES, {"s3://c/f"}) == am.Losers()


def test_rank__a_ranking_that_disagrees_with_the_key_count_fails(monkeypatch):
    """The losers are found by sorting, their number by counting versions per key: a sort that drops a group
    boundary (here: every key compares equal) is caught."""
    rows = [{am.VALUE: "d", "order_id": f"o{n % 2}", "at": n, am.SOURCE_OBJECT: "s3://r/a", am.LINE: n,
             am.CURATED_FILE: "s3://c/f", am.CURATED_ROW: n} for n in range(4)]  # fmt: skip
    import pyarrow.compute as pc

    monkeypatch.setattr(pc, "equal", lambda a, b: pa.array([True] * len(a)))
    with pytest.raises(RuntimeError, match=r"the merge's ranking removed \{'d': 3\} rows, but the key columns "
                                           r"count \{'d': 2\} older versions"):  # fmt: skip
        am.rank(ranked(rows), SPEC, FILES, {"s3://c/f"})


def test_renamed__replaces_an_earlier_rewrites_suffix():
    once = renamed("s3://c/o/d/run_id=1/part-00000-abc.snappy.parquet", "s3://c/o/d/run_id=2/", "0123abcd")
    assert once == "s3://c/o/d/run_id=2/part-00000-abc.snappy-r0123abcd.parquet"
    assert renamed(once, "s3://c/o/d/run_id=3", "ffffffff") == "s3://c/o/d/run_id=3/part-00000-abc.snappy-rffffffff.parquet"


def staged_keys(tmp_path: Path, rows: list[tuple[str, str, int]]) -> pa.Table:
    """A staged keys file (etl/fast_csv.py::keys_schema) of (order id, curated file, position) rows, read back as
    the ranking reads it."""
    import pyarrow.parquet as pq

    from etl.fast_csv import keys_schema
    from etl.storage import LocalStorage

    schema = keys_schema(SPEC)
    columns = {f.name: [None] * len(rows) for f in schema}
    columns.update({SPEC.partition_key: ["d"] * len(rows), "order_id": [r[0] for r in rows],
                    am.SOURCE_OBJECT: ["s3://r/a"] * len(rows), am.LINE: [r[2] + 2 for r in rows],
                    am.CURATED_FILE: [r[1] for r in rows], am.CURATED_ROW: [r[2] for r in rows]})  # fmt: skip
    path = tmp_path / "staging" / "keys.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({f.name: pa.array(columns[f.name], f.type) for f in schema}, schema=schema), path)
    return am.read_parquet(LocalStorage(tmp_path), "s3://staging/keys.parquet")


def test_fast_rows__keeps_the_rows_of_its_suspect_blocks_and_places_them_by_file_and_block(tmp_path):
    table = staged_keys(tmp_path, [("o1", "s3://c/f", 0), ("o2", "s3://c/f", 1), ("o3", "s3://c/h", 0),
                                   ("o4", "s3://c/h", 1)])  # fmt: skip
    files = ["s3://p/g", "s3://c/f", "s3://c/h"]
    # the file's blocks in the order written: (block, rows, curated file and position of the first)
    blocks = [(5, 1, "s3://c/f", 0), (6, 2, "s3://c/f", 1), (7, 1, "s3://c/h", 1)]
    picked = am.fast_rows(table, blocks, {6}, files, SPEC)
    assert picked.schema == am.ranked_schema(SPEC)
    assert picked.select(["order_id", am.FILE, am.CURATED_ROW, am.BLOCK, am.VALUE]).to_pylist() == [
        {"order_id": "o2", am.FILE: 1, am.CURATED_ROW: 1, am.BLOCK: 6, am.VALUE: "d"},
        {"order_id": "o3", am.FILE: 2, am.CURATED_ROW: 0, am.BLOCK: 6, am.VALUE: "d"}]  # fmt: skip
    assert am.fast_rows(table, blocks, None, files, SPEC).column(am.BLOCK).to_pylist() == [5, 6, 6, 7]
    with pytest.raises(RuntimeError, match="staged keys hold 4 rows, but their blocks placed 3"):
        am.fast_rows(table, blocks[:2], None, files, SPEC)
    shifted = [(5, 1, "s3://c/f", 0), (6, 2, "s3://c/f", 1), (7, 1, "s3://c/h", 0)]  # as many rows, not where
    with pytest.raises(RuntimeError, match=r"staged keys are not in the order of their blocks: block 7 starts at "
                                           r"s3://c/h row 0, its rows at s3://c/h row 1"):  # fmt: skip
        am.fast_rows(table, shifted, None, files, SPEC)


def test_fast_rows__keys_of_a_file_the_run_did_not_write_fail(tmp_path):
    table = staged_keys(tmp_path, [("o1", "s3://c/f", 0), ("o2", "s3://c/x", 0)])
    with pytest.raises(RuntimeError, match=r"staged keys name curated files the run did not write: \['s3://c/x'\]"):
        am.fast_rows(table, [(0, 2, "s3://c/f", 0)], None, ["s3://c/f"], SPEC)


def test_published_rows__leaves_out_the_rows_of_objects_the_batch_reads_again():
    sources = pa.array(["s3://r/a", "s3://r/b", "s3://r/a"]).dictionary_encode()
    table = pa.table({"order_id": ["o1", "o2", "o3"], "updated_at": pa.array([None] * 3, pa.timestamp("us", "UTC")),
                      am.SOURCE_OBJECT: sources})  # fmt: skip
    ranked_rows, gone = am.published_rows(table, "d", 7, {"s3://r/a"}, SPEC)
    assert gone == [0, 2]
    assert ranked_rows.select(["order_id", am.FILE, am.CURATED_ROW, am.VALUE]).to_pylist() == [
        {"order_id": "o2", am.FILE: 7, am.CURATED_ROW: 1, am.VALUE: "d"}]  # fmt: skip


def batch_rows(rows: list[tuple]) -> pa.Table:
    """Batch rows to narrow: (partition value, order id, block (None: a slow line's row)), in `ranked_schema`."""
    schema = am.ranked_schema(SPEC)
    columns = {am.VALUE: [r[0] for r in rows], "order_id": [r[1] for r in rows], am.BLOCK: [r[2] for r in rows],
               am.LINE: list(range(len(rows)))}  # fmt: skip
    return pa.table({f.name: pa.array(columns.get(f.name, [None] * len(rows)), f.type) for f in schema}, schema=schema)


def published_keys(ids: list[str | None]) -> pa.Table:
    return pa.table({"order_id": pa.array(ids, pa.string()),
                     "updated_at": pa.array([None] * len(ids), pa.timestamp("ns")),
                     am.SOURCE_OBJECT: pa.array(["s3://r/p"] * len(ids)).dictionary_encode()})  # fmt: skip


def test_narrowed__keeps_the_rows_within_the_published_range_and_the_blocks_whose_rest_overlaps():
    """A block that updates a published file brings its new keys along: those are ranked only when another block
    (or a slow line) has a key in their range."""
    published = [("d", published_keys([f"o{n}" for n in range(100, 200)]))]
    rows = ([("d", f"o{n}", 0) for n in range(300, 310)] + [("d", "o150", 0)]      # updates o150, new keys o30x
            + [("d", f"o{n}", 1) for n in range(310, 320)] + [("d", "o160", 1)]  # updates o160, new keys o31x
            + [("d", "o500", 2), ("d", "o505", 2)]                                # new keys, within no other range
            + [("e", "o150", 3)])  # fmt: skip                                    # another partition: no file there
    kept = am.narrowed(batch_rows(rows), published, SPEC)
    assert sorted(kept.column("order_id").to_pylist()) == ["o150", "o160"]
    # a block whose new keys reach into another's range (o305) ranks both blocks' new keys
    kept = am.narrowed(batch_rows([*rows, ("d", "o305", 4)]), published, SPEC)
    assert sorted(kept.column(am.BLOCK).to_pylist()) == [0] * 11 + [1, 4]
    # a slow line's row is always kept, and its key reaches into block 1's range
    kept = am.narrowed(batch_rows([*rows, ("d", "o315", None)]), published, SPEC)
    expected = ["o150", "o160", "o315"] + [f"o{n}" for n in range(310, 320)]
    assert sorted(kept.column("order_id").to_pylist()) == sorted(expected)


def test_narrowed__a_null_key_keeps_every_row():
    published = [("d", published_keys(["o1", "o2"]))]
    rows = [("d", "o1", 0), ("d", "o7", 1), ("d", "o9", 2)]
    assert am.narrowed(batch_rows([*rows, ("d", None, None)]), published, SPEC).num_rows == 4
    assert am.narrowed(batch_rows(rows), published, SPEC).column("order_id").to_pylist() == ["o1"]
    with_null = [("d", published_keys(["o1", None]))]  # a published null key equals none of the batch's keys
    assert am.narrowed(batch_rows(rows), with_null, SPEC).column("order_id").to_pylist() == ["o1"]


def test_published_rows__with_the_batch_keeps_the_rows_whose_key_it_holds():
    table = published_keys(["o1", "o2", "o3", "o4"])
    ranked_rows, gone = am.published_rows(table, "d", 3, set(), SPEC, batch_rows([("d", "o3", 0), ("e", "o2", 1)]))
    assert gone == [] and ranked_rows.select(["order_id", am.CURATED_ROW]).to_pylist() == [
        {"order_id": "o3", am.CURATED_ROW: 2}]  # fmt: skip
    # a null key in the batch: every row is ranked; a published null key, only when the batch has one
    assert am.published_rows(table, "d", 3, set(), SPEC, batch_rows([("d", None, 0)]))[0].num_rows == 4
    with_null = published_keys(["o1", None])
    assert am.published_rows(with_null, "d", 3, set(), SPEC, batch_rows([("d", "o1", 0)]))[0].num_rows == 1
    assert am.published_rows(with_null, "d", 3, set(), SPEC, batch_rows([("d", None, 0)]))[0].num_rows == 2


@pytest.mark.parametrize("seed", range(6))
def test_narrowed_ranking__finds_the_losers_the_whole_ranking_finds(seed):
    """Random batches (blocks of distinct keys, slow rows with repeats) against published files of distinct keys:
    ranking the narrowed rows finds the same losers as ranking every row."""
    rng = random.Random(seed)
    files = [f"s3://p/{n}" for n in range(3)] + [f"s3://c/{n}" for n in range(4)]
    published, taken = [], set()
    for _ in range(3):
        value = rng.choice("de")
        ids = sorted({f"o{rng.randint(100, 250):04d}" for _ in range(40)} - {k for v, k in taken if v == value})
        taken |= {(value, k) for k in ids}
        published.append((value, published_keys(ids)))
    rows = []
    for block in range(6):  # new keys somewhere, and an update of a published key
        value, low = rng.choice("de"), rng.choice([300, 320, 500, 700, 900])  # some blocks overlap
        ids = {f"o{rng.randint(low, low + 30):04d}" for _ in range(15)} | {f"o{rng.randint(100, 250):04d}"}
        rows += [{am.VALUE: value, "order_id": k, am.BLOCK: block, am.FILE: 3 + block % 4,
                  am.CURATED_ROW: block * 100 + i}
                 for i, k in enumerate(sorted(ids))]  # fmt: skip
    copied = rng.choice([r for r in rows if r["order_id"] >= "o0300"])  # a slow line updating a block's new key
    rows += [{am.VALUE: copied[am.VALUE], "order_id": copied["order_id"]},
             {am.VALUE: rng.choice("de"), "order_id": f"o{rng.randint(0, 1000):04d}"}]  # fmt: skip
    schema = am.ranked_schema(SPEC)
    batch = pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema}, schema=schema)
    batch = batch.set_column(schema.get_field_index(am.LINE), am.LINE, pa.array(range(batch.num_rows), pa.int64()))
    batch = batch.set_column(schema.get_field_index(am.SOURCE_OBJECT), am.SOURCE_OBJECT,
                             pa.array(["s3://r/b"] * batch.num_rows).dictionary_encode())  # fmt: skip
    whole = [batch] + [am.published_rows(t, v, n, set(), SPEC)[0] for n, (v, t) in enumerate(published)]
    narrow = am.narrowed(batch, published, SPEC)
    assert narrow.num_rows < batch.num_rows
    few = [narrow] + [am.published_rows(t, v, n, set(), SPEC, narrow)[0] for n, (v, t) in enumerate(published)]
    expected = am.rank(am.concat(whole, SPEC), SPEC, files, set(files[3:]))
    assert expected.duplicates
    got = am.rank(am.concat(few, SPEC), SPEC, files, set(files[3:]))
    assert got.duplicates == expected.duplicates and sorted(got.slow) == sorted(expected.slow)
    assert {f: sorted(p) for f, p in got.fast.items()} == {f: sorted(p) for f, p in expected.fast.items()}
    assert {f: sorted(p) for f, p in got.published.items()} == {f: sorted(p) for f, p in expected.published.items()}
