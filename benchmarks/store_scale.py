"""What people and the pipeline do, timed on homes of growing size: a home filled quickly with
documents that look real (one OCR page of a few hundred words each, written through the same
``replace_ocr_results`` as real pages so the search index is real; a prediction with scores on
each read document; labels on a tenth; a few failures), then each call the API, the review page,
the sensors, training and exports make, timed through the service (p50 and p99 of repeated
calls, milliseconds), and how each figure grows with the home.

    .venv/bin/python benchmarks/store_scale.py [--sizes 1000 10000] [--postgres]

Each size gets a fresh home: the embedded default (SQLite), or with --postgres a throw-away
database on the local PostgreSQL (its objects still in the home's folder).
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

from docflow_assets.demo.content import DOCUMENT_CLASSES, GENERATORS
from docflow_assets.document_service import DocumentService
from docflow_assets.page_text import PageText, Word, text_from_words
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import Document, DocumentStatus, Prediction
from docflow_assets.store.repository import PredictionFilter, ReviewFilter, replace_ocr_results

console = Console()
LABELLED_SHARE = 0.1
FAILED_SHARE = 0.01
WAITING_SHARE = 0.01
FILL_CHUNK = 500
REPEATS = 15
FAILURE = "OCR failed: RuntimeError: unreadable"


@dataclass(frozen=True)
class Timing:
    p50_ms: float
    p99_ms: float


def _page(rng: random.Random, label: str) -> PageText:
    """A page of a few hundred words of the class's text, with boxes in reading order."""
    lines = [text for _, text in GENERATORS[label](rng) if text.strip()]
    words: list[Word] = []
    for number, line in enumerate(lines):
        for column, token in enumerate(line.split()):
            box = (40 + 90 * column, 40 + 30 * number, 80, 24)
            words.append(Word(token, box, rng.uniform(0.55, 0.99), number, 0))
    return PageText("cascade", "eng", words, 0.5, {"read_by": "tesseract"}, text_from_words(words))


