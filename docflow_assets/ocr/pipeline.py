"""OCR of whole documents: rasterise, preprocess, read every page; documents in parallel."""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from docflow_assets.ocr.cascade import cascade
from docflow_assets.ocr.easyocr_engine import EasyOcrEngine
from docflow_assets.ocr.engines import (
    AUTOMATIC_LAYOUT,
    SINGLE_BLOCK,
    OcrEngine,
    ReadingTimedOut,
    TesseractEngine,
    reading_deadline,
)
from docflow_assets.ocr.ensemble import ensemble
from docflow_assets.ocr.layout import rows_across_blocks, table_split_into_columns
from docflow_assets.ocr.pages import iter_page_images
from docflow_assets.ocr.ppocr_engine import PpOcrEngine, ppocr_supports
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
from docflow_assets.page_text import PageText, text_from_words
from docflow_assets.settings import CASCADE_THRESHOLD, MAX_IMAGE_PIXELS, RENDER_DPI

# Documents handed to each OCR process ahead of the one it reads: enough that no process waits
# for its next document, few enough that a batch's originals are not all in memory at once.
IN_FLIGHT_PER_WORKER = 2
OCR_MODES = ("tesseract", "ppocr", "easyocr", "ensemble", "cascade")
# A reading this sure of itself is of an upright page (or one Tesseract reads correctly as
# vertical lines): it is kept, and the page is never turned. Only an unsure reading makes the
# page's orientation a question, and a turned page then wins only by reading better.
UPRIGHT_CONFIDENCE = 0.75
UPRIGHT_MIN_WORDS = 5
# An unsure reading can still be of an upright page: a fax Tesseract reads at confidence 0.3-0.7
# whose words are mostly its language's and lie across the page. Sideways pages read with 4-36%
# of their words from the dictionary (or as words standing taller than wide), upside-down ones
# 23%, upright office faxes 57-93% (chosen on the even half of office-scans-dev; on the odd half
# no page this keeps upright reads stronger turned, and 7 second readings of 7 were saved).
UPRIGHT_DICTIONARY_SHARE = 0.5
# How much stronger the turned reading must be. Tesseract and PP-OCR both read a page turned by
# 90 degrees as vertical lines, so on real receipts the two readings came within 1.11x of each
# other either way; phototest turned left or by 180 read 2.2-2.6x stronger once turned back.
TURNED_READS_STRONGER = 1.5
# ...and readable itself: a faint receipt read as junk both ways (mean confidence 0.05-0.24)
# must not be turned by junk that happens to weigh more.
READABLE_CONFIDENCE = 0.5


@dataclass(frozen=True)
class OcrOptions:
    language: str = "eng"
    dpi: int = RENDER_DPI
    max_pixels: int = MAX_IMAGE_PIXELS
    preprocessing: PreprocessConfig = field(default_factory=PreprocessConfig)
    mode: str = "cascade"
    cascade_threshold: float = CASCADE_THRESHOLD

    def __post_init__(self) -> None:
        if self.mode not in OCR_MODES:
            raise ValueError(f"unknown OCR mode {self.mode!r}; known: {', '.join(OCR_MODES)}")


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


def _reading_strength(text: PageText) -> float:
    """Confidence summed over the words: a turned page reads as few, unsure words."""
    return sum(word.confidence for word in text.words)


def _why_upright(text: PageText) -> str | None:
    """Why a reading shows its page is upright, or None where it leaves the question open."""
    if text.mean_confidence >= UPRIGHT_CONFIDENCE and len(text.words) >= UPRIGHT_MIN_WORDS:
        return "a confident reading"
    if text.dictionary_share is None or text.dictionary_share < UPRIGHT_DICTIONARY_SHARE:
        return None
    return None if _words_stand(text) else "words of its language, lying across"


def _words_stand(text: PageText) -> bool:
    """Most words of three letters or more stand taller than wide: lines run up or down."""
    long_words = [word for word in text.words if len(word.text) >= 3]
    standing = sum(1 for word in long_words if word.box[3] > word.box[2])
    return bool(long_words) and 2 * standing >= len(long_words)


