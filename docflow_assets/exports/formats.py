"""One document's reading in the format asked for, over its original."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from docflow_assets.exports.alto import to_alto
from docflow_assets.exports.geometry import PageWords, words_on_original
from docflow_assets.exports.hocr import to_hocr
from docflow_assets.exports.searchable_pdf import PagesDoNotMatch, searchable_pdf
from docflow_assets.page_text import PageText

ExportFormat = Literal["pdf", "hocr", "alto"]
EXPORT_FORMATS: dict[str, tuple[str, str]] = {
    "pdf": ("application/pdf", ".pdf"),
    "hocr": ("application/xhtml+xml", ".hocr"),
    "alto": ("application/xml", ".alto.xml"),
}


@dataclass(frozen=True)
class Export:
    content: bytes
    media_type: str
    filename: str


def recorded_page_sizes(pages: Sequence[PageText]) -> list[tuple[int, int]] | None:
    """Each page's size as rasterised, as OCR recorded it; None if a page was read before
    sizes were recorded (the original must be looked at)."""
    sizes: list[tuple[int, int]] = []
    for page in pages:
        size = page.preprocessing.get("page_size")
        if size is None:
            return None
        sizes.append((int(size[0]), int(size[1])))
    return sizes or None


def page_words(pages: Sequence[PageText], sizes: Sequence[tuple[int, int]]) -> list[PageWords]:
    """Each page's words with boxes on the original page (``sizes``, as rasterised)."""
    if len(pages) != len(sizes):
        raise PagesDoNotMatch(f"the original has {len(sizes)} pages and the reading {len(pages)}")
    return [
        PageWords(
            size,
            words_on_original(page.words, page.preprocessing, size),
            page.engine,
            page.language,
        )
        for page, size in zip(pages, sizes, strict=True)
    ]


def export_reading(
    kind: ExportFormat,
    original: bytes,
    content_type: str,
    pages: Sequence[PageText],
    sizes: Sequence[tuple[int, int]],
    name: str,
) -> Export:
    """``pages`` (as OCR read them) over ``original`` as a searchable PDF, hOCR or ALTO; the
    file is named after ``name`` (its extension replaced)."""
    words = page_words(pages, sizes)
    media_type, extension = EXPORT_FORMATS[kind]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if kind == "pdf":
        content = searchable_pdf(original, content_type, words)
    elif kind == "hocr":
        content = to_hocr(words, name)
    else:
        content = to_alto(words, name)
    return Export(content, media_type, stem + extension)