def fill(settings: DocflowSettings, documents: int, seed: int = 0) -> list[int]:
    """``documents`` stored documents in bulk, the read ones with OCR text and a prediction."""
    rng = random.Random(seed)
    url = settings.resolved_database_url
    ensure_schema(url)
    first_day = date(2026, 1, 1)
    ids: list[int] = []
    for start in range(0, documents, FILL_CHUNK):
        rows = []
        for number in range(start, min(start + FILL_CHUNK, documents)):
            label = DOCUMENT_CLASSES[number % len(DOCUMENT_CLASSES)]
            draw = rng.random()
            status = (
                DocumentStatus.FAILED
                if draw < FAILED_SHARE
                else DocumentStatus.UPLOADED
                if draw < FAILED_SHARE + WAITING_SHARE
                else DocumentStatus.PREDICTED
            )
            rows.append(
                {
                    "filename": f"{label}-{number:06d}.png",
                    "content_type": "image/png",
                    "size_bytes": 200_000,
                    "sha256": f"{seed:08x}{number:056x}",
                    "storage_key": f"originals/{number:06d}.png",
                    "pages": 1,
                    "status": status,
                    "status_reason": "OCR failed: RuntimeError: unreadable"
                    if draw < 0.01
                    else None,
                    "uploaded_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number),
                    "upload_date": first_day + timedelta(days=number * 60 // max(documents, 1)),
                    "label": label if rng.random() < LABELLED_SHARE else None,
                    "label_source": "ingest",
                }
            )
        with session_scope(url) as session:
            inserted = session.execute(insert(Document).returning(Document.id), rows).scalars()
            chunk_ids = list(inserted)
            ids.extend(chunk_ids)
            predictions = []
            for document_id, row in zip(chunk_ids, rows, strict=True):
                if row["status"] != DocumentStatus.PREDICTED:
                    continue
                document = session.get(Document, document_id)
                assert document is not None
                label = str(row["filename"]).split("-")[0]
                replace_ocr_results(session, document, [_page(rng, label)])
                document.status = DocumentStatus.PREDICTED
                scores = {name: rng.random() / 10 for name in DOCUMENT_CLASSES}
                scores[label] = rng.uniform(0.3, 1.0)
                # In bulk, so kept here as add_prediction keeps it.
                document.latest_confidence = scores[label]
                document.latest_predicted_class = label
                predictions.append(
                    {
                        "document_id": document_id,
                        "model_name": "docflow-classifier",
                        "model_version": "1",
                        "predicted_class": label,
                        "confidence": scores[label],
                        "all_scores": scores,
                        "source": "batch",
                    }
                )
            if predictions:
                session.execute(insert(Prediction), predictions)
    return ids


def timed(call: Callable[[], object], repeats: int = REPEATS) -> Timing:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Timing(1000 * statistics.median(ordered), 1000 * p99)


def measure(settings: DocflowSettings, ids: list[int]) -> dict[str, Timing]:
    service = DocumentService.from_settings(settings)
    rng = random.Random(1)
    pick = lambda: rng.choice(ids)  # noqa: E731 - a random stored document per call
    middle = max(1, len(ids) // 50 // 2)
    results = {
        "/documents (oldest, page 1)": timed(lambda: service.documents(1, 50)),
        "/documents (oldest, middle page)": timed(lambda: service.documents(middle, 50)),
        "/documents?status=predicted": timed(lambda: service.documents(1, 50, "predicted")),
        "/documents?label=invoice": timed(lambda: service.documents(1, 50, None, "invoice")),
        "/documents?q= (common word)": timed(lambda: service.search("total", 1, 50)),
        "/documents?q= (two words)": timed(lambda: service.search("invoice total", 1, 50)),
        "review, least confident first": timed(
            lambda: service.review(ReviewFilter(order="unsure"), 1, 50)
        ),
        "review, unlabelled predicted": timed(
            lambda: service.review(ReviewFilter(status="predicted", unlabelled=True), 1, 50)
        ),
        "/document/{id}": timed(lambda: service.document_with_pages(pick())),
        "/prediction/history/{id}": timed(lambda: service.history(pick())),
        "/predictions (page 1)": timed(lambda: service.predictions(PredictionFilter(), 1, 50)),
        "/predictions?max_confidence=0.5": timed(
            lambda: service.predictions(PredictionFilter(max_confidence=0.5), 1, 50)
        ),
        "/metrics (pipeline state)": timed(service.pipeline_state),
        "new_uploads_sensor tick": timed(
            lambda: service.uploads_waiting(
                max(ids) - 100, datetime.now(UTC) - timedelta(minutes=5), 2000
            )
        ),
        "model_scoring_sensor tick": timed(lambda: service.scoring_backlog(400)),
        "training_snapshot_sensor tick": timed(
            lambda: (service.labels_now(), service.snapshot_labels())
        ),
        "training snapshot": timed(lambda: service.take_snapshot("bench"), repeats=1),
    }
    for kind in ("csv", "parquet"):
        tracemalloc.start()
        started = time.perf_counter()
        with tempfile.TemporaryFile() as sink:
            service.export_predictions(PredictionFilter(), kind, sink)
        export_seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results[f"/predictions/export {kind} (peak {peak / 1e6:.0f} MB)"] = Timing(
            1000 * export_seconds, 1000 * export_seconds
        )
    doomed = ids[: min(1000, len(ids) // 10)]
    started = time.perf_counter()
    for document_id in doomed:
        service.delete(document_id)
    per_delete = (time.perf_counter() - started) / len(doomed)
    results[f"delete (each of {len(doomed)})"] = Timing(1000 * per_delete, 1000 * per_delete)
    return results


def run_size(documents: int, postgres: bool) -> dict[str, Timing]:
    with (
        tempfile.TemporaryDirectory(prefix="docflow-scale-") as scratch,
        _database(postgres, documents) as database_url,
    ):
        settings = DocflowSettings(home=Path(scratch) / "home", database_url=database_url)
        started = time.perf_counter()
        ids = fill(settings, documents)
        console.print(f"{documents} documents filled in {time.perf_counter() - started:.0f} s")
        return measure(settings, ids)


@contextmanager
def _database(postgres: bool, documents: int) -> Iterator[str | None]:
    """A throw-away database on the local PostgreSQL, dropped after (the tests' own); None,
    the embedded default in the home, without ``postgres``."""
    if not postgres:
        yield None
        return
    from docflow_assets.services import postgres_database

    with postgres_database(f"scale_{documents}") as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="Each size in a throw-away database on the local PostgreSQL (127.0.0.1:5432), "
        "dropped after. Default: the embedded SQLite.",
    )
    args = parser.parse_args()
    results = {size: run_size(size, args.postgres) for size in args.sizes}
    table = Table(title="p50 / p99 ms at each home size")
    table.add_column("call")
    for size in args.sizes:
        table.add_column(f"{size:,}", justify="right")
    table.add_column(f"p50 x ({args.sizes[0]:,} to {args.sizes[-1]:,})", justify="right")
    first, last = results[args.sizes[0]], results[args.sizes[-1]]
    for name in first:
        # Names carrying a figure (the export's peak) differ by size: match on the call.
        key = name.split(" (peak")[0].split(" (each")[0]
        row = [key]
        for size in args.sizes:
            named, match = next((n, t) for n, t in results[size].items() if n.startswith(key))
            peak = f" (peak {named.split('(peak ')[1]}" if "(peak " in named else ""
            row.append(f"{match.p50_ms:.1f} / {match.p99_ms:.1f}{peak}")
        growth = next(t for n, t in last.items() if n.startswith(key)).p50_ms / max(
            first[name].p50_ms, 1e-3
        )
        row.append(f"{growth:.1f}x")
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
