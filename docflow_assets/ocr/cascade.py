"""Cascade OCR: Tesseract reads every page; a page it is unsure of is read again by PP-OCR.

Clean scans (Tesseract's mean word confidence 0.92-0.96 on the real scans) cost one Tesseract
pass and keep its layout analysis, which orders multi-column pages better than a line detector.
Photographed receipts (0.68-0.73) are where Tesseract fails and PP-OCR does not: word F1 0.47
against 0.61 on real receipts. Re-reading only Tesseract's unsure lines was tried and reached
0.50: Tesseract's misses on such pages are lines it never found, not lines it misread.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from PIL import Image

from docflow_assets.page_text import PageText


class PageReader(Protocol):
    name: str

    def read(self, image: Image.Image, language: str) -> PageText: ...


def cascade(
    image: Image.Image, tesseract_page: PageText, threshold: float, reader: PageReader
) -> PageText:
    """Tesseract's reading when its mean word confidence reaches ``threshold``, otherwise
    ``reader``'s reading of the same prepared page. Either way the page is the cascade's (every
    page of a document is stored under one engine name); ``read_by`` says whose it is."""
    record = {
        **tesseract_page.preprocessing,
        "cascade_threshold": threshold,
        "tesseract_confidence": round(tesseract_page.mean_confidence, 3),
    }
    if tesseract_page.mean_confidence >= threshold:
        return replace(
            tesseract_page, engine="cascade", preprocessing={**record, "read_by": "tesseract"}
        )
    second = reader.read(image, tesseract_page.language)
    return replace(
        second,
        engine="cascade",
        seconds=second.seconds + tesseract_page.seconds,
        preprocessing={**record, "read_by": second.engine},
    )
