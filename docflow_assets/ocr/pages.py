"""Turn stored document bytes into page images."""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator

import pypdfium2 as pdfium
from PIL import Image, ImageSequence

from docflow_assets.settings import MAX_IMAGE_PIXELS, RENDER_DPI

PDF_CONTENT_TYPE = "application/pdf"
PDF_MAGIC = b"%PDF-"
# PDFium must not be called from two threads at once, even on different documents (pypdfium2's
# documentation: it may crash the process); the API ingests and rasterises in threads.
PDFIUM_LOCK = threading.RLock()


def pdf_render_scale(width_pt: float, height_pt: float, dpi: int, max_pixels: int) -> float:
    """Render at ``dpi``, lowered for oversized pages so none exceeds ``max_pixels``."""
    scale = dpi / 72
    pixels = width_pt * height_pt * scale * scale
    if pixels > max_pixels:
        scale *= math.sqrt(max_pixels / pixels)
    return scale


def sniffed_content_type(data: bytes) -> str:
    """PDF or image, from the bytes: all that rasterising needs to know (Pillow tells image
    formats apart itself)."""
    return PDF_CONTENT_TYPE if data.startswith(PDF_MAGIC) else "image/*"


def iter_page_images(
    data: bytes, content_type: str, dpi: int = RENDER_DPI, max_pixels: int = MAX_IMAGE_PIXELS
) -> Iterator[Image.Image]:
    """Every page of a document as an 8-bit image (RGB or greyscale), in order."""
    if content_type == PDF_CONTENT_TYPE:
        with PDFIUM_LOCK:
            pdf = pdfium.PdfDocument(data)
            pages = len(pdf)
        try:
            for index in range(pages):
                yield _rendered(pdf, index, dpi, max_pixels)
        finally:
            with PDFIUM_LOCK:
                pdf.close()
        return
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            yield to_8bit(frame)


def page_sizes(
    data: bytes, content_type: str, dpi: int = RENDER_DPI, max_pixels: int = MAX_IMAGE_PIXELS
) -> list[tuple[int, int]]:
    """Width and height of every page as ``iter_page_images`` gives it, without rendering."""
    if content_type == PDF_CONTENT_TYPE:
        sizes = []
        with PDFIUM_LOCK:
            pdf = pdfium.PdfDocument(data)
            try:
                for index in range(len(pdf)):
                    width, height = pdf.get_page_size(index)
                    scale = pdf_render_scale(width, height, dpi, max_pixels)
                    sizes.append((math.ceil(width * scale), math.ceil(height * scale)))
            finally:
                pdf.close()
        return sizes
    with Image.open(io.BytesIO(data)) as image:
        return [frame.size for frame in ImageSequence.Iterator(image)]


def page_image(
    data: bytes,
    content_type: str,
    index: int,
    dpi: int = RENDER_DPI,
    max_pixels: int = MAX_IMAGE_PIXELS,
) -> Image.Image:
    """Page ``index`` (from 0) alone as an 8-bit image: no page before it is rendered."""
    if content_type == PDF_CONTENT_TYPE:
        with PDFIUM_LOCK:
            pdf = pdfium.PdfDocument(data)
            try:
                return _rendered(pdf, index, dpi, max_pixels)
            finally:
                pdf.close()
    with Image.open(io.BytesIO(data)) as image:
        image.seek(index)
        return to_8bit(image)


def _rendered(pdf: pdfium.PdfDocument, index: int, dpi: int, max_pixels: int) -> Image.Image:
    """One PDF page at ``dpi`` (lower for oversized pages), holding the PDFium lock."""
    with PDFIUM_LOCK:
        page = pdf[index]
        try:
            scale = pdf_render_scale(page.get_width(), page.get_height(), dpi, max_pixels)
            return page.render(scale=scale).to_pil()
        finally:
            page.close()


def to_8bit(image: Image.Image) -> Image.Image:
    """1-bit, palette and 16-bit images as 8-bit greyscale or RGB (EasyOCR and OpenCV need it)."""
    if image.mode in {"L", "RGB"}:
        return image.copy()
    if image.mode in {"1", "I;16", "I;16B", "I", "F"}:
        return image.convert("L")
    return image.convert("RGB")
