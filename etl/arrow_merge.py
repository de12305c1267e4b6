"""The merge of a fast-path batch (etl/fast_csv.py) onto the files it competes with, ranked by Arrow on the driver.

Why: the batch's fast rows are in their curated files already, and so are the published rows it may update. What
the merge has to find is which rows lose their key, and that needs only the key columns of the rows that may share a
key (etl/key_ranges.py): the fast rows of overlapping blocks, the slow lines' rows, and the rows of the published
files the batch touches (etl/snapshot.py), narrowed by their keys (`narrowed`, `published_rows`). Those are ranked
here in a fraction of a second, where Spark spent about two seconds in the jobs of a shuffle, and a file is then
rewritten without its losers by Arrow (etl/arrow_write.py) instead of Spark reading every carried row to write it
again (bench/incremental.py). Above `MAX_ROWS` rows the run merges with Spark instead
(etl/transforms.py::merge_batch).

The ranking is the one of `etl.transforms.deduplicate`: per (partition, primary key) the greatest `deduplicate_by`
(a null loses), then source object, then line number, then raw-line hash (a null loses). Strings compare by their
UTF-8 bytes in both.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from etl.key_ranges import Piece, overlapping
from etl.spec import DatasetSpec
from etl.transforms import CURATED_FILE, CURATED_ROW, LINE, ROW_HASH, SOURCE_OBJECT

# Rows ranked on the driver at most (about 60 bytes each of key columns for an orders-like key); above, Spark merges.
MAX_ROWS = 4_000_000
# Slow lines' rows the driver collects for the ranking at most: they cross py4j as Python rows, not Arrow.
MAX_COLLECTED_ROWS = 200_000
VALUE = "_partition_value"
FILE = "_file"  # a row's curated file, as its position in the ranking's list of files
BLOCK = "_block"  # a fast row's block, as its position in the run's list of blocks (etl/fast_csv.py)


@dataclass
class Losers:
    """What the ranking removes: per partition value the rows that lost their key (counted from the key columns
    alone), and where they are: positions in curated files (fast rows), positions in published files (carried rows;
    with the rows of objects the batch re-reads), and (source object, line number) of the slow lines' rows."""

    duplicates: dict[str, int] = field(default_factory=dict)
    fast: dict[str, list[int]] = field(default_factory=dict)
    published: dict[str, list[int]] = field(default_factory=dict)
    slow: list[tuple[str, int]] = field(default_factory=list)


def ranked_columns(spec: DatasetSpec) -> list[Any]:
    """The spec's columns a ranking orders by besides where a row is: the primary key and `deduplicate_by`."""
    return [c for c in spec.columns if c.name in (*spec.primary_key, spec.deduplicate_by)]


def ranked_schema(spec: DatasetSpec) -> Any:
    """The columns ranked: partition value, primary key, `deduplicate_by`, source object (dictionary-encoded: a
    file's rows share a few), line number, raw-line hash, and where the row is: its file's position in the ranking's
    list of files (`FILE`) and its position in that file (both null for a slow line's row), and a fast row's block
    (`BLOCK`, null for the other rows)."""
    import pyarrow as pa

    from etl.fast_csv import arrow_type

    return pa.schema([pa.field(VALUE, pa.string())] + [pa.field(c.name, arrow_type(c)) for c in ranked_columns(spec)]
                     + [pa.field(SOURCE_OBJECT, pa.dictionary(pa.int32(), pa.string())), pa.field(LINE, pa.int64()),
                        pa.field(ROW_HASH, pa.int64()), pa.field(FILE, pa.int32()),
                        pa.field(CURATED_ROW, pa.int64()), pa.field(BLOCK, pa.int32())])  # fmt: skip


def conform(table: Any, spec: DatasetSpec) -> Any:
    """`table` in `ranked_schema`: missing columns null, types cast."""
    import pyarrow as pa

    schema = ranked_schema(spec)
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]  # fmt: skip
    return pa.table(columns, schema=schema)


def read_parquet(storage: Any, uri: str, columns: list[str] | None = None) -> Any:
    """A curated or staged Parquet file's `columns`, its file names and source objects as dictionaries (a file's
    rows share a few: decoded, they were most of the ranking's reads)."""
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory(prefix="lake-arrow-merge-") as folder:
        return pq.read_table(storage.get_file(uri, str(Path(folder) / "file.parquet")), columns=columns,
                             read_dictionary=[CURATED_FILE, SOURCE_OBJECT])  # fmt: skip


