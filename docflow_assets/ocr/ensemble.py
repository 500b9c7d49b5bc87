"""ROVER-style combination of two engines' readings of one page.

The words of both engines are put on the same visual rows by their boxes, each row's two word
sequences are aligned by edit distance, and every aligned slot is voted on with confidences
calibrated to the probability that the word is right (so Tesseract's 0.9 and EasyOCR's 0.9 mean
the same thing). A word only one engine saw in a row both read must beat an empty reading to
stay; a row only one engine read is kept; junk that an engine emits on noise (no letters or
digits, long punctuation runs) never votes.
"""

from __future__ import annotations

import json
import math
import re
import time
from bisect import bisect_left
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from docflow_assets.page_text import PageText, Word, text_from_words

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")
# Calibrated probability a word must reach to stand against an empty slot in a row that the
# other engine read too.
LONE_WORD_MIN_PROBABILITY = 0.5
# A Tesseract block counts as a text column with this many lines of this mean length.
COLUMN_MIN_LINES = 4
COLUMN_MIN_LINE_CHARS = 25
SEPARATORS = frozenset("-|•*/&+=#%$")
SURE_PUNCTUATION_CONFIDENCE = 0.6
MAX_SURE_TOKEN = 12  # characters; longer runs of symbols are noise whatever the confidence
_JUNK_RUN = re.compile(r"[^\w\s]{3,}")


@dataclass(frozen=True)
class Calibration:
    """Per engine: upper edges of confidence bins and P(word correct) in each bin."""

    edges: dict[str, list[float]]
    probabilities: dict[str, list[float]]

    def probability(self, engine: str, confidence: float) -> float:
        edges = self.edges.get(engine)
        if not edges:
            return confidence
        index = min(bisect_left(edges, confidence), len(edges) - 1)
        return self.probabilities[engine][index]


@cache
def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    if not path.is_file():
        return Calibration({}, {})
    raw = json.loads(path.read_text())
    return Calibration(
        {engine: table["edges"] for engine, table in raw["engines"].items()},
        {engine: table["probabilities"] for engine, table in raw["engines"].items()},
    )


def is_junk(word: Word) -> bool:
    """Output an engine produces on specks and noise rather than on words. A word read with
    confidence is never junk: receipts are full of ``:``, ``@6%:`` and ``****`` that PP-OCR
    reads surely (dropping them cost 0.03 word F1 on real receipts). A lone dash, bar or bullet
    read with confidence is a separator."""
    text = word.text
    if word.confidence >= SURE_PUNCTUATION_CONFIDENCE and len(text) <= MAX_SURE_TOKEN:
        return False
    useful = sum(character.isalnum() for character in text)
    if useful == 0:
        return text not in SEPARATORS or word.confidence < SURE_PUNCTUATION_CONFIDENCE
    return bool(_JUNK_RUN.search(text)) or (len(text) >= 4 and useful / len(text) < 0.5)


def token(word: Word) -> str:
    return word.text.casefold().strip(".,;:!?\"'()[]")


@dataclass(frozen=True)
class Candidate:
    word: Word
    engine: str
    probability: float

    @property
    def centre_y(self) -> float:
        return self.word.box[1] + self.word.box[3] / 2


def _columns(words: list[Word]) -> dict[int, tuple[int, int, int, int]] | None:
    """Boxes of Tesseract's text-column blocks when the page has columns side by side."""
    blocks: dict[int, list[Word]] = {}
    for word in words:
        blocks.setdefault(word.block, []).append(word)
    columns = {}
    for number, block in blocks.items():
        lines = {word.line for word in block}
        characters = sum(len(word.text) + 1 for word in block)
        if len(lines) >= COLUMN_MIN_LINES and characters / len(lines) >= COLUMN_MIN_LINE_CHARS:
            left = min(w.box[0] for w in block)
            top = min(w.box[1] for w in block)
            right = max(w.box[0] + w.box[2] for w in block)
            bottom = max(w.box[1] + w.box[3] for w in block)
            columns[number] = (left, top, right, bottom)
    for first, a in columns.items():
        for second, b in columns.items():
            side_by_side = a[2] <= b[0] or b[2] <= a[0]
            overlap = min(a[3], b[3]) - max(a[1], b[1])
            if first < second and side_by_side and overlap > 0.5 * min(a[3] - a[1], b[3] - b[1]):
                return columns
    return None


