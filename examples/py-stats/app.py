"""`py-stats`: statistics of a CSV's numeric columns, as a cairn task.

The CSV is a blob read as a stream (one chunk at a time, see `cairn_task`),
so it need not fit in the task's memory; one pass, Welford's update for the
mean and deviation. Built by `build.sh` next to this file.
"""

import csv
import math

from cairn_task import Blob
from wit_world import exports
from wit_world.exports.columns import Column
from wit_world.imports.blobs import Blob as Handle


class _Stats:
    """Running count, mean, spread and range of one column."""

    __slots__ = ("numeric", "count", "mean", "m2", "min", "max")

    def __init__(self) -> None:
        self.numeric = True
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min = math.inf
        self.max = -math.inf

    def add(self, cell: str) -> None:
        cell = cell.strip()
        if not cell or not self.numeric:
            return
        try:
            x = float(cell)
        except ValueError:
            self.numeric = False
            return
        if not math.isfinite(x):
            self.numeric = False
            return
        self.count += 1
        delta = x - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (x - self.mean)
        self.min = min(self.min, x)
        self.max = max(self.max, x)


def describe(rows) -> list:
    """Column statistics of `rows` (an iterator of lists of cells, header first)."""
    header = next(rows, None)
    if header is None:
        return []
    stats = [_Stats() for _ in header]
    for row in rows:
        for s, cell in zip(stats, row):
            s.add(cell)
    return [
        Column(
            name=name.strip(),
            count=s.count,
            mean=s.mean,
            min=s.min,
            max=s.max,
            stddev=math.sqrt(s.m2 / s.count),
        )
        for name, s in zip(header, stats)
        if s.numeric and s.count > 0
    ]


class Columns(exports.Columns):
    def describe(self, csv_blob: Handle) -> list:
        with Blob(csv_blob).text_reader(newline="") as text:
            return describe(csv.reader(text))
