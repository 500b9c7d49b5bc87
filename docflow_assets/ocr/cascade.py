"""Cascade OCR: Tesseract reads every page; a page it is unsure of is read again by PP-OCR.

Clean scans (Tesseract's mean word confidence 0.92-0.96 on the real scans) cost one Tesseract
pass and keep its layout analysis, which orders multi-column pages better than a line detector.
Photographed receipts (0.68-0.73) are where Tesseract fails and PP-OCR does not: word F1 0.47
against 0.61 on real receipts. Re-reading only Tesseract's unsure lines was tried and reached
0.50: Tesseract's misses on such pages are lines it never found, not lines it misread.

Low-resolution scans (glyphs under 10 px, which preprocessing enlarges for Tesseract) stay
with Tesseract whatever its confidence: on 98 real 100-dpi office scans, 59 of which fell under
the threshold, PP-OCR's readings cost 3.5 CPU-s a page more and classified no better (fixed
classifier, repeated 3-fold CV: macro-F1 0.408 with them, 0.415 on Tesseract's enlarged-page
text alone; the plain CLI's text 0.339). Its detector sees such a page at under 960 px, glyphs
of a few pixels. Receipts, where PP-OCR pays, are photographed at 10-60 px glyphs (62 of 63).
A low-resolution page Tesseract found almost no words on is the exception: there is no reading
to keep (the one receipt of small glyphs: no word from Tesseract, word F1 0.53 from PP-OCR).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from PIL import Image

from docflow_assets.page_text import PageText

# Fewer words than this from Tesseract on an enlarged page is no reading worth keeping.
LOW_RESOLUTION_MIN_WORDS = 5


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
    enlarged = float(tesseract_page.preprocessing.get("upscale_factor") or 1.0) > 1.0
    enlarged = enlarged and len(tesseract_page.words) >= LOW_RESOLUTION_MIN_WORDS
    if tesseract_page.mean_confidence >= threshold or enlarged:
        kept = {**record, "read_by": "tesseract"}
        if enlarged and tesseract_page.mean_confidence < threshold:
            kept["kept_because"] = "low-resolution scan (enlarged for Tesseract)"
        return replace(tesseract_page, engine="cascade", preprocessing=kept)
    second = reader.read(image, tesseract_page.language)
    return replace(
        second,
        engine="cascade",
        seconds=second.seconds + tesseract_page.seconds,
        preprocessing={**record, "read_by": second.engine},
    )
