"""OCR accuracy and cost on real documents, in one run: the raw `tesseract` CLI beside every
Docflow mode.

Corpora (read from ../shared/data when present; each is skipped, with a word, when absent):
- receipts-dev: 63 real photographed receipts with SROIE line transcripts. Word F1 as the SROIE
  task-2 rule defines it (case-sensitive bags of words), and caseless: the transcripts are upper
  case while most receipts print mixed case, so the case-sensitive figure counts every correctly
  read "Total" as a miss. Also reported on the held-out half (odd positions of the sorted list):
  thresholds were chosen on the even half.
- real scans with ground truth (phototest in four rotations, eurotext, two UNLV pages): CER.
- office-scans-dev: 98 real 100-dpi office scans in 16 classes, no transcripts. Quality is the
  macro-F1 of one fixed classifier on each method's text (word + character TF-IDF, logistic
  regression C=16, classes weighted; the same for every method), repeated stratified 3-fold
  cross-validation (4 repeats, same folds for every method), and, trained on the set's fixed
  `train` split, on its `test` split.

Every method reads the same image file. The cascade and the ensemble are put together from the
Tesseract and PP-OCR readings of the same prepared page (as the pipeline does) and charged both
engines' time. Pages are shared between two processes, each with one thread per engine
(OMP_THREAD_LIMIT=1, onnxruntime 1 thread), so "s/page" is one core's time.
Then `docflow ocr`'s path (iter_ocr_documents) on receipts with one and two worker processes.

    .venv/bin/python benchmarks/ocr_benchmark.py [--limit N] [--with-easyocr] [--scaling 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

from PIL import Image
from rapidfuzz.distance import Levenshtein
from rich.console import Console
from rich.table import Table

from docflow_assets.ocr.cascade import cascade
from docflow_assets.ocr.engines import OcrEngine, TesseractEngine
from docflow_assets.ocr.ensemble import ensemble
from docflow_assets.ocr.evaluation import (
    WordCounts,
    ground_truth_pairs,
    normalise,
    receipt_pairs,
    word_counts,
)
from docflow_assets.ocr.pipeline import OcrOptions, OcrRequest, iter_ocr_documents, read_upright
from docflow_assets.ocr.ppocr_engine import PpOcrEngine
from docflow_assets.page_text import PageText

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RECEIPTS = SHARED / "receipts-dev"
OFFICE_SCANS = SHARED / "office-scans-dev"
REAL_SCANS = SHARED / "real-scans"
NOT_GROUND_TRUTH = {"linn.png"}  # linn.txt is another engine's output, not ground truth
ROTATED_PHOTOTEST = (
    "phototest-rotated-L.png",
    "phototest-rotated-R.png",
    "phototest-rotated-180.png",
)
METHODS = ("tesseract CLI", "tesseract", "ppocr", "cascade", "ensemble", "easyocr")
console = Console()


@dataclass
class Reading:
    text: str
    seconds: float
    turned: bool = False
    read_by: str | None = None


@dataclass
class Score:
    words: WordCounts = field(default_factory=WordCounts)
    caseless: WordCounts = field(default_factory=WordCounts)
    held_out: WordCounts = field(default_factory=WordCounts)
    char_edits: int = 0
    chars: int = 0
    seconds: float = 0.0
    pages: int = 0
    turned: int = 0

    def add(self, truth: str, reading: Reading, held_out: bool) -> None:
        counts = word_counts(truth, reading.text)
        self.words += counts
        self.caseless += word_counts(truth.upper(), reading.text.upper())
        if held_out:
            self.held_out += counts
        reference = normalise(truth)
        self.char_edits += Levenshtein.distance(reference, normalise(reading.text))
        self.chars += len(reference)
        self.seconds += reading.seconds
        self.pages += 1
        self.turned += reading.turned

    @property
    def cer(self) -> float:
        return self.char_edits / max(self.chars, 1)


def tesseract_cli(path: Path) -> Reading:
    started = time.perf_counter()
    text = subprocess.run(
        ["tesseract", str(path), "-", "--psm", "3"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    ).stdout
    return Reading(text, time.perf_counter() - started)


def _timed_upright(
    image: Image.Image, reader: OcrEngine, mode: str
) -> tuple[Image.Image, PageText, float]:
    started = time.perf_counter()
    prepared, text = read_upright(image, OcrOptions(mode=mode), reader)
    return prepared, text, time.perf_counter() - started


def read_every_way(job: tuple[Path, bool]) -> dict[str, Reading]:
    """One page read by every method, in one process (the engines load once per process)."""
    path, with_easyocr = job
    image = Image.open(path)
    image.load()
    readings = {"tesseract CLI": tesseract_cli(path)}
    prepared, tesseract, tesseract_seconds = _timed_upright(image, TesseractEngine(), "tesseract")
    turned = bool(tesseract.preprocessing.get("orientation_rotated"))
    readings["tesseract"] = Reading(tesseract.text, tesseract_seconds, turned)
    _, ppocr, ppocr_seconds = _timed_upright(image, PpOcrEngine(), "ppocr")
    ppocr_turned = bool(ppocr.preprocessing.get("orientation_rotated"))
    readings["ppocr"] = Reading(ppocr.text, ppocr_seconds, ppocr_turned)
    options = OcrOptions()
    # The cascade reads the Tesseract-prepared page with PP-OCR; reading it here costs a second
    # PP-OCR pass only on the pages the cascade hands over.
    started = time.perf_counter()
    cascaded = cascade(prepared, tesseract, options.cascade_threshold, PpOcrEngine())
    readings["cascade"] = Reading(
        cascaded.text,
        tesseract_seconds + time.perf_counter() - started,
        turned,
        cascaded.preprocessing["read_by"],
    )
    second: PageText = (
        PpOcrEngine().read(prepared, "eng")
        if cascaded.preprocessing["read_by"] == "tesseract"
        else cascaded
    )
    started = time.perf_counter()
    voted = ensemble(tesseract, second)
    readings["ensemble"] = Reading(
        voted.text, tesseract_seconds + second.seconds + time.perf_counter() - started, turned
    )
    if with_easyocr:
        from docflow_assets.ocr.easyocr_engine import EasyOcrEngine

        _, easy, easy_seconds = _timed_upright(image, EasyOcrEngine(), "easyocr")
        readings["easyocr"] = Reading(easy.text, easy_seconds)
    return readings


def score(pairs: list[tuple[Path, str]], with_easyocr: bool) -> dict[str, Score]:
    scores: dict[str, Score] = defaultdict(Score)
    with ProcessPoolExecutor(2) as pool:
        jobs = [(path, with_easyocr) for path, _ in pairs]
        for index, ((path, truth), readings) in enumerate(
            zip(pairs, pool.map(read_every_way, jobs), strict=True)
        ):
            for method, reading in readings.items():
                scores[method].add(truth, reading, held_out=index % 2 == 1)
            console.print(
                f"  {path.name}: "
                + ", ".join(
                    f"{m} {word_counts(truth, r.text).f1:.2f}" for m, r in readings.items()
                ),
                highlight=False,
            )
    return {method: scores[method] for method in METHODS if method in scores}


def print_table(title: str, scores: dict[str, Score], receipts: bool) -> None:
    cli = scores["tesseract CLI"]
    table = Table(title=title)
    columns = ["method", "pages", "word F1", "caseless F1", "F1 held-out", "F1 vs CLI"]
    columns = columns if receipts else ["method", "pages", "CER", "CER vs CLI", "word F1"]
    for column in [*columns, "s/page", "time vs CLI", "pages turned"]:
        table.add_column(column, justify="right")
    for method, result in scores.items():
        quality = (
            [
                f"{result.words.f1:.3f}",
                f"{result.caseless.f1:.3f}",
                f"{result.held_out.f1:.3f}",
                f"{result.words.f1 / cli.words.f1:.2f}x",
            ]
            if receipts
            else [
                f"{result.cer:.3f}",
                f"{result.cer / cli.cer:.2f}x" if cli.cer else "-",
                f"{result.words.f1:.3f}",
            ]
        )
        table.add_row(
            method,
            str(result.pages),
            *quality,
            f"{result.seconds / result.pages:.2f}",
            f"{result.seconds / cli.seconds:.2f}x",
            str(result.turned),
        )
    console.print(table)
    best_single = max(scores["tesseract"].words.f1, scores["ppocr"].words.f1)
    console.print(
        f"ensemble vs its best member (word F1): {scores['ensemble'].words.f1 / best_single:.3f}x; "
        f"caseless: {scores['ensemble'].caseless.f1 / scores['ppocr'].caseless.f1:.3f}x",
        highlight=False,
    )


def office_scans(limit: int) -> None:
    """Every method on the real office scans: cost against the CLI, pages by engine, and the
    fixed classifier's macro-F1 on each method's text."""
    import csv

    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import RepeatedStratifiedKFold

    from docflow_assets.ml.features import TextVectorizer

    rows = list(csv.DictReader((OFFICE_SCANS / "labels.csv").open()))[: limit or None]
    paths = [OFFICE_SCANS / "images" / row["file"] for row in rows]
    labels = np.array([row["label"] for row in rows])
    split = np.array([row["split"] for row in rows])
    console.print(f"office-scans-dev: {len(rows)} pages")
    readings: dict[str, list[Reading]] = defaultdict(list)
    with ProcessPoolExecutor(2) as pool:
        jobs = [(path, False) for path in paths]
        for path, read in zip(paths, pool.map(read_every_way, jobs), strict=True):
            for method, reading in read.items():
                readings[method].append(reading)
            console.print(f"  {path.name}", highlight=False)

    def fixed_classifier(texts: list[str], train: np.ndarray, test: np.ndarray) -> float:
        vectorizer = TextVectorizer().fit([texts[i] for i in train])
        model = LogisticRegression(C=16, max_iter=2000, class_weight="balanced")
        model.fit(vectorizer.transform([texts[i] for i in train]), labels[train])
        predicted = model.predict(vectorizer.transform([texts[i] for i in test]))
        return float(f1_score(labels[test], predicted, average="macro", zero_division=0))

    folds = list(
        RepeatedStratifiedKFold(n_splits=3, n_repeats=4, random_state=0).split(paths, labels)
    )
    train, test = np.flatnonzero(split == "train"), np.flatnonzero(split == "test")
    cli_seconds = sum(reading.seconds for reading in readings["tesseract CLI"])
    table = Table(title=f"Real office scans ({len(rows)} pages, 100 dpi), fixed classifier")
    for column in (
        "method",
        "s/page",
        "time vs CLI",
        "pages read by",
        "macro-F1 (CV)",
        "macro-F1 (test split)",
    ):
        table.add_column(column, justify="right")
    for method in METHODS:
        if method not in readings:
            continue
        texts = [reading.text for reading in readings[method]]
        seconds = sum(reading.seconds for reading in readings[method])
        engines: dict[str, int] = defaultdict(int)
        for reading in readings[method]:
            engines[reading.read_by or method] += 1
        table.add_row(
            method,
            f"{seconds / len(rows):.2f}",
            f"{seconds / cli_seconds:.2f}x",
            ", ".join(f"{engine} {count}" for engine, count in sorted(engines.items())),
            f"{np.mean([fixed_classifier(texts, a, b) for a, b in folds]):.3f}",
            f"{fixed_classifier(texts, train, test):.3f}",
        )
    console.print(table)


def scaling(pairs: list[tuple[Path, str]], mode: str) -> None:
    """`docflow ocr`'s path on the same files with one and two worker processes."""
    requests = [OcrRequest(i, path.read_bytes(), "image/jpeg") for i, (path, _) in enumerate(pairs)]
    options = OcrOptions(mode=mode)
    rates = {}
    for workers in (1, 2):
        started = time.perf_counter()
        results = list(iter_ocr_documents(requests, options, workers))
        assert not any(result.error for result in results)
        rates[workers] = len(requests) / (time.perf_counter() - started)
    table = Table(title=f"docflow ocr --mode {mode}: {len(requests)} receipts")
    for column in ("workers", "receipts/s", "speed-up"):
        table.add_column(column, justify="right")
    for workers, rate in rates.items():
        table.add_row(str(workers), f"{rate:.2f}", f"{rate / rates[1]:.2f}x")
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=0, help="receipts to read (0: all)")
    parser.add_argument("--with-easyocr", action="store_true", help="~15 s more a page")
    parser.add_argument("--scaling", type=int, default=20, help="receipts for 1-vs-2 workers")
    parser.add_argument("--office-limit", type=int, default=0, help="office scans (0: all)")
    parser.add_argument(
        "--only", choices=("receipts", "scans", "office"), help="one corpus, not all three"
    )
    args = parser.parse_args()
    if args.only == "office" or args.only is None:
        if (OFFICE_SCANS / "labels.csv").exists():
            office_scans(args.office_limit)
        else:
            console.print(f"[yellow]{OFFICE_SCANS} not found: no office-scans table[/yellow]")
        if args.only == "office":
            return
    with_receipts = RECEIPTS.is_dir() and args.only in (None, "receipts")
    with_scans = REAL_SCANS.is_dir() and args.only in (None, "scans")
    if with_receipts:
        receipts = receipt_pairs(RECEIPTS)[: args.limit or None]
        console.print(f"receipts-dev: {len(receipts)} receipts")
        receipt_scores = score(receipts, args.with_easyocr)
    elif not RECEIPTS.is_dir():
        console.print(f"[yellow]{RECEIPTS} not found: no receipts table[/yellow]")
    if with_scans:
        scans = [
            (path, truth)
            for path, truth in ground_truth_pairs(REAL_SCANS)
            if path.name not in NOT_GROUND_TRUTH and path.suffix != ".pdf"
        ]
        phototest = (REAL_SCANS / "phototest.txt").read_text()
        scans += [(REAL_SCANS / name, phototest) for name in ROTATED_PHOTOTEST]
        console.print(f"real scans: {len(scans)} pages")
        scan_scores = score(scans, args.with_easyocr)
    elif not REAL_SCANS.is_dir():
        console.print(f"[yellow]{REAL_SCANS} not found: no real-scans table[/yellow]")
    if with_receipts:
        print_table(f"Real receipts ({len(receipts)}), word F1", receipt_scores, receipts=True)
    if with_scans:
        print_table(f"Real scans ({len(scans)} pages), CER", scan_scores, receipts=False)
    if with_receipts and args.scaling:
        scaling(receipt_pairs(RECEIPTS)[: args.scaling], OcrOptions().mode)


if __name__ == "__main__":
    main()
