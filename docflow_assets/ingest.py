"""Validate uploaded bytes by content and store them: the one upload path of CLI, API and tests."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
import unicodedata
import warnings
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pypdfium2 as pdfium
from PIL import Image, ImageSequence, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from docflow_assets.ocr.pages import PDF_MAGIC, PDFIUM_LOCK, pdf_render_scale
from docflow_assets.settings import LABEL_MAX_LENGTH, DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import Document, DocumentStatus
from docflow_assets.store.objects import ObjectStore
from docflow_assets.store.repository import set_label

IMAGE_CONTENT_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "WEBP": "image/webp",
}
CHUNK_BYTES = 1 << 16


class RejectedDocument(ValueError):
    """An upload that is not stored, with a machine-readable code and a message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class InspectedFile:
    content_type: str
    pages: int


@dataclass(frozen=True)
class IngestResult:
    document: Document
    duplicate: bool
    # A new document's bytes, read to validate them: whoever reads it next needs no fetch.
    original: bytes | None = None


def spool_limited(chunks: Iterable[bytes], max_bytes: int) -> tuple[BinaryIO, int, str]:
    """Copy chunks to a temporary file, stopping as soon as the size limit is passed.

    Returns the file (rewound), its size and its SHA-256.
    """
    spooled = tempfile.SpooledTemporaryFile(max_size=8 << 20)  # noqa: SIM115 - returned open
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            spooled.close()
            raise RejectedDocument(
                "too_large", f"file is larger than the limit of {max_bytes} bytes"
            )
        digest.update(chunk)
        spooled.write(chunk)
    if size == 0:
        spooled.close()
        raise RejectedDocument("empty", "file is empty")
    spooled.seek(0)
    return spooled, size, digest.hexdigest()  # type: ignore[return-value]