def _quarter_turn(grey: np.ndarray, text: PageText) -> tuple[int, str]:
    """Clockwise degrees that probably set the page upright, and what said so."""
    if text.dictionary_share is not None and _words_stand(text):
        # Tesseract itself reads lines running down the page (phototest turned right: confidence
        # 0.96), so an unsure reading of standing words is of lines running up, which a quarter
        # turn clockwise sets upright. The ink profile's answer was the other way on 2 of the 7
        # sideways pages of office-scans-dev, each of which reads 2x stronger turned this way.
        return 90, "standing words"
    return guess_quarter_turn(grey)[0], "ink profile"


def read_upright(
    page: Image.Image, options: OcrOptions, reader: OcrEngine
) -> tuple[Image.Image, PageText]:
    """Preprocess and read one page as it lies. Only when that reading leaves the page's
    orientation open (unsure, and not mostly dictionary words lying across) is the page turned,
    by a cheap OpenCV guess or else by Tesseract's OSD, read again, and the turned reading kept
    if it is the stronger one: upright pages are never turned by a wrong guess (tall receipts
    fooled the guess, and OSD agreed, on 7 of 25 real receipts)."""
    steps = options.preprocessing
    grey = to_grey(page)
    lighting: dict[str, Any] = {}
    if "illumination" in steps.steps:
        grey, lighting = even_out_lighting(grey)
    level_steps = steps.without("illumination", "orientation")
    prepared, record = preprocess(Image.fromarray(grey), level_steps)
    text = reader.read(prepared, options.language)
    record.update(lighting, orientation_rotated=0, orientation_checked=False)
    upright_because = _why_upright(text)
    if upright_because is not None:
        record["upright_because"] = upright_because
    if "orientation" in steps.steps and upright_because is None:
        record["orientation_checked"] = True
        turn, record["orientation_guessed_from"] = _quarter_turn(grey, text)
        record["orientation_guess"] = turn
        if turn == 0:
            orientation = detect_orientation(grey)
            record.update(orientation_record(orientation))
            turn = orientation.rotate if orientation else 0
        if turn:
            turned, again = preprocess(Image.fromarray(rotate_quarter(grey, turn)), level_steps)
            turned_text = reader.read(turned, options.language)
            stronger = _reading_strength(turned_text) > TURNED_READS_STRONGER * _reading_strength(
                text
            )
            if stronger and turned_text.mean_confidence >= READABLE_CONFIDENCE:
                record.update({key: value for key, value in again.items() if key != "steps"})
                record["orientation_rotated"] = turn
                prepared, text = turned, turned_text
        if record.get("orientation_osd") is not None and record["orientation_osd"] != turn:
            record.pop("script", None)  # OSD misjudged the page; its script guess too
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
    if mode in {"tesseract", "cascade"}:
        record["table_rows_from"] = "words regrouped into rows"
        words = rows_across_blocks(text.words)
        return replace(text, words=words, text=text_from_words(words))
    record["table_rows_from"] = "second reading as one block"
    by_rows = TesseractEngine(SINGLE_BLOCK).read(prepared, text.language)
    by_rows.seconds += text.seconds
    return by_rows


@dataclass(frozen=True)
class Readers:
    """The engines a mode reads with, composed once: the first reads every page; the second
    (PP-OCR) votes in the ensemble or reads the pages the cascade is unsure of. None where the
    languages asked for are beyond it: Tesseract reads alone."""

    first: OcrEngine
    second: PpOcrEngine | None = None


def compose_readers(mode: str, language: str) -> Readers:
    if mode == "easyocr":
        return Readers(EasyOcrEngine())
    if mode == "ppocr" and ppocr_supports(language):
        return Readers(PpOcrEngine())
    if mode in {"ensemble", "cascade"} and ppocr_supports(language):
        return Readers(TesseractEngine(), PpOcrEngine())
    return Readers(TesseractEngine())


