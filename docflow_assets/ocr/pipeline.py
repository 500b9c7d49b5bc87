"""OCR of whole documents: rasterise, read every page, in parallel across pages."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from docflow_assets.ocr.engines import OcrEngine, PageText, TesseractEngine
from docflow_assets.ocr.pages import iter_page_images


@dataclass(frozen=True)
class OcrRequest:
    document_id: int
    data: bytes
    content_type: str


@dataclass
class DocumentText:
    document_id: int
    pages: list[PageText]
    error: str | None = None

    @property
    def text(self) -> str:
        return "\n\n".join(page.text for page in self.pages)


def ocr_document(
    data: bytes,
    content_type: str,
    language: str = "eng",
    dpi: int = 300,
    engine: OcrEngine | None = None,
    max_pixels: int = 60_000_000,
) -> list[PageText]:
    """Every page of one document, read in order."""
    reader = engine or TesseractEngine()
    pages = iter_page_images(data, content_type, dpi, max_pixels)
    return [reader.read(page, language) for page in pages]


def _ocr_request(request: OcrRequest, language: str, dpi: int) -> DocumentText:
    try:
        return DocumentText(
            request.document_id, ocr_document(request.data, request.content_type, language, dpi)
        )
    except Exception as error:  # one bad document must not stop the batch
        return DocumentText(request.document_id, [], error=f"{type(error).__name__}: {error}")


def ocr_documents(
    requests: Sequence[OcrRequest], language: str = "eng", dpi: int = 300, workers: int = 2
) -> list[DocumentText]:
    """OCR a batch of documents, one process per core; failures come back as ``error``."""
    if workers <= 1 or len(requests) <= 1:
        return [_ocr_request(request, language, dpi) for request in requests]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_ocr_request, request, language, dpi) for request in requests]
        return [future.result() for future in futures]
