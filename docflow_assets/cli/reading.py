"""Commands that read files: OCR them, evaluate the OCR, export searchable PDFs, make demo data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import cast

import click
from click.decorators import FC
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from docflow_assets.cli.app import console, main, settings_of_existing_home
from docflow_assets.ocr.pipeline import OCR_MODES, DocumentText
from docflow_assets.settings import DocflowSettings


def out_dir_option(help_text: str) -> Callable[[FC], FC]:
    """``--out-dir``: the folder a command writes its files to (made when missing)."""
    return click.option(
        "--out-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("."),
        show_default=True,
        help=help_text,
    )


@main.command("demo-data")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--per-class", type=click.IntRange(1, 10_000), default=12, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_data(out_dir: Path, per_class: int, seed: int) -> None:
    """Render a labelled corpus of synthetic scanned documents."""
    from docflow_assets.demo.render import render_corpus

    documents = render_corpus(out_dir, per_class, seed, show_progress=True)
    console.print(f"{len(documents)} documents and labels.csv written to {out_dir}")


@main.command("ocr")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(OCR_MODES),
    help="OCR mode (default: DOCFLOW_OCR_MODE, cascade unless set).",
)
@click.option("--lang", "language", help="Tesseract languages, e.g. eng+rus (default: eng).")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "pdf", "hocr", "alto"]),
    default="text",
    show_default=True,
    help="text: each file's text; json: one JSON object a line (file, pages, text, "
    "mean_confidence, engine, seconds); pdf: a searchable PDF of each file; hocr, alto: its "
    "words with boxes and confidences. pdf, hocr and alto are written to --out-dir.",
)
@out_dir_option(
    "Where --format pdf, hocr and alto write FILE's stem with .pdf, .hocr or .alto.xml."
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Processes reading files at once (default: cores).",
)
def ocr_files(
    files: tuple[Path, ...],
    mode: str | None,
    language: str | None,
    output_format: str,
    out_dir: Path,
    workers: int | None,
) -> None:
    """Read the text of FILES with the pipeline the assets use.

    PNG, JPEG, TIFF, PDF, ...; a folder stands for the files in it.

    Text goes to stdout, progress to stderr. Exit code 1 when any file could not be read.
    """
    import json
    import sys

    from docflow_assets.document_service import DocumentService
    from docflow_assets.exports.formats import EXPORT_FORMATS, ExportFormat
    from docflow_assets.ocr.engines import UnsupportedLanguage

    service = DocumentService.from_settings(DocflowSettings())
    errors = Console(stderr=True, soft_wrap=True)
    failed = 0
    paths = [
        member
        for given in files
        for member in (
            sorted(p for p in given.iterdir() if p.is_file()) if given.is_dir() else [given]
        )
    ]
    readings = service.ocr_files(paths, language, mode, workers or os.cpu_count() or 1)
    with Progress(console=errors, transient=True, disable=len(paths) < 2) as progress:
        task = progress.add_task("OCR", total=len(paths))
        try:
            for reading in readings:
                progress.advance(task)
                path, document = reading.path, reading.document
                if document is None or reading.error:
                    failed += 1
                    why = "OCR failed" if document is not None else "cannot read"
                    errors.print(f"[red]{why}[/red] {path}: {reading.error}")
                    continue
                if output_format in EXPORT_FORMATS:
                    export = service.export_file(reading, cast(ExportFormat, output_format))
                    out_dir.mkdir(parents=True, exist_ok=True)
                    (out_dir / export.filename).write_bytes(export.content)
                    errors.print(f"wrote {out_dir / export.filename}", highlight=False)
                elif output_format == "json":
                    record = _reading_record(path, document, mode or service.settings.ocr_mode)
                    sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
                else:
                    if len(paths) > 1:
                        sys.stdout.write(f"==> {path} <==\n")
                    sys.stdout.write(document.text.rstrip("\n") + "\n")
                sys.stdout.flush()
        except UnsupportedLanguage as error:
            raise click.UsageError(str(error)) from error
    if failed:
        raise SystemExit(1)


def _reading_record(path: Path, document: DocumentText, mode: str) -> dict[str, object]:
    pages = document.pages
    words = [word for page in pages for word in page.words]
    return {
        "file": str(path),
        "pages": len(pages),
        "text": document.text,
        "mean_confidence": round(
            sum(w.confidence for w in words) / len(words) if words else 0.0, 4
        ),
        "engine": pages[0].engine if pages else mode,
        "read_by": sorted({str(p.preprocessing.get("read_by", p.engine)) for p in pages}),
        "seconds": round(sum(page.seconds for page in pages), 3),
    }


@main.command("export-pdf")
@click.argument("document_ids", nargs=-1, required=True, type=click.IntRange(1))
@out_dir_option("Folder the PDFs are written to, each named after its document's file.")
def export_pdf(document_ids: tuple[int, ...], out_dir: Path) -> None:
    """Write searchable PDFs of stored documents.

    Each is the original's pages with the stored words as an invisible text layer, named
    ID-FILENAME.pdf. Exit code 1 when any document could not be exported."""
    from docflow_assets.document_service import DocumentService

    service = DocumentService.from_settings(settings_of_existing_home())
    failed = 0
    for document_id in document_ids:
        try:
            export = service.export(document_id, "pdf")
        except (LookupError, ValueError) as error:
            console.print(f"[red]document {document_id}[/red]: {error}")
            failed += 1
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{document_id}-{export.filename}"
        path.write_bytes(export.content)
        console.print(f"document {document_id}: {path}", highlight=False)
    if failed:
        raise SystemExit(1)


@main.command("ocr-eval")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(["raw", *OCR_MODES]),
    help="Modes to compare (repeatable); default all. raw = Tesseract without preprocessing.",
)
def ocr_eval(folder: Path, modes: tuple[str, ...]) -> None:
    """CER, WER, word F1 and speed of each OCR mode.

    Measured against ground truth.

    FOLDER holds documents with NAME.gt.txt or NAME.txt beside them, or is a receipts folder
    (images/NAME.jpg with SROIE-style gt/NAME.csv: eight coordinates, then the line's text).
    """
    from dataclasses import replace

    from docflow_assets.document_service import ocr_options
    from docflow_assets.ocr.evaluation import evaluate_modes, ground_truth_pairs
    from docflow_assets.ocr.preprocess import PreprocessConfig

    settings = DocflowSettings()
    configured = ocr_options(settings)
    pairs = ground_truth_pairs(folder)
    if not pairs:
        raise click.ClickException(f"no document in {folder} has a ground-truth text beside it")
    options = (
        {
            "tesseract (no preprocessing)": replace(
                configured, mode="tesseract", preprocessing=PreprocessConfig(())
            )
        }
        if not modes or "raw" in modes
        else {}
    )
    for mode in OCR_MODES:
        if not modes or mode in modes:
            options[f"{mode} ({settings.ocr_preprocess})"] = replace(configured, mode=mode)
    console.print(
        f"{len(pairs)} documents x {len(options)} modes ({', '.join(options)}); EasyOCR takes "
        "seconds a page on a CPU: --mode picks fewer",
        style="dim",
    )
    table = Table(title=f"OCR on {len(pairs)} documents in {folder}")
    for column in ("mode", "pages", "CER", "WER", "word F1", "pages/s"):
        table.add_column(column, justify="right")
    for row in evaluate_modes(pairs, options, show_progress=True):
        table.add_row(
            row.mode,
            str(row.pages),
            f"{row.cer:.3f}",
            f"{row.wer:.3f}",
            f"{row.words.f1:.3f}",
            f"{row.pages_per_second:.2f}",
        )
    console.print(table)
