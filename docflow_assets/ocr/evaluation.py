"""How close OCR text is to ground truth: character and word error rates, and word F1.

Word F1 is the ICDAR 2019 SROIE task-2 measure used for receipts: both texts split on
whitespace, true positives the multiset intersection of the two bags of words, case-sensitive,
summed over a corpus before dividing. It ignores reading order, which receipts' side-by-side
columns make ambiguous; CER does not, and suits pages with one reading order.
"""

from __future__ import annotations

import csv
import re
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from docflow_assets.ocr.pages import sniffed_content_type
from docflow_assets.ocr.pipeline import OcrOptions, ocr_document

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def character_error_rate(reference: str, hypothesis: str) -> float:
    reference, hypothesis = normalise(reference), normalise(hypothesis)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return Levenshtein.distance(reference, hypothesis) / len(reference)


def word_error_rate(reference: str, hypothesis: str) -> float:
    words, guess = normalise(reference).split(), normalise(hypothesis).split()
    if not words:
        return 0.0 if not guess else 1.0
    return Levenshtein.distance(words, guess) / len(words)


@dataclass
class WordCounts:
    """Words right, read and expected; add pages up before taking the ratios."""

    matched: int = 0
    read: int = 0
    expected: int = 0

    def __add__(self, other: WordCounts) -> WordCounts:
        return WordCounts(
            self.matched + other.matched, self.read + other.read, self.expected + other.expected
        )

    @property
    def precision(self) -> float:
        return self.matched / self.read if self.read else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 0.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


def word_counts(reference: str, hypothesis: str) -> WordCounts:
    expected, read = Counter(reference.split()), Counter(hypothesis.split())
    return WordCounts(sum((expected & read).values()), sum(read.values()), sum(expected.values()))


def receipt_transcript(path: Path) -> str:
    """The text of a SROIE-style ground-truth file: one line per row, eight corner
    coordinates, then the transcript (which may itself hold commas)."""
    with path.open(newline="", encoding="utf-8", errors="replace") as handle:
        return "\n".join(",".join(row[8:]) for row in csv.reader(handle) if len(row) > 8)


@dataclass(frozen=True)
class EvaluationRow:
    mode: str
    pages: int
    cer: float
    wer: float
    seconds: float
    words: WordCounts

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def receipt_pairs(folder: Path) -> list[tuple[Path, str]]:
    """Each ``images/NAME.*`` of a receipts folder with the transcript of ``gt/NAME.csv``."""
    pairs = []
    for image in sorted((folder / "images").iterdir()):
        truth = folder / "gt" / f"{image.stem}.csv"
        if image.is_file() and truth.is_file():
            pairs.append((image, receipt_transcript(truth)))
    return pairs


def ground_truth_pairs(folder: Path) -> list[tuple[Path, str]]:
    """Each document with its ground truth: ``NAME.gt.txt`` or ``NAME.txt`` beside it, or, in a
    receipts folder (``images/`` and ``gt/``), a SROIE-style ``gt/NAME.csv``."""
    if (folder / "images").is_dir() and (folder / "gt").is_dir():
        return receipt_pairs(folder)
    pairs = []
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() in {".txt", ".csv", ".uzn", ".md"}:
            continue
        stem = path.name.rsplit(".", 1)[0]
        for candidate in (folder / f"{stem}.gt.txt", folder / f"{stem}.txt"):
            if candidate.is_file():
                pairs.append((path, candidate.read_text(errors="replace")))
                break
    return pairs


def evaluate_modes(
    pairs: list[tuple[Path, str]], modes: dict[str, OcrOptions], show_progress: bool = False
) -> list[EvaluationRow]:
    """Corpus-level CER/WER (edits over reference length) and time of each OCR mode."""
    from tqdm import tqdm

    rows = []
    for mode, options in modes.items():
        char_edits = char_total = word_edits = word_total = pages = 0
        counts = WordCounts()
        started = time.perf_counter()
        for path, truth in tqdm(pairs, desc=mode, unit="doc", disable=not show_progress):
            data = path.read_bytes()
            read = ocr_document(data, sniffed_content_type(data), options)
            pages += len(read)
            text = "\n".join(page.text for page in read)
            reference = normalise(truth)
            char_edits += round(character_error_rate(truth, text) * len(reference))
            char_total += len(reference)
            words = len(reference.split())
            word_edits += round(word_error_rate(truth, text) * words)
            word_total += words
            counts += word_counts(truth, text)
        rows.append(
            EvaluationRow(
                mode,
                pages,
                char_edits / max(char_total, 1),
                word_edits / max(word_total, 1),
                time.perf_counter() - started,
                counts,
            )
        )
    return rows
