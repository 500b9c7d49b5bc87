"""Cost of a searchable PDF per page against `tesseract IMG OUT pdf` on the same pages, in one
run: the CLI (OCR and PDF in one, OMP_THREAD_LIMIT=1), Docflow's PDF from a stored reading
(what GET /document/{id}/pdf does: map the boxes, hOCR, OCRmyPDF's text layer, pikepdf), and
Docflow's OCR plus that PDF (what `docflow ocr --format pdf` does). CPU seconds of this process
and its children, one page at a time. Also checks that each PDF's extracted text holds the
page's words. Pages: ../shared/data/office-scans-dev (real 100-dpi scans) when present, else
the real scans shipped in tests/data.

    .venv/bin/python benchmarks/searchable_pdf.py [--pages 20] [--mode cascade]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import tempfile
from pathlib import Path

import pypdfium2 as pdfium
from rich.console import Console
from rich.table import Table

from docflow_assets.exports.formats import export_reading
from docflow_assets.ingest import inspect_content
from docflow_assets.ocr.pages import page_sizes
from docflow_assets.ocr.pipeline import OcrOptions, compose_readers, ocr_document
from docflow_assets.settings import DocflowSettings

ROOT = Path(__file__).resolve().parents[1]
OFFICE_SCANS = ROOT.parent / "shared" / "data" / "office-scans-dev" / "images"
REAL_SCANS = ROOT / "tests" / "data" / "real-scans"
console = Console()


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def extracted_words(pdf: bytes) -> set[str]:
    document = pdfium.PdfDocument(pdf)
    return {word for page in document for word in page.get_textpage().get_text_range().split()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--mode", default="cascade")
    args = parser.parse_args()
    os.environ["OMP_THREAD_LIMIT"] = "1"
    folder = OFFICE_SCANS if OFFICE_SCANS.is_dir() else REAL_SCANS
    paths = sorted(p for p in folder.iterdir() if p.suffix in {".tif", ".png", ".jpg"})
    paths = paths[: args.pages]
    settings = DocflowSettings()
    options = OcrOptions(mode=args.mode)
    readers = compose_readers(options.mode, options.language)
    cli = export = ocr = 0.0
    found_docflow = words = 0
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            data = path.read_bytes()
            content_type = inspect_content(data, settings).content_type
            started = cpu_seconds()
            subprocess.run(
                ["tesseract", str(path), str(Path(scratch) / "page"), "pdf"],
                check=True,
                capture_output=True,
            )
            cli += cpu_seconds() - started
            started = cpu_seconds()
            pages = ocr_document(data, content_type, options, readers)
            ocr += cpu_seconds() - started
            started = cpu_seconds()
            sizes = page_sizes(data, content_type)
            pdf = export_reading("pdf", data, content_type, pages, sizes, path.name).content
            export += cpu_seconds() - started
            stored = {word.text for page in pages for word in page.words}
            docflow_words = extracted_words(pdf)
            words += len(stored)
            found_docflow += len(stored & docflow_words)
    count = len(paths)
    table = Table(title=f"Searchable PDF, {count} pages of {folder.name}, CPU s/page")
    for column in ("method", "s/page", "vs tesseract pdf", "Docflow's words extracted from it"):
        table.add_column(column, justify="right")
    rows = [
        ("tesseract IMG OUT pdf", cli, None),
        ("Docflow PDF from a stored reading", export, found_docflow),
        (f"Docflow {args.mode} OCR + PDF", ocr + export, found_docflow),
    ]
    for name, seconds, found in rows:
        table.add_row(
            name,
            f"{seconds / count:.3f}",
            f"{seconds / cli:.2f}x",
            "(its own reading)" if found is None else f"{found / words:.1%}",
        )
    console.print(table)


if __name__ == "__main__":
    main()
