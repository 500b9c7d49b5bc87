"""Fit the ensemble's confidence calibration, P(word is right | engine, confidence), on real pages.

Reads the even positions of ../shared/data/receipts-dev (the OCR benchmark reports on the odd
ones as held out) with Tesseract and PP-OCR on the same prepared page, marks each word right
when the receipt's transcript has it (caselessly: the transcripts are upper case, the receipts
mostly are not), and fits an isotonic curve per engine. Tables of engines not refitted here
(EasyOCR's) are kept. Writes docflow_assets/ocr/calibration.json.

    .venv/bin/python benchmarks/calibrate_ocr.py
"""

from __future__ import annotations

import json
import os
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import numpy as np
from PIL import Image
from sklearn.isotonic import IsotonicRegression

from docflow_assets.ocr.engines import TesseractEngine
from docflow_assets.ocr.ensemble import CALIBRATION_FILE, is_junk, token
from docflow_assets.ocr.evaluation import receipt_pairs
from docflow_assets.ocr.pipeline import OcrOptions, read_upright
from docflow_assets.ocr.ppocr_engine import PpOcrEngine
from docflow_assets.page_text import PageText

RECEIPTS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "receipts-dev"
BINS = 20


def observations(page: PageText, truth: str) -> list[tuple[float, int]]:
    remaining = Counter(word.casefold().strip(".,;:!?\"'()[]") for word in truth.split())
    rows = []
    for word in page.words:
        if is_junk(word):
            continue
        right = remaining[token(word)] > 0
        if right:
            remaining[token(word)] -= 1
        rows.append((word.confidence, int(right)))
    return rows


def read_both(pair: tuple[Path, str]) -> dict[str, list[tuple[float, int]]]:
    path, truth = pair
    prepared, tesseract = read_upright(
        Image.open(path), OcrOptions(mode="ensemble"), TesseractEngine()
    )
    ppocr = PpOcrEngine().read(prepared, "eng")
    return {"tesseract": observations(tesseract, truth), "ppocr": observations(ppocr, truth)}


def main() -> None:
    if not RECEIPTS.is_dir():
        raise SystemExit(f"{RECEIPTS} not found")
    fitting = receipt_pairs(RECEIPTS)[0::2]
    seen: dict[str, list[tuple[float, int]]] = {"tesseract": [], "ppocr": []}
    with ProcessPoolExecutor(2) as pool:
        for (path, _), found in zip(fitting, pool.map(read_both, fitting), strict=True):
            for engine, rows in found.items():
                seen[engine] += rows
            print(f"{path.name}: {', '.join(f'{n} {len(o)}' for n, o in seen.items())} words")
    edges = [round((index + 1) / BINS, 3) for index in range(BINS)]
    existing = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.is_file() else {}
    table = dict(existing.get("engines", {}))
    for name, rows in seen.items():
        confidence = np.array([c for c, _ in rows])
        right = np.array([r for _, r in rows])
        curve = IsotonicRegression(y_min=0.01, y_max=0.99, out_of_bounds="clip")
        curve.fit(confidence, right)
        centres = [edge - 0.5 / BINS for edge in edges]
        probabilities = [round(float(p), 3) for p in curve.predict(centres)]
        table[name] = {
            "edges": edges,
            "probabilities": probabilities,
            "words": len(rows),
            "fitted_on": f"receipts-dev, {len(fitting)} receipts at even positions",
        }
        print(name, f"{right.mean():.3f} right;", dict(zip(edges, probabilities, strict=True)))
    CALIBRATION_FILE.write_text(json.dumps({"engines": table}, indent=1) + "\n")
    print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
