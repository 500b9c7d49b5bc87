"""Character and word error rates against ground truth."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from rapidfuzz.distance import Levenshtein

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


@dataclass(frozen=True)
class EvaluationRow:
    mode: str
    pages: int
    cer: float
    wer: float
    seconds: float

    @property
    def pages_per_second(self) -> float:
        return self.pages / self.seconds if self.seconds else 0.0


def ground_truth_pairs(folder: Path) -> list[tuple[Path, str]]:
    """Each document with a ``NAME.gt.txt`` or ``NAME.txt`` beside it, and that text."""
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
    pairs: list[tuple[Path, str]], modes: dict[str, OcrOptions]
) -> list[EvaluationRow]:
    """Corpus-level CER/WER (edits over reference length) and time of each OCR mode."""
    from docflow_assets.ingest import inspect_content
    from docflow_assets.settings import DocflowSettings

    settings = DocflowSettings()
    rows = []
    for mode, options in modes.items():
        char_edits = char_total = word_edits = word_total = pages = 0
        started = time.perf_counter()
        for path, truth in pairs:
            data = path.read_bytes()
            content_type = inspect_content(data, settings).content_type
            read = ocr_document(data, content_type, options)
            pages += len(read)
            text = "\n".join(page.text for page in read)
            reference = normalise(truth)
            char_edits += round(character_error_rate(truth, text) * len(reference))
            char_total += len(reference)
            words = len(reference.split())
            word_edits += round(word_error_rate(truth, text) * words)
            word_total += words
        rows.append(
            EvaluationRow(
                mode,
                pages,
                char_edits / max(char_total, 1),
                word_edits / max(word_total, 1),
                time.perf_counter() - started,
            )
        )
    return rows