def _region_of(word: Word, columns: dict[int, tuple[int, int, int, int]]) -> int | None:
    x = word.box[0] + word.box[2] / 2
    y = word.box[1] + word.box[3] / 2
    for number, (left, top, right, bottom) in columns.items():
        if left - 5 <= x <= right + 5 and top - 5 <= y <= bottom + 5:
            return number
    return None


def _rows(candidates: list[Candidate]) -> list[list[Candidate]]:
    """Words whose vertical centres lie close to a row's running centre share it (EasyOCR's
    boxes are taller than Tesseract's, so box overlap alone would merge neighbouring rows)."""
    rows: list[list[Candidate]] = []
    centre = height = 0.0
    for candidate in sorted(candidates, key=lambda c: c.centre_y):
        word_height = candidate.word.box[3]
        if rows and abs(candidate.centre_y - centre) <= 0.4 * max(height, word_height):
            rows[-1].append(candidate)
            count = len(rows[-1])
            centre += (candidate.centre_y - centre) / count
            height += (word_height - height) / count
            continue
        rows.append([candidate])
        centre, height = candidate.centre_y, float(word_height)
    return rows


def _vote_span(a: list[Candidate], b: list[Candidate]) -> list[Candidate]:
    """Words between two agreed anchors: voted one by one when both sides have as many,
    otherwise (split or merged words) the side whose words are likelier right on average (a
    plain product would favour whichever side has fewer words)."""
    if not a or not b:
        return [c for c in a or b if c.probability >= LONE_WORD_MIN_PROBABILITY]
    if len(a) == len(b):
        return [x if x.probability >= y.probability else y for x, y in zip(a, b, strict=True)]
    return a if _mean_probability(a) >= _mean_probability(b) else b


def _mean_probability(span: list[Candidate]) -> float:
    """Geometric mean of the span's probabilities."""
    return math.prod(c.probability for c in span) ** (1 / len(span))


def _combine_row(row: list[Candidate], engines: tuple[str, str]) -> list[Candidate]:
    ours = sorted((c for c in row if c.engine == engines[0]), key=lambda c: c.word.box[0])
    theirs = sorted((c for c in row if c.engine == engines[1]), key=lambda c: c.word.box[0])
    if not ours or not theirs:
        # A line the other engine missed entirely (Tesseract drops heavily noised lines): an
        # uncertain reading still costs fewer character edits than none.
        return ours or theirs
    chosen: list[Candidate] = []
    pending: tuple[list[Candidate], list[Candidate]] = ([], [])
    for operation in Levenshtein.opcodes(
        [token(c.word) for c in ours], [token(c.word) for c in theirs]
    ):
        a = ours[operation.src_start : operation.src_end]
        b = theirs[operation.dest_start : operation.dest_end]
        if operation.tag != "equal":
            pending[0].extend(a)
            pending[1].extend(b)
            continue
        chosen += _vote_span(*pending) + _vote_span(a, b)
        pending = ([], [])
    return chosen + _vote_span(*pending)


def ensemble(first: PageText, second: PageText, calibration: Calibration | None = None) -> PageText:
    """One page's words voted from two readings; ``first`` (Tesseract) decides column layout."""
    started = time.perf_counter()
    calibration = calibration or load_calibration()
    engines = (first.engine, second.engine)
    candidates = [
        Candidate(word, page.engine, calibration.probability(page.engine, word.confidence))
        for page in (first, second)
        for word in page.words
        if not is_junk(word)
    ]
    columns = _columns(first.words)
    regions: dict[int | None, list[Candidate]] = {}
    for candidate in candidates:
        region = _region_of(candidate.word, columns) if columns else None
        regions.setdefault(region, []).append(candidate)
    # Columns in Tesseract's reading order, then whatever lies outside them, top to bottom.
    order: list[int | None] = [*sorted(r for r in regions if r is not None), None]
    words: list[Word] = []
    line = 0
    for region in order:
        for row in _rows(regions.get(region, [])):
            chosen = _combine_row(row, engines)
            if chosen:
                words += [replace(c.word, line=line, confidence=c.probability) for c in chosen]
                line += 1
    dropped = len(first.words) + len(second.words) - len(candidates)
    return PageText(
        engine="ensemble",
        language=first.language,
        words=words,
        seconds=first.seconds + second.seconds + time.perf_counter() - started,
        preprocessing={
            **first.preprocessing,
            "ensemble": f"{first.engine}+{second.engine}",
            "columns": len(columns or {}),
            "junk_words_dropped": dropped,
            "seconds_by_engine": {
                first.engine: round(first.seconds, 3),
                second.engine: round(second.seconds, 3),
            },
        },
        text=text_from_words(words),
    )
