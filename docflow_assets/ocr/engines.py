"""OCR engines behind one interface: per-word text, box and confidence (0-1), with timings."""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any, Protocol

import pytesseract
from PIL import Image

# Tesseract's OpenMP threads fight over 2 cores (3x slower); parallelise across pages instead.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


@dataclass(frozen=True)
class Word:
    text: str
    box: tuple[int, int, int, int]  # left, top, width, height in page pixels
    confidence: float
    line: int = 0
    block: int = 0  # Tesseract's layout block (a column or a table cell group)


@dataclass
class PageText:
    engine: str
    language: str
    words: list[Word]
    seconds: float
    preprocessing: dict[str, Any] = field(default_factory=dict)
    text: str = ""

    @property
    def mean_confidence(self) -> float:
        if not self.words:
            return 0.0
        return sum(word.confidence for word in self.words) / len(self.words)

    def words_as_dicts(self) -> list[dict[str, Any]]:
        return [asdict(word) for word in self.words]


def text_from_words(words: list[Word]) -> str:
    """Words joined by spaces within a line, lines by newlines, lines in number order."""
    lines: dict[int, list[str]] = {}
    for word in words:
        lines.setdefault(word.line, []).append(word.text)
    return "\n".join(" ".join(lines[number]) for number in sorted(lines))


class UnsupportedLanguage(ValueError):
    pass


@cache
def installed_languages() -> frozenset[str]:
    return frozenset(pytesseract.get_languages(config=""))


def check_languages(language: str) -> None:
    """Refuse a Tesseract language spec (``eng+rus``) naming a language that is not installed."""
    missing = [part for part in language.split("+") if part not in installed_languages()]
    if missing:
        raise UnsupportedLanguage(
            f"OCR language(s) {', '.join(missing)} not installed; "
            f"available: {', '.join(sorted(installed_languages()))}"
        )


class OcrEngine(Protocol):
    name: str

    def read(self, image: Image.Image, language: str) -> PageText: ...


AUTOMATIC_LAYOUT = 3  # Tesseract's page segmentation modes (--psm)
SINGLE_BLOCK = 6


class TesseractEngine:
    name = "tesseract"

    def __init__(self, page_segmentation_mode: int = AUTOMATIC_LAYOUT) -> None:
        self.page_segmentation_mode = page_segmentation_mode
        self.config = f"--psm {page_segmentation_mode}"

    def read(self, image: Image.Image, language: str) -> PageText:
        started = time.perf_counter()
        uncompressed = image.copy()
        # pytesseract hands the page over as a file. Uncompressed TIFF costs no compression
        # time and is the format Leptonica reads fastest (callgrind on a 300 dpi page: 3% of
        # Tesseract's instructions fewer than BMP, 1% fewer than PNG, 5% fewer than PGM).
        uncompressed.format = "TIFF"
        uncompressed.info = {}
        data = pytesseract.image_to_data(
            uncompressed, lang=language, config=self.config, output_type=pytesseract.Output.DICT
        )
        words: list[Word] = []
        line_keys: dict[tuple[int, int, int], int] = {}
        for index, raw_text in enumerate(data["text"]):
            text = raw_text.strip()
            confidence = float(data["conf"][index])
            if not text or confidence < 0:
                continue
            key = (data["block_num"][index], data["par_num"][index], data["line_num"][index])
            line = line_keys.setdefault(key, len(line_keys))
            box = (
                int(data["left"][index]),
                int(data["top"][index]),
                int(data["width"][index]),
                int(data["height"][index]),
            )
            words.append(Word(text, box, confidence / 100.0, line, int(data["block_num"][index])))
        return PageText(
            engine=self.name,
            language=language,
            words=words,
            seconds=time.perf_counter() - started,
            text=text_from_words(words),
        )
