"""Reading order of detected text lines: prose columns one after the other, tables row by row.

A line detector (PP-OCR's) finds line boxes but no layout. Recursive XY-cut orders them: a
region is cut at its widest blank band across or down the page, and the parts are read top to
bottom or left to right. A cut down the page is only taken between prose columns (lines of four
words or more on both sides): a receipt's labels and amounts also lie on both sides of a blank
band, and reading those as two columns would part every amount from its label.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from statistics import median

PROSE_MIN_WORDS = 4  # median words per line on each side of a column gutter
MIN_GUTTER_SHARE = 0.01  # of the region's width: a narrower blank band is a word space


@dataclass
class Line:
    box: tuple[int, int, int, int]  # left, top, width, height
    words: list[tuple[str, float, tuple[int, int, int, int]]]

    @property
    def left(self) -> int:
        return self.box[0]

    @property
    def right(self) -> int:
        return self.box[0] + self.box[2]

    @property
    def top(self) -> int:
        return self.box[1]

    @property
    def bottom(self) -> int:
        return self.box[1] + self.box[3]


def _widest_gap(spans: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The widest blank stretch between the spans' union, as (start, width)."""
    best: tuple[int, int] | None = None
    ordered = sorted(spans)
    reach = ordered[0][1]
    for start, end in ordered[1:]:
        if start > reach and (best is None or start - reach > best[1]):
            best = (reach, start - reach)
        reach = max(reach, end)
    return best


def _is_prose(lines: list[Line]) -> bool:
    return median(len(line.words) for line in lines) >= PROSE_MIN_WORDS


def _rows(lines: list[Line]) -> list[Line]:
    """Lines top to bottom; lines at the same height left to right."""
    ordered: list[list[Line]] = []
    for line in sorted(lines, key=lambda ln: ln.top + ln.bottom):
        row = ordered[-1] if ordered else None
        centre = (line.top + line.bottom) / 2
        if row and min(r.top for r in row) <= centre <= max(r.bottom for r in row):
            row.append(line)
        else:
            ordered.append([line])
    return [line for row in ordered for line in sorted(row, key=lambda ln: ln.left)]


@dataclass
class _Block:
    lines: list[Line]
    column: int  # which region of prose columns side by side it belongs to; 0: none


def _cut(lines: list[Line], column: int, columns: Iterator[int]) -> list[_Block]:
    """The region's lines as blocks in reading order. Cuts across the page between rows make
    no blocks of their own: consecutive parts of the same column read as one."""
    if len(lines) <= 1:
        return [_Block(lines, column)]
    across = _widest_gap([(line.top, line.bottom) for line in lines])
    down = _widest_gap([(line.left, line.right) for line in lines])
    width = max(line.right for line in lines) - min(line.left for line in lines)
    if down is not None and down[1] >= MIN_GUTTER_SHARE * width:
        gutter = down[0] + down[1] / 2
        left = [line for line in lines if line.right <= gutter]
        right = [line for line in lines if line.left >= gutter]
        if (across is None or down[1] >= across[1]) and _is_prose(left) and _is_prose(right):
            return _cut(left, next(columns), columns) + _cut(right, next(columns), columns)
    if across is None:
        return [_Block(_rows(lines), column)]
    split = across[0] + across[1] / 2
    parts = _cut([ln for ln in lines if ln.bottom <= split], column, columns) + _cut(
        [ln for ln in lines if ln.top >= split], column, columns
    )
    blocks: list[_Block] = []
    for part in parts:
        if blocks and blocks[-1].column == part.column:
            blocks[-1] = _Block(blocks[-1].lines + part.lines, part.column)
        else:
            blocks.append(part)
    return blocks


def reading_order(lines: list[Line]) -> list[tuple[int, Line]]:
    """Each line with the number of its block (a prose column, or the text around columns),
    in reading order."""
    if not lines:
        return []
    blocks = _cut(lines, 0, count(1))
    return [(number, line) for number, block in enumerate(blocks) for line in block.lines]
