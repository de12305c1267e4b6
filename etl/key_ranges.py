"""Which pieces of a merge may share a primary key, from the key ranges each piece knows of itself.

A merge's rows come in pieces: the blocks of fast rows the tasks wrote (etl/fast_csv.py), each already free of
repeated keys, the slow lines' rows, and the published files the batch touches. A key can only repeat between two
pieces whose ranges of every key column overlap; with keys that grow over time (order ids, sequence numbers) almost
no two blocks do, and their rows need no de-duplication at all. Only the blocks that overlap another piece are
ranked (etl/arrow_merge.py); the hash search for repeated keys over every row (etl/transforms.py::merge_batch)
cost 15 s on bench/etl_throughput.py's 1 GB, whose blocks share no key.

The test is one sort and sweep over the first key column (a piece's other columns only narrow it further, and are
left out: that errs towards checking a piece, never towards skipping one). A piece whose range of that column is
unknown (a null in it, a type the footers do not range) may share a key with any other piece of its partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Piece:
    """A piece of a merge's rows: its partition value and its (min, max) per key column it knows."""

    value: str
    ranges: dict[str, tuple[Any, Any]]


def overlapping(pieces: list[Piece], first_column: str) -> set[int]:
    """Indices of the pieces that may share a key with another piece of the same partition value."""
    marked: set[int] = set()
    by_value: dict[str, list[int]] = {}
    for index, piece in enumerate(pieces):
        by_value.setdefault(piece.value, []).append(index)
    for indices in by_value.values():
        known = [i for i in indices if first_column in pieces[i].ranges]
        unknown = [i for i in indices if first_column not in pieces[i].ranges]
        if unknown and len(indices) > 1:
            marked.update(indices)
            continue
        known.sort(key=lambda i: pieces[i].ranges[first_column][0])
        highest = None
        for position, i in enumerate(known):
            low, high = pieces[i].ranges[first_column]
            if highest is not None and low <= highest:
                marked.add(i)
            if position + 1 < len(known) and pieces[known[position + 1]].ranges[first_column][0] <= high:
                marked.add(i)
            highest = high if highest is None else max(highest, high)
    return marked
