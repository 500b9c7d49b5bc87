"""Peak memory of one OCR step against its batch size: the same `DocumentService.read` over 20
and over 200 uploads of ~20 MB each (a one-page scan carrying ~20 MB in a private PNG chunk, so
the originals weigh what large scans do while the OCR stays cheap). Each size runs in a fresh
home and a fresh process, so its peak RSS (the step's own and its OCR workers') is its own. The
baseline is what a batch that holds every original at once would need: the sum of their sizes.

    .venv/bin/python benchmarks/ocr_batch_memory.py [--sizes 20 200] [--megabytes 20]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console()


def make_uploads(folder: Path, documents: int, megabytes: int) -> None:
    from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 36)
    folder.mkdir(parents=True)
    for number in range(documents):
        page = Image.new("L", (1700, 900), 255)
        draw = ImageDraw.Draw(page)
        for line in range(6):
            draw.text((80, 80 + 120 * line), f"Invoice {number} line {line} total 42.00", font=font)
        ballast = PngImagePlugin.PngInfo()
        # A private ancillary chunk: decoders skip it, yet the upload weighs ``megabytes``.
        ballast.add(b"blSt", os.urandom(megabytes * 1_000_000))
        page.save(folder / f"scan-{number:04d}.png", pnginfo=ballast)


def measure(home: Path) -> dict[str, float]:
    from sqlalchemy import select

    from docflow_assets.document_service import DocumentService
    from docflow_assets.settings import DocflowSettings
    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document

    settings = DocflowSettings(home=home)
    service = DocumentService.from_settings(settings)
    with session_scope(settings.resolved_database_url) as session:
        documents = list(session.scalars(select(Document)))
        ids = [document.id for document in documents]
        day = documents[0].upload_date
        total_bytes = sum(document.size_bytes for document in documents)
    started = time.perf_counter()
    report = service.read(day, ids)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {
        "documents": report.documents,
        "failed": len(report.failed),
        "seconds": time.perf_counter() - started,
        "originals_mb": total_bytes / 1e6,
        "peak_rss_mb": own,
        "worker_peak_rss_mb": workers,
    }


def run_size(documents: int, megabytes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="docflow-memory-") as scratch:
        uploads, home = Path(scratch) / "uploads", Path(scratch) / "home"
        make_uploads(uploads, documents, megabytes)
        subprocess.run(
            [str(Path(sys.executable).with_name("docflow")), "ingest", str(uploads)],
            check=True,
            env={**os.environ, "DOCFLOW_HOME": str(home)},
            stdout=subprocess.DEVNULL,
        )
        measured = subprocess.run(
            [sys.executable, __file__, "--measure", str(home)],
            check=True,
            capture_output=True,
            text=True,
        )
        return dict(json.loads(measured.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    results = {size: run_size(size, args.megabytes) for size in args.sizes}
    table = Table(title=f"One OCR step over uploads of ~{args.megabytes} MB")
    for column in (
        "documents",
        "read",
        "seconds",
        "originals (MB, all at once)",
        "step peak RSS (MB)",
        "OCR worker peak RSS (MB)",
    ):
        table.add_column(column, justify="right")
    for size, result in results.items():
        table.add_row(
            str(size),
            str(int(result["documents"])),
            f"{result['seconds']:.1f}",
            f"{result['originals_mb']:.0f}",
            f"{result['peak_rss_mb']:.0f}",
            f"{result['worker_peak_rss_mb']:.0f}",
        )
    console.print(table)
    smallest, largest = min(results), max(results)
    growth = results[largest]["peak_rss_mb"] / results[smallest]["peak_rss_mb"]
    originals = results[largest]["originals_mb"] / results[smallest]["originals_mb"]
    console.print(
        f"{largest / smallest:.0f}x the documents ({originals:.0f}x the bytes): "
        f"step peak RSS x{growth:.2f}"
    )


if __name__ == "__main__":
    main()
