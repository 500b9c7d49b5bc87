"""Reading order of tables that Tesseract's automatic layout splits into columns.

Tesseract's page segmentation (psm 3) cuts a receipt's or an invoice's item table into side-by-side
blocks, the labels in one and the amounts in another, and reads them one after the other: the
text loses its rows (on rendered receipts and invoices, a CER of 0.16-0.63 where reading the page
as one block gives 0.02-0.10). Multi-column prose splits the same way and must stay split, so
the two are told apart by line length: table cells hold one or two words, prose lines six or more.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from docflow_assets.ocr.engines import Word

ROW_ALIGNED_SHARE = 0.3  # of lines with a line of another block beside them, at the same height
MAX_TABLE_WORDS_PER_LINE = 3  # median words per line; prose columns run 6 and more


@dataclass
class _Line:
    block: int
    top: int
    bottom: int
    left: int
    right: int
    words: int = 0

    def beside(self, other: _Line) -> bool:
        """At the same height, in another block, left or right of this line."""
        overlap = min(self.bottom, other.bottom) - max(self.top, other.top)
        shorter = min(self.bottom - self.top, other.bottom - other.top)
        apart = other.left >= self.right or other.right <= self.left
        return other.block != self.block and apart and overlap > 0.5 * shorter


def _lines(words: list[Word]) -> list[_Line]:
    lines: dict[int, _Line] = {}
    for word in words:
        left, top, width, height = word.box
        line = lines.setdefault(word.line, _Line(word.block, top, top + height, left, left + width))
        line.top, line.bottom = min(line.top, top), max(line.bottom, top + height)
        line.left, line.right = min(line.left, left), max(line.right, left + width)
        line.words += 1
    return list(lines.values())


def table_split_into_columns(words: list[Word]) -> bool:
    """Whether a reading's lines sit side by side across blocks, row for row, and are short like
    table cells: a table whose rows the automatic layout has cut apart."""
    lines = _lines(words)
    if len(lines) < 4:
        return False
    beside = sum(any(line.beside(other) for other in lines) for line in lines)
    short = median(line.words for line in lines) <= MAX_TABLE_WORDS_PER_LINE
    return short and beside >= ROW_ALIGNED_SHARE * len(lines)
