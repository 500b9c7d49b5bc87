"""Cascade OCR: Tesseract everywhere, EasyOCR only on the lines Tesseract is unsure of.

On a clean page no line is below the threshold and the page costs one Tesseract pass.
"""

from __future__ import annotations

import time
from collections import defaultdict

import numpy as np
from PIL import Image

from docflow_assets.ocr.easyocr_engine import EasyOcrEngine, split_words
from docflow_assets.ocr.engines import PageText, Word, text_from_words

LINE_PADDING = 4


def line_box(words: list[Word], width: int, height: int) -> tuple[int, int, int, int]:
    left = max(0, min(w.box[0] for w in words) - LINE_PADDING)
    top = max(0, min(w.box[1] for w in words) - LINE_PADDING)
    right = min(width, max(w.box[0] + w.box[2] for w in words) + LINE_PADDING)
    bottom = min(height, max(w.box[1] + w.box[3] for w in words) + LINE_PADDING)
    return left, top, right - left, bottom - top


def cascade(
    image: Image.Image,
    tesseract_page: PageText,
    threshold: float,
    engine: EasyOcrEngine | None = None,
) -> PageText:
    """Re-read each line whose mean Tesseract confidence is under ``threshold`` with EasyOCR,
    keeping EasyOCR's reading where it is the more confident one."""
    started = time.perf_counter()
    grey = np.asarray(image.convert("L"))
    lines: dict[int, list[Word]] = defaultdict(list)
    for word in tesseract_page.words:
        lines[word.line].append(word)
    reader = engine or EasyOcrEngine()
    words: list[Word] = []
    reread = replaced = 0
    for number in sorted(lines):
        line_words = lines[number]
        confidence = sum(w.confidence for w in line_words) / len(line_words)
        if confidence >= threshold:
            words += line_words
            continue
        reread += 1
        left, top, width, height = line_box(line_words, grey.shape[1], grey.shape[0])
        text, easy_confidence = reader.read_line(
            grey[top : top + height, left : left + width], tesseract_page.language
        )
        if text.strip() and easy_confidence > confidence:
            replaced += 1
            words += split_words(text, (left, top, width, height), easy_confidence, number)
        else:
            words += line_words
    return PageText(
        engine="cascade",
        language=tesseract_page.language,
        words=words,
        seconds=tesseract_page.seconds + time.perf_counter() - started,
        preprocessing={
            **tesseract_page.preprocessing,
            "cascade_threshold": threshold,
            "lines": len(lines),
            "lines_reread_by_easyocr": reread,
            "lines_replaced": replaced,
        },
        text=text_from_words(words),
    )
