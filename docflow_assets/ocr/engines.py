"""OCR engines behind one interface: per-word text, box and confidence (0-1), with timings."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Protocol

import pytesseract
import tesserocr
from PIL import Image

from docflow_assets.page_text import PageText, Word, text_from_words

# Tesseract's OpenMP threads fight over 2 cores (3x slower); parallelise across pages instead.
os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class UnsupportedLanguage(ValueError):
    pass


# tesserocr's wheel bundles libtesseract but no language data: it reads the system's.
TESSDATA = os.environ.get("TESSDATA_PREFIX", "/usr/share/tesseract-ocr/5/tessdata/")


@cache
def installed_languages() -> frozenset[str]:
    return frozenset(
        path.stem for path in Path(TESSDATA).glob("*.traineddata") if path.stem != "osd"
    ) or frozenset(pytesseract.get_languages(config=""))


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


class ReadingTimedOut(Exception):
    """A page was still being read when the reading's deadline came."""


_deadline: ContextVar[float | None] = ContextVar("ocr_deadline", default=None)


@contextmanager
def reading_deadline(deadline: float | None) -> Iterator[None]:
    """Pages read inside this block stop at ``deadline`` (``time.monotonic()``), mid-page
    included: one huge dense page must not outlast the time a request may take."""
    token = _deadline.set(deadline)
    try:
        yield
    finally:
        _deadline.reset(token)


def milliseconds_left() -> int | None:
    """Time left to the reading's deadline (None: no deadline); ``ReadingTimedOut`` once it
    has passed."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    left = int((deadline - time.monotonic()) * 1000)
    if left <= 0:
        raise ReadingTimedOut
    return left


AUTOMATIC_LAYOUT = 3  # Tesseract's page segmentation modes (--psm)
SINGLE_BLOCK = 6


# Fewer words of three letters or more than this say too little about the dictionary share.
MIN_DICTIONARY_EVIDENCE = 10

_apis = threading.local()


def tesseract_api(language: str, page_segmentation_mode: int) -> tesserocr.PyTessBaseAPI:
    """One loaded Tesseract per thread, language and layout mode: loading a language costs
    ~0.1 s, and an API object must not be shared between threads (tesserocr releases the GIL)."""
    cache: dict[tuple[str, int], tesserocr.PyTessBaseAPI] = _apis.__dict__.setdefault("cache", {})
    key = (language, page_segmentation_mode)
    if key not in cache:
        cache[key] = tesserocr.PyTessBaseAPI(
            path=TESSDATA, lang=language, psm=page_segmentation_mode
        )
    return cache[key]


class TesseractEngine:
    """Tesseract in-process through tesserocr: no subprocess and no image file per page (on 63
    real receipts the same word F1 as the CLI at three quarters of its CPU time)."""

    name = "tesseract"

    def __init__(self, page_segmentation_mode: int = AUTOMATIC_LAYOUT) -> None:
        self.page_segmentation_mode = page_segmentation_mode

    def read(self, image: Image.Image, language: str) -> PageText:
        started = time.perf_counter()
        api = tesseract_api(language, self.page_segmentation_mode)
        left = milliseconds_left()
        api.SetImage(image)
        # Tesseract's own monitor ends a recognition at the deadline (0: no deadline).
        if not api.Recognize(timeout=left or 0):
            api.Clear()
            raise ReadingTimedOut
        words, in_dictionary = _words(api)
        api.Clear()
        return PageText(
            engine=self.name,
            language=language,
            words=words,
            seconds=time.perf_counter() - started,
            text=text_from_words(words),
            dictionary_share=(
                sum(in_dictionary) / len(in_dictionary)
                if len(in_dictionary) >= MIN_DICTIONARY_EVIDENCE
                else None
            ),
        )


def _words(api: tesserocr.PyTessBaseAPI) -> tuple[list[Word], list[bool]]:
    """The recognised words with Tesseract's block and line numbering, and for each word of
    three letters or more whether it is in the language's dictionary."""
    iterator = api.GetIterator()
    words: list[Word] = []
    in_dictionary: list[bool] = []
    if iterator is None:
        return words, in_dictionary
    level = tesserocr.RIL.WORD
    block = line = -1
    while True:
        if iterator.IsAtBeginningOf(tesserocr.RIL.BLOCK):
            block += 1
        if iterator.IsAtBeginningOf(tesserocr.RIL.TEXTLINE):
            line += 1
        box = iterator.BoundingBox(level)
        try:
            text = (iterator.GetUTF8Text(level) or "").strip()
        except RuntimeError:  # an empty word (a speck the layout kept)
            text = ""
        confidence = iterator.Confidence(level)
        if text and box is not None and confidence >= 0:
            left, top, right, bottom = box
            words.append(
                Word(text, (left, top, right - left, bottom - top), confidence / 100, line, block)
            )
            if sum(character.isalpha() for character in text) >= 3:
                in_dictionary.append(bool(iterator.WordIsFromDictionary()))
        if not iterator.Next(level):
            return words, in_dictionary