class OcrStopped(Exception):
    """Reading stopped between pages because the caller asked (a budget spent, a client gone)."""

    def __init__(self, pages_read: int, why: str) -> None:
        super().__init__(f"OCR stopped after {pages_read} pages: {why}")
        self.pages_read = pages_read
        self.why = why


def ocr_document(
    data: bytes,
    content_type: str,
    options: OcrOptions,
    readers: Readers | None = None,
    stop: Callable[[], str | None] | None = None,
    deadline: float | None = None,
) -> list[PageText]:
    """Every page of one document, preprocessed and read in order by the options' mode.

    ``stop`` is asked before each page; a reason from it ends the reading (``OcrStopped``).
    At ``deadline`` (``time.monotonic()``) Tesseract stops mid-page and so does the reading."""
    readers = readers or compose_readers(options.mode, options.language)
    results: list[PageText] = []
    for page in iter_page_images(data, content_type, options.dpi, options.max_pixels):
        why = stop() if stop is not None else None
        if why is not None:
            raise OcrStopped(len(results), why)
        try:
            with reading_deadline(deadline):
                results.append(_read_page(page, options, readers))
        except ReadingTimedOut as timed_out:
            why = f"the time allowed ran out during page {len(results) + 1}"
            raise OcrStopped(len(results), why) from timed_out
    return results


def _read_page(page: Image.Image, options: OcrOptions, readers: Readers) -> PageText:
    prepared, text = read_upright(page, options, readers.first)
    if readers.second is not None and options.mode == "cascade":
        text = cascade(prepared, text, options.cascade_threshold, readers.second)
    elif readers.second is not None and options.mode == "ensemble":
        text = ensemble(text, readers.second.read(prepared, options.language))
    if options.mode != readers.first.name and options.mode not in {"ensemble", "cascade"}:
        text.preprocessing["engine_fallback"] = f"{options.mode} cannot read {text.language}"
    # The page as rasterised, before any step: what the boxes map back onto, kept so that
    # drawing them needs no second look at the original.
    text.preprocessing["page_size"] = list(page.size)
    return text


def _ocr_request(request: OcrRequest, options: OcrOptions) -> DocumentText:
    try:
        return DocumentText(
            request.document_id, ocr_document(request.data, request.content_type, options)
        )
    except Exception as error:  # one bad document must not stop the batch
        return DocumentText(request.document_id, [], error=f"{type(error).__name__}: {error}")


def iter_ocr_documents(
    requests: Iterable[OcrRequest], options: OcrOptions, workers: int = 2
) -> Iterator[DocumentText]:
    """OCR documents, one process per core, yielding each as soon as it is read: in the order
    they finish, not the requests' (one slow page must not leave the other process idle behind
    it); failures come back as ``error``. Requests are drawn only as workers free up
    (``IN_FLIGHT_PER_WORKER`` each), so a lazy iterable of requests keeps at most that many
    documents' bytes in memory, however long it is."""
    requests = iter(requests)
    first = list(itertools.islice(requests, 2))
    if workers <= 1 or len(first) <= 1:
        yield from (_ocr_request(request, options) for request in itertools.chain(first, requests))
        return
    # Forked from a clean server process, not from this one: a process that has read a page
    # with PP-OCR holds OpenVINO's threads, and a plain fork of it can deadlock on their locks.
    context = multiprocessing.get_context("forkserver")
    # The server imports the OCR code once; each worker forked from it starts ready to read.
    context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    in_flight: set[Future[DocumentText]] = set()
    try:
        for request in itertools.chain(first, requests):
            in_flight.add(pool.submit(_ocr_request, request, options))
            if len(in_flight) >= IN_FLIGHT_PER_WORKER * workers:
                finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in finished)
        while in_flight:
            finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in finished)
    finally:
        # A caller that stops early (an outage, a kill) waits only for the pages being read.
        pool.shutdown(wait=True, cancel_futures=True)
