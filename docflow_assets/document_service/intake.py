"""What comes in: one upload or a folder stored and registered, and files read without storing
them (``docflow ocr``)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from docflow_assets.document_service.records_of import DocumentRecord
from docflow_assets.document_service.stores import ServiceStores, ocr_options
from docflow_assets.exports.formats import Export, ExportFormat, export_reading
from docflow_assets.ingest import (
    RejectedDocument,
    ingest,
    ingest_folder,
    inspect_content,
)
from docflow_assets.ocr.engines import check_languages
from docflow_assets.ocr.pages import page_sizes
from docflow_assets.ocr.pipeline import DocumentText, OcrRequest, iter_ocr_documents


@dataclass(frozen=True)
class FileReading:
    """One file's text, or why it could not be read."""

    path: Path
    document: DocumentText | None
    error: str | None = None
    content_type: str | None = None


@dataclass(frozen=True)
class Ingested:
    document: DocumentRecord
    duplicate: bool
    # A new document's bytes, read to validate them: whoever reads it next needs no fetch.
    original: bytes | None = None


@dataclass(frozen=True)
class IngestedFolder:
    added: list[DocumentRecord]
    duplicates: list[DocumentRecord]
    rejected: dict[str, str]  # file -> why
    # Already stored, with a label from the CSV that differs from theirs: now relabelled.
    relabelled: list[DocumentRecord]
    # Rows of the labels CSV that name no file of the folder (a typo, a different case).
    unmatched_labels: list[str]


class Intake(ServiceStores):
    def ingest(
        self,
        source: BinaryIO,
        filename: str,
        label: str | None = None,
        label_source: str = "upload",
    ) -> Ingested:
        """Validate, store and register one file (``RejectedDocument`` names why not); a
        duplicate returns the document already stored."""
        stored = ingest(source, filename, self.settings, self.store, label, label_source)
        return Ingested(DocumentRecord.of(stored.document), stored.duplicate, stored.original)

    def ingest_folder(
        self, folder: Path, labels: dict[str, str] | None = None, show_progress: bool = False
    ) -> IngestedFolder:
        """Every file under ``folder`` through ``ingest``, with the labels of a labels file."""
        report = ingest_folder(folder, self.settings, self.store, labels, show_progress)
        return IngestedFolder(
            [DocumentRecord.of(document) for document in report.added],
            [DocumentRecord.of(document) for document in report.duplicates],
            report.rejected,
            [DocumentRecord.of(document) for document in report.relabelled],
            report.unmatched_labels,
        )

    def ocr_files(
        self,
        paths: Iterable[Path],
        language: str | None = None,
        mode: str | None = None,
        workers: int = 2,
    ) -> Iterator[FileReading]:
        """Read files with the pipeline's OCR, storing nothing, in the given order. A file is
        opened only when a worker is ready for it, so a folder of any size reads in flat
        memory. ``UnsupportedLanguage`` before any file is read when Tesseract lacks a
        language asked for."""
        options = ocr_options(self.settings, language)
        if mode:
            options = replace(options, mode=mode)
        check_languages(options.language)
        ordered = list(paths)
        unreadable: dict[int, str] = {}
        content_types: dict[int, str] = {}

        def requests() -> Iterator[OcrRequest]:
            for index, path in enumerate(ordered):
                try:
                    data = path.read_bytes()
                    content_type = inspect_content(data, self.settings).content_type
                except (OSError, RejectedDocument) as error:
                    unreadable[index] = str(getattr(error, "message", error))
                    continue
                content_types[index] = content_type
                yield OcrRequest(index, data, content_type)

        # Readings come back as they finish; those ahead of an earlier file still being read
        # wait here (text only, no image), so the files come out in the order given.
        finished: dict[int, DocumentText] = {}
        next_index = 0
        for document in iter_ocr_documents(requests(), options, workers):
            finished[document.document_id] = document
            while next_index in finished or next_index in unreadable:
                if next_index in unreadable:
                    yield FileReading(ordered[next_index], None, unreadable.pop(next_index))
                else:
                    read = finished.pop(next_index)
                    yield FileReading(
                        ordered[next_index], read, read.error, content_types.pop(next_index)
                    )
                next_index += 1
        for index in range(next_index, len(ordered)):
            yield FileReading(ordered[index], None, unreadable[index])

    def export_file(self, reading: FileReading, kind: ExportFormat) -> Export:
        """A file ``ocr_files`` read, as a searchable PDF, hOCR or ALTO over the file itself."""
        if reading.document is None or reading.content_type is None:
            raise ValueError(f"{reading.path} was not read: {reading.error}")
        original = reading.path.read_bytes()
        sizes = page_sizes(
            original, reading.content_type, self.settings.render_dpi, self.settings.max_image_pixels
        )
        return export_reading(
            kind, original, reading.content_type, reading.document.pages, sizes, reading.path.name
        )
