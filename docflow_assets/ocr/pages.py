"""Turn stored document bytes into page images."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pypdfium2 as pdfium
from PIL import Image, ImageSequence

PDF_CONTENT_TYPE = "application/pdf"


def iter_page_images(data: bytes, content_type: str, dpi: int = 300) -> Iterator[Image.Image]:
    """Every page of a document as an 8-bit image (RGB or greyscale), in order."""
    if content_type == PDF_CONTENT_TYPE:
        pdf = pdfium.PdfDocument(data)
        try:
            for index in range(len(pdf)):
                page = pdf[index]
                try:
                    yield page.render(scale=dpi / 72).to_pil()
                finally:
                    page.close()
        finally:
            pdf.close()
        return
    with Image.open(io.BytesIO(data)) as image:
        for frame in ImageSequence.Iterator(image):
            yield to_8bit(frame)


def to_8bit(image: Image.Image) -> Image.Image:
    """1-bit, palette and 16-bit images as 8-bit greyscale or RGB (EasyOCR and OpenCV need it)."""
    if image.mode in {"L", "RGB"}:
        return image.copy()
    if image.mode in {"1", "I;16", "I;16B", "I", "F"}:
        return image.convert("L")
    return image.convert("RGB")