def iter_chunks(source: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterable[bytes]:
    while chunk := source.read(chunk_bytes):
        yield chunk


def inspect_content(data: bytes, settings: DocflowSettings) -> InspectedFile:
    """Identify the format from the bytes themselves and check every page can be decoded."""
    if data.startswith(PDF_MAGIC):
        return _inspect_pdf(data, settings)
    return _inspect_image(data, settings)


def _check_pixels(width: int, height: int, settings: DocflowSettings, where: str) -> None:
    if width * height > settings.max_image_pixels:
        raise RejectedDocument(
            "decompression_bomb",
            f"{where} is {width}x{height} pixels, more than the limit of "
            f"{settings.max_image_pixels} pixels",
        )


def _inspect_pdf(data: bytes, settings: DocflowSettings) -> InspectedFile:
    with PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(data)
        except pdfium.PdfiumError as error:
            raise RejectedDocument("corrupt", f"PDF cannot be opened: {error}") from error
        try:
            pages = len(pdf)
            if pages == 0:
                raise RejectedDocument("corrupt", "PDF has no pages")
            if pages > settings.max_pages:
                raise RejectedDocument(
                    "too_many_pages",
                    f"PDF has {pages} pages, more than the limit of {settings.max_pages}",
                )
            pixels = sum(_rendered_pixels(pdf, index, pages, settings) for index in range(pages))
        finally:
            pdf.close()
    if pixels > settings.max_document_pixels:
        raise RejectedDocument(
            "too_many_pixels",
            f"PDF renders to {pixels / 1e6:.0f} megapixels at {settings.render_dpi} dpi, more "
            f"than the limit of {settings.max_document_pixels / 1e6:.0f}",
        )
    return InspectedFile("application/pdf", pages)


def _rendered_pixels(
    pdf: pdfium.PdfDocument, index: int, pages: int, settings: DocflowSettings
) -> int:
    """Pixels page ``index`` renders to; a page that cannot be loaded (a page count that
    promises more pages than the file holds) rejects the file before anything is stored."""
    try:
        page = pdf[index]
    except pdfium.PdfiumError as error:
        raise RejectedDocument(
            "corrupt", f"PDF page {index + 1} of {pages} cannot be read: {error}"
        ) from error
    try:
        width, height = page.get_size()
    finally:
        page.close()
    scale = pdf_render_scale(width, height, settings.render_dpi, settings.max_image_pixels)
    return int(width * scale) * int(height * scale)


def _inspect_image(data: bytes, settings: DocflowSettings) -> InspectedFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format or ""
                if image_format not in IMAGE_CONTENT_TYPES:
                    raise RejectedDocument(
                        "unsupported_type",
                        f"{image_format or 'this'} images are not accepted; "
                        f"send PDF, {', '.join(IMAGE_CONTENT_TYPES)}",
                    )
                pages = pixels = 0
                for frame in ImageSequence.Iterator(image):
                    pages += 1
                    if pages > settings.max_pages:
                        raise RejectedDocument(
                            "too_many_pages",
                            f"image has more than the limit of {settings.max_pages} pages",
                        )
                    _check_pixels(frame.width, frame.height, settings, f"page {pages}")
                    pixels += frame.width * frame.height
                    if pixels > settings.max_document_pixels:
                        raise RejectedDocument(
                            "too_many_pixels",
                            f"the first {pages} pages hold {pixels / 1e6:.0f} megapixels, more "
                            f"than the limit of {settings.max_document_pixels / 1e6:.0f}",
                        )
                    if pages == 1:
                        # Decoding proves it is an image; decoding every frame of a 200-page
                        # TIFF would cost seconds per upload, and a bad later frame fails that
                        # document's OCR with its reason instead.
                        frame.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise RejectedDocument(
            "decompression_bomb",
            f"image is larger than the limit of {settings.max_image_pixels} pixels ({error})",
        ) from error
    except UnidentifiedImageError as error:
        raise RejectedDocument(
            "unsupported_type",
            "file is neither a PDF nor an image in PNG, JPEG, TIFF, BMP or WebP",
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        if isinstance(error, RejectedDocument):
            raise
        raise RejectedDocument("corrupt", f"image cannot be decoded: {error}") from error
    return InspectedFile(IMAGE_CONTENT_TYPES[image_format], pages)


def storage_key(sha256: str) -> str:
    return f"documents/{sha256[:2]}/{sha256}"


def normalise_label(label: str | None) -> str | None:
    if label is None:
        return None
    cleaned = label.strip().lower().replace(" ", "_")
    if not cleaned:
        return None
    if len(cleaned) > LABEL_MAX_LENGTH or not all(ch.isalnum() or ch in "_-" for ch in cleaned):
        raise RejectedDocument(
            "bad_label", f"label {label!r} must be 1-{LABEL_MAX_LENGTH} letters, digits, '_' or '-'"
        )
    return cleaned


def ingest(
    source: BinaryIO,
    filename: str,
    settings: DocflowSettings,
    store: ObjectStore,
    label: str | None = None,
    label_source: str = "upload",
) -> IngestResult:
    """Validate, store and register one file; a duplicate returns the document already stored.

    A rejected file raises ``RejectedDocument`` and leaves nothing behind.
    """
    ensure_schema(settings.resolved_database_url)
    clean_label = normalise_label(label)
    spooled, size, sha256 = spool_limited(iter_chunks(source), settings.max_upload_bytes)
    with spooled:
        existing = _find_by_sha(settings, sha256)
        if existing is not None:
            return IngestResult(existing, duplicate=True)
        original = spooled.read()
        inspected = inspect_content(original, settings)
        key = storage_key(sha256)
        already_stored = store.exists(key)
        if not already_stored:
            store.put_file(key, spooled, inspected.content_type)
    now = datetime.now(UTC)
    document = Document(
        filename=_clean_filename(filename),
        content_type=inspected.content_type,
        size_bytes=size,
        sha256=sha256,
        storage_key=key,
        pages=inspected.pages,
        status=DocumentStatus.UPLOADED,
        uploaded_at=now,
        upload_date=now.date(),
        label=clean_label,
        label_source=label_source if clean_label else None,
        labelled_at=now if clean_label else None,
    )
    try:
        with session_scope(settings.resolved_database_url) as session:
            session.add(document)
    except IntegrityError:
        # Another upload of the same bytes won the race: theirs is the document.
        existing = _find_by_sha(settings, sha256)
        if existing is None:
            raise
        return IngestResult(existing, duplicate=True)
    except BaseException:
        if not already_stored:
            store.delete(key)
        raise
    return IngestResult(document, duplicate=False, original=original)


def _find_by_sha(settings: DocflowSettings, sha256: str) -> Document | None:
    with session_scope(settings.resolved_database_url) as session:
        return session.scalar(select(Document).where(Document.sha256 == sha256))


MAX_FILENAME_CHARACTERS = 255


def _clean_filename(filename: str) -> str:
    """The name without folders, control characters (NUL, CR, LF, ...) or surrounding space,
    at most 255 characters: safe to store, show and put in a header."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    return name[:MAX_FILENAME_CHARACTERS] or "unnamed"


@dataclass
class FolderReport:
    added: list[Document]
    duplicates: list[Document]
    rejected: dict[str, str]
    # Already stored, with a label from the CSV that differs from theirs: now relabelled.
    relabelled: list[Document] = field(default_factory=list)
    # Rows of the labels CSV that name no file of the folder (a typo, a different case).
    unmatched_labels: list[str] = field(default_factory=list)


def read_labels(labels_csv: Path) -> dict[str, str]:
    """``filename,label`` rows (a header row is allowed)."""
    with labels_csv.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if len(row) >= 2]
    if rows and rows[0][0].strip().lower() == "filename":
        rows = rows[1:]
    return {row[0].strip(): row[1].strip() for row in rows}


def ingest_folder(
    folder: Path,
    settings: DocflowSettings,
    store: ObjectStore,
    labels: dict[str, str] | None = None,
    show_progress: bool = False,
) -> FolderReport:
    """Upload every file under a folder (sub-folders included) through ``ingest``; ground-truth
    and CSV files are skipped. ``labels`` are keyed by the file's path in the folder
    (``sub/scan.png``) or its bare name; a document already stored whose label differs from
    the CSV's takes the CSV's (a corrected CSV is ingested again)."""
    from tqdm import tqdm

    labels = labels or {}
    files = sorted(
        path
        for path in folder.rglob("*")
        if path.is_file()
        and not path.name.endswith((".txt", ".csv", ".uzn"))
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
    report = FolderReport([], [], {})
    used: set[str] = set()

    def label_key(path: Path) -> str:
        name = path.relative_to(folder).as_posix()
        return name if name in labels else path.name

    def ingest_file(path: Path) -> IngestResult | RejectedDocument:
        try:
            with path.open("rb") as handle:
                return ingest(
                    handle,
                    path.relative_to(folder).as_posix(),
                    settings,
                    store,
                    labels.get(label_key(path)),
                    label_source="ingest",
                )
        except RejectedDocument as error:
            return error

    ensure_schema(settings.resolved_database_url)
    # Checking a file decodes it (~30 ms a page) and hashes it, both outside the GIL: one
    # thread per core makes a big folder's ingest that much shorter.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        outcomes = list(
            tqdm(
                pool.map(ingest_file, files),
                total=len(files),
                desc="ingesting",
                unit="file",
                disable=not show_progress,
            )
        )
    for path, result in zip(files, outcomes, strict=True):
        name = path.relative_to(folder).as_posix()
        key = label_key(path)
        label = labels.get(key)
        if label is not None:
            used.add(key)
        if isinstance(result, RejectedDocument):
            report.rejected[name] = result.message
            continue
        if not result.duplicate:
            report.added.append(result.document)
            continue
        report.duplicates.append(result.document)
        clean = normalise_label(label)
        if clean is not None and clean != result.document.label:
            with session_scope(settings.resolved_database_url) as session:
                document = session.get(Document, result.document.id)
                assert document is not None
                set_label(session, document, clean, "ingest")
                report.relabelled.append(document)
    report.unmatched_labels = sorted(set(labels) - used)
    return report
