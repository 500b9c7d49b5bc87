"""OCR of whole documents: rasterise, preprocess, read every page; documents in parallel."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from PIL import Image

from docflow_assets.ocr.cascade import cascade
from docflow_assets.ocr.easyocr_engine import EasyOcrEngine
from docflow_assets.ocr.engines import (
    AUTOMATIC_LAYOUT,
    SINGLE_BLOCK,
    OcrEngine,
    PageText,
    TesseractEngine,
    text_from_words,
)
from docflow_assets.ocr.ensemble import ensemble
from docflow_assets.ocr.layout import rows_across_blocks, table_split_into_columns
from docflow_assets.ocr.pages import iter_page_images
from docflow_assets.ocr.preprocess import (
    PreprocessConfig,
    detect_orientation,
    even_out_lighting,
    guess_quarter_turn,
    orientation_record,
    preprocess,
    rotate_quarter,
    to_grey,
)
from docflow_assets.settings import DocflowSettings

OCR_MODES = ("tesseract", "easyocr", "ensemble", "cascade")
# A Tesseract reading this sure of itself needs no orientation pass (Tesseract reads a page
# turned by 90 degrees as vertical lines, correctly). EasyOCR cannot: the modes that hand the
# page to it always turn it upright first.
UPRIGHT_CONFIDENCE = 0.75
LAZY_ORIENTATION_MODES = ("tesseract", "cascade")
UPRIGHT_MIN_WORDS = 5


@dataclass(frozen=True)
class OcrOptions:
    language: str = "eng"
    dpi: int = 300
    max_pixels: int = 60_000_000
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    mode: str = "tesseract"
    cascade_threshold: float = 0.6

    def __post_init__(self) -> None:
        if self.mode not in OCR_MODES:
            raise ValueError(f"unknown OCR mode {self.mode!r}; known: {', '.join(OCR_MODES)}")

    @classmethod
    def from_settings(cls, settings: DocflowSettings, language: str | None = None) -> OcrOptions:
        return cls(
            language or settings.ocr_languages,
            settings.render_dpi,
            settings.max_image_pixels,
            PreprocessConfig.parse(settings.ocr_preprocess),
            settings.ocr_mode,
            settings.ocr_cascade_threshold,
        )


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


def read_upright(
    page: Image.Image, options: OcrOptions, reader: OcrEngine
) -> tuple[Image.Image, PageText]:
    """Preprocess and read one page. In the Tesseract-first modes the page is turned by a cheap
    OpenCV guess and read once; Tesseract's orientation pass (a second Tesseract run, and a third
    to read again) is spent only when that reading is unsure, as a wrongly turned page's is."""
    steps = options.preprocessing
    lazy = options.mode in LAZY_ORIENTATION_MODES and isinstance(reader, TesseractEngine)
    if "orientation" not in steps.steps or not lazy:
        prepared, record = preprocess(page, steps)
        text = _rows_kept(
            prepared, reader.read(prepared, options.language), reader, record, options.mode
        )
        text.preprocessing = record
        return prepared, text
    upright_steps = steps.without("illumination", "orientation")
    grey = to_grey(page)
    lighting: dict[str, Any] = {}
    if "illumination" in steps.steps:
        grey, lighting = even_out_lighting(grey)
    guess, skew = guess_quarter_turn(grey)
    prepared, record = preprocess(
        Image.fromarray(rotate_quarter(grey, guess)), upright_steps, known_skew=skew
    )
    record.update(lighting, orientation_guess=guess)
    text = reader.read(prepared, options.language)
    if text.mean_confidence >= UPRIGHT_CONFIDENCE and len(text.words) >= UPRIGHT_MIN_WORDS:
        record.update(orientation_rotated=guess, orientation_checked=False)
    else:
        orientation = detect_orientation(grey)
        record.update(orientation_record(orientation), orientation_checked=True)
        if orientation is None:
            record["orientation_rotated"] = guess
        elif orientation.rotate != guess:
            turned = Image.fromarray(rotate_quarter(grey, orientation.rotate))
            prepared, again = preprocess(turned, upright_steps)
            record.update({key: value for key, value in again.items() if key != "steps"})
            text = reader.read(prepared, options.language)
    text = _rows_kept(prepared, text, reader, record, options.mode)
    record["steps"] = list(steps.steps)
    text.preprocessing = record
    return prepared, text


def _rows_kept(
    prepared: Image.Image, text: PageText, reader: OcrEngine, record: dict[str, Any], mode: str
) -> PageText:
    """Tesseract's automatic-layout reading, or, where that cut a table's rows into columns,
    its words put back into rows (free, the tesseract mode) or a second reading of the page as
    one block (twice as accurate again; the modes that already spend time on accuracy)."""
    automatic = (
        isinstance(reader, TesseractEngine) and reader.page_segmentation_mode == AUTOMATIC_LAYOUT
    )
    if not automatic:
        return text
    split = table_split_into_columns(text.words)
    record["table_split_into_columns"] = split
    if not split:
        return text
    if mode == "tesseract":
        record["table_rows_from"] = "words regrouped into rows"
        words = rows_across_blocks(text.words)
        return replace(text, words=words, text=text_from_words(words))
    record["table_rows_from"] = "second reading as one block"
    by_rows = TesseractEngine(SINGLE_BLOCK).read(prepared, text.language)
    by_rows.seconds += text.seconds
    return by_rows


def ocr_document(
    data: bytes, content_type: str, options: OcrOptions, engine: OcrEngine | None = None
) -> list[PageText]:
    """Every page of one document, preprocessed and read in order by the options' mode."""
    reader = engine or (EasyOcrEngine() if options.mode == "easyocr" else TesseractEngine())
    results = []
    for page in iter_page_images(data, content_type, options.dpi, options.max_pixels):
        prepared, text = read_upright(page, options, reader)
        if options.mode == "cascade":
            text = cascade(prepared, text, options.cascade_threshold)
        elif options.mode == "ensemble":
            text = ensemble(text, EasyOcrEngine().read(prepared, options.language))
        results.append(text)
    return results


def _ocr_request(request: OcrRequest, options: OcrOptions) -> DocumentText:
    try:
        return DocumentText(
            request.document_id, ocr_document(request.data, request.content_type, options)
        )
    except Exception as error:  # one bad document must not stop the batch
        return DocumentText(request.document_id, [], error=f"{type(error).__name__}: {error}")


def ocr_documents(
    requests: Sequence[OcrRequest], options: OcrOptions, workers: int = 2
) -> list[DocumentText]:
    """OCR a batch of documents, one process per core; failures come back as ``error``."""
    if workers <= 1 or len(requests) <= 1:
        return [_ocr_request(request, options) for request in requests]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_ocr_request, request, options) for request in requests]
        return [future.result() for future in futures]
