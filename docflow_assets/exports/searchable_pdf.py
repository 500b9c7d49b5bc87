"""A searchable PDF: the original pages as they are, with an invisible text layer of the stored
words laid over them (OCRmyPDF's hOCR transform renders the layer, pikepdf lays it on)."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import img2pdf
import pikepdf
import pypdfium2 as pdfium
from ocrmypdf.hocrtransform import HocrTransform
from PIL import Image, ImageSequence

from docflow_assets.exports.geometry import PageWords
from docflow_assets.exports.hocr import to_hocr
from docflow_assets.ocr.pages import PDF_CONTENT_TYPE, PDFIUM_LOCK

POINTS_PER_INCH = 72


class PagesDoNotMatch(ValueError):
    """The stored reading has another number of pages than the original."""


def _image_pdf(original: bytes) -> bytes:
    """The image's pages wrapped in a PDF, the image data kept as it is where PDF can hold it
    (JPEG, PNG, CCITT TIFF); other images (alpha, palette with transparency, WebP) as PNG.
    Unturned, as OCR saw them: its boxes are on the pixels as stored, whatever EXIF says."""
    try:
        return bytes(img2pdf.convert(original, rotation=img2pdf.Rotation.none))
    except (img2pdf.ImageOpenError, img2pdf.AlphaChannelError, ValueError):
        frames = []
        with Image.open(io.BytesIO(original)) as image:
            for frame in ImageSequence.Iterator(image):
                png = io.BytesIO()
                frame.convert("RGB").save(png, format="PNG")
                frames.append(png.getvalue())
        return bytes(img2pdf.convert(frames))


def pages_with_text(pdf_bytes: bytes) -> set[int]:
    """Indexes of the pages that already carry text a reader can extract."""
    with PDFIUM_LOCK:
        pdf = pdfium.PdfDocument(pdf_bytes)
        try:
            return {index for index, page in enumerate(pdf) if page.get_textpage().count_chars()}
        finally:
            pdf.close()


def searchable_pdf(original: bytes, content_type: str, pages: Sequence[PageWords]) -> bytes:
    """The original (a PDF keeps its pages; an image becomes pages at its own resolution) with
    each page's words as invisible, selectable text where they stand on the page. A PDF page
    that already has text (born digital, or searchable already) keeps its own: a second layer
    would make every search find each word twice."""
    source = original if content_type == PDF_CONTENT_TYPE else _image_pdf(original)
    searchable = pages_with_text(source) if content_type == PDF_CONTENT_TYPE else set()
    pdf = pikepdf.open(io.BytesIO(source))
    if len(pdf.pages) != len(pages):
        raise PagesDoNotMatch(
            f"the original has {len(pdf.pages)} pages and the stored reading {len(pages)}"
        )
    with tempfile.TemporaryDirectory(prefix="docflow-pdf-") as scratch, ExitStack() as layers:
        for number, (page, words) in enumerate(zip(pdf.pages, pages, strict=True), start=1):
            if number - 1 in searchable:
                continue
            box = page.mediabox
            width_pt = float(box[2]) - float(box[0])
            hocr_path = Path(scratch) / f"page-{number}.hocr"
            hocr_path.write_bytes(to_hocr([words], f"page {number}"))
            layer_path = Path(scratch) / f"page-{number}.pdf"
            # The reading's pixels per inch of this page: the layer then has the page's size.
            dpi = words.size[0] / (width_pt / POINTS_PER_INCH)
            HocrTransform(hocr_filename=hocr_path, dpi=dpi).to_pdf(
                out_filename=layer_path, invisible_text=True
            )
            layer = layers.enter_context(pikepdf.open(layer_path))
            page.add_overlay(layer.pages[0], pikepdf.Rectangle(*(float(v) for v in box)))
        out = io.BytesIO()
        pdf.save(out)
    return out.getvalue()