def fast_rows(table: Any, blocks: list[tuple[int, int, str, int]], suspects: set[int] | None, files: list[str],
              spec: DatasetSpec) -> Any:  # fmt: skip
    """A staged keys file's rows (etl/fast_csv.py::keys_schema, as `read_parquet` reads it) in `ranked_schema`: those
    of its blocks in `suspects`, or all of them (None). `blocks` are the file's blocks in the order their rows were
    written: (position in the run's list of blocks, rows, curated file and position of its first row); a block whose
    first row is not there fails. Their curated files must be in `files`."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    index = {uri: n for n, uri in enumerate(files)}
    chunks = []
    for chunk in table.column(CURATED_FILE).chunks:  # each file name once per chunk, not once per row
        names = chunk.dictionary.to_pylist()
        unknown = sorted(set(names) - index.keys())
        if unknown:
            raise RuntimeError(f"staged keys name curated files the run did not write: {unknown[:3]}")
        positions = pa.array([index[uri] for uri in names], pa.int32())
        chunks.append(positions.take(chunk.indices))
    counts = [rows for _, rows, _, _ in blocks]
    if sum(counts) != table.num_rows:
        raise RuntimeError(f"staged keys hold {table.num_rows} rows, but their blocks placed {sum(counts)}")
    table = table.append_column(FILE, pa.chunked_array(chunks, pa.int32()))
    starts = np.cumsum([0, *counts[:-1]], dtype=np.int64)
    firsts = table.select([FILE, CURATED_ROW]).take(pa.array(starts)).to_pylist() if blocks else []
    for (n, _, uri, position), row in zip(blocks, firsts, strict=True):
        if (row[FILE], row[CURATED_ROW]) != (index[uri], position):
            raise RuntimeError(f"staged keys are not in the order of their blocks: block {n} starts at {uri} row "
                               f"{position}, its rows at {files[row[FILE]]} row {row[CURATED_ROW]}")  # fmt: skip
    numbers = np.repeat(np.array([n for n, *_ in blocks], dtype=np.int32), counts)
    table = table.append_column(BLOCK, pa.array(numbers))
    if suspects is not None:
        table = table.filter(pc.is_in(table.column(BLOCK), value_set=pa.array(sorted(suspects), pa.int32())))
    return conform(table.append_column(VALUE, table.column(spec.partition_key)), spec)


def narrowed(batch: Any, published: list[tuple[str, Any]], spec: DatasetSpec) -> Any:
    """The rows of `batch` (the batch's rows that may share a key, in `ranked_schema`) that may share their key with
    a row of the `published` files (partition value, their key columns as `read_parquet` reads them) or with another
    row of the batch: the rows whose first key column lies within the published files' range of their partition
    value, the slow lines' rows, and the rows outside it of the blocks whose range there overlaps another block's or
    the slow rows' (etl/key_ranges.py). Two rows of one key are both within a range or both outside it. A batch
    whose key has a null keeps every row (a null equals a null, which no range holds).

    Why: a batch that updates a few rows of a published file brings its new keys in the same blocks, so every
    block overlaps the file and every row was ranked: 800k rows for bench/incremental.py's 400k-row batch, whose
    search for repeated keys took 0.2 s of its 2 s. Its 4,000 updates are what lies within the file's range."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first = spec.primary_key[0]
    if not batch.num_rows or any(batch.column(k).null_count for k in spec.primary_key):
        return batch
    kind = ranked_schema(spec).field(first).type
    keys, values = batch.column(first), batch.column(VALUE)
    columns: dict[str, list[Any]] = {}
    for value, table in published:
        columns.setdefault(value, []).extend(table.column(first).cast(kind).chunks)
    is_slow = pc.is_null(batch.column(BLOCK))  # the slow lines' rows, all kept
    keep = is_slow.to_numpy(zero_copy_only=False)
    span = pc.min_max(values)  # most batches hold one partition value: then no row's value is compared
    only = span["min"].as_py() if span["min"].as_py() == span["max"].as_py() else None
    for value, chunks in columns.items():
        bounds = pc.min_max(pa.chunked_array(chunks, kind))  # a published null key equals no key of the batch
        if (only is not None and only != value) or not bounds["min"].is_valid:
            continue
        within = pc.and_(pc.greater_equal(keys, bounds["min"]), pc.less_equal(keys, bounds["max"]))
        if only is None:
            within = pc.and_(pc.equal(values, pa.scalar(value, pa.string())), within)
        keep |= within.to_numpy(zero_copy_only=False)
    if keep.all():
        return batch
    outside = batch.select([BLOCK, first, VALUE] if only is None else [BLOCK, first]).filter(pa.array(~keep))
    tails = outside.group_by(BLOCK).aggregate([(first, "min"), (first, "max")]
                                              + ([(VALUE, "min")] if only is None else []))  # fmt: skip
    pieces = [Piece(row.get(f"{VALUE}_min", only), {first: (row[f"{first}_min"], row[f"{first}_max"])})
              for row in tails.to_pylist()]  # fmt: skip
    slow = batch.filter(is_slow)
    if slow.num_rows:
        ranges = slow.group_by(VALUE).aggregate([(first, "min"), (first, "max")])
        pieces += [Piece(row[VALUE], {first: (row[f"{first}_min"], row[f"{first}_max"])}) for row in ranges.to_pylist()]
    marked = [tails.column(BLOCK)[i].as_py() for i in overlapping(pieces, first) if i < tails.num_rows]
    if marked:
        keep |= pc.is_in(batch.column(BLOCK), value_set=pa.array(marked, pa.int32())).to_numpy(zero_copy_only=False)
    return batch.filter(pa.array(keep))


def published_columns(spec: DatasetSpec) -> list[str]:
    """The columns of a published file the ranking reads."""
    return [c.name for c in ranked_columns(spec)] + [SOURCE_OBJECT]


def published_rows(table: Any, value: str, file: int, replaced: set[str], spec: DatasetSpec,
                   batch: Any = None) -> tuple[Any, list[int]]:  # fmt: skip
    """The ranked columns of a published file's rows (`published_columns`, as `read_parquet` reads them; the file is
    `file` in the ranking's list of files), and the positions of its rows of objects the batch re-reads (left out of
    the ranking: the batch's rows of those objects replace them). With `batch` (the batch's rows that may share a
    key, `narrowed`), only the rows whose key one of them holds: a published snapshot holds a key once, so any
    other row keeps it. A batch with a null key keeps every row (a join matches no null)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    positions = pa.array(np.arange(table.num_rows, dtype=np.int64))
    table = table.append_column(CURATED_ROW, positions)
    gone: list[int] = []
    if replaced:
        hit = pc.is_in(table.column(SOURCE_OBJECT), value_set=pa.array(sorted(replaced), pa.string()))
        gone = positions.filter(hit).to_pylist()
        table = table.filter(pc.invert(hit))
    keys = list(spec.primary_key)
    if batch is not None and keys and not any(batch.column(k).null_count for k in keys):
        schema = ranked_schema(spec)
        mine = batch.filter(pc.equal(batch.column(VALUE), pa.scalar(value, pa.string()))).select(keys)
        index = positions if table.num_rows == len(positions) else pa.array(np.arange(table.num_rows, dtype=np.int64))
        probe = pa.table([table.column(k).cast(schema.field(k).type) for k in keys] + [index],
                         names=[*keys, "_index"])  # fmt: skip
        table = table.take(probe.join(mine, keys, join_type="left semi").column("_index"))
    table = (table.append_column(VALUE, pa.repeat(pa.scalar(value, pa.string()), table.num_rows))
             .append_column(FILE, pa.repeat(pa.scalar(file, pa.int32()), table.num_rows)))  # fmt: skip
    return conform(table, spec), gone


def slow_rows(rows: list[Any], spec: DatasetSpec) -> Any:
    """The slow lines' valid rows as Spark collected them (the ranked columns; timestamps naive, in UTC)."""
    import pyarrow as pa

    schema = ranked_schema(spec)
    names = [f.name for f in schema if f.name not in (VALUE, FILE, CURATED_ROW, BLOCK)]
    data = {name: [row[name] for row in rows] for name in names}
    data[VALUE] = [row[spec.partition_key] for row in rows]
    return pa.table({f.name: pa.array(data.get(f.name, [None] * len(rows)), f.type) for f in schema}, schema=schema)


def concat(tables: list[Any], spec: DatasetSpec) -> Any:
    import pyarrow as pa

    return pa.concat_tables(tables) if tables else ranked_schema(spec).empty_table()


def repeated_keys(table: Any, keys: list[str]) -> Any:
    """The values of `keys` that occur in more than one row of `table` (a null equal to a null), with their rows
    (`versions`)."""
    import pyarrow.compute as pc

    versions = table.select(keys).group_by(keys).aggregate([([], "count_all")]).rename_columns([*keys, "versions"])
    return versions.filter(pc.greater(versions.column("versions"), 1))


def losing_rows(table: Any, keys: list[str], descending: list[str], repeated: Any) -> Any:
    """The rows of `table` that lose their key (`keys`, a null equal to a null, as in Spark's window) to another
    row: the first in the descending order of `descending` (a null last) wins. Only the rows of the `repeated` keys
    (`repeated_keys`) are sorted; a join matches no null key, so with one the whole table is."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = any(table.column(k).null_count for k in keys)
    if nulls:
        contested = table
    else:  # joined on the keys alone (a hash join's payload must not be a dictionary), then taken
        positions = table.select(keys).append_column("_position", pa.array(np.arange(table.num_rows, dtype=np.int64)))
        contested = table.take(positions.join(repeated.select(keys), keys=keys, join_type="inner").column("_position"))
    plain = [c.cast(c.type.value_type) if pa.types.is_dictionary(c.type) else c for c in contested.columns]
    contested = pa.table(plain, names=contested.column_names)  # sorted decoded (few rows, unless a key is null)
    ranking = [(k, "ascending") for k in keys] + [(c, "descending") for c in descending]
    ranked = contested.take(pc.sort_indices(contested, sort_keys=ranking, null_placement="at_end"))
    same = np.ones(max(ranked.num_rows - 1, 0), dtype=bool)
    for key in keys:
        column = ranked.column(key)
        before, after = column.slice(0, ranked.num_rows - 1), column.slice(1)
        equal = pc.or_kleene(pc.equal(before, after), pc.and_(pc.is_null(before), pc.is_null(after)))
        same &= pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
    return ranked.take(pa.array(np.flatnonzero(same) + 1))


def rank(table: Any, spec: DatasetSpec, files: list[str], fast_files: set[str]) -> Losers:
    """The rows of `table` (in `ranked_schema`, its `FILE` a position in `files`) that lose their key, by where they
    are (the fast rows' files are `fast_files`). Their count per partition
    value must equal the key columns' own count of repeated versions, or the ranking lost or kept a row it should
    not have, and the run fails."""
    import numpy as np
    import pyarrow.compute as pc

    keys = [VALUE, *spec.primary_key]
    losers = Losers()
    if table.num_rows < 2:
        return losers
    repeated = repeated_keys(table, keys)
    per_value = repeated.group_by(VALUE).aggregate([("versions", "sum"), ([], "count_all")])
    for row in per_value.to_pylist():
        losers.duplicates[row[VALUE]] = row["versions_sum"] - row["count_all"]
    if not losers.duplicates:
        return losers
    order = [spec.deduplicate_by] if spec.deduplicate_by else []
    lost = losing_rows(table, keys, [*order, SOURCE_OBJECT, LINE, ROW_HASH], repeated)
    found = {row["values"]: row["counts"] for row in pc.value_counts(lost.column(VALUE)).to_pylist()}
    where = pc.fill_null(lost.column(FILE), -1).to_numpy(zero_copy_only=False)
    positions = pc.fill_null(lost.column(CURATED_ROW), -1).to_numpy(zero_copy_only=False)
    for number in np.unique(where[where >= 0]).tolist():
        kind = losers.fast if files[number] in fast_files else losers.published
        kind.setdefault(files[number], []).extend(positions[where == number].tolist())
    slow = lost.filter(pc.is_null(lost.column(FILE)))
    losers.slow = list(zip(slow.column(SOURCE_OBJECT).to_pylist(), slow.column(LINE).to_pylist(), strict=True))
    if found != losers.duplicates:
        raise RuntimeError(f"the merge's ranking removed {found} rows, but the key columns count {losers.duplicates} "
                           f"older versions")  # fmt: skip
    return losers
