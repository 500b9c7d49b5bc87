"""Fit the ensemble's confidence calibration: P(word is right | engine, confidence).

Renders a demo corpus (a seed the OCR benchmark does not use), reads every page with Tesseract
and EasyOCR, marks each word right when it occurs in the page's ground truth, and fits an
isotonic curve per engine. Writes docflow_assets/ocr/calibration.json.

    .venv/bin/python benchmarks/calibrate_ocr.py [--per-class 1] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from docflow_assets.demo.render import render_corpus
from docflow_assets.ingest import inspect_content
from docflow_assets.ocr.easyocr_engine import EasyOcrEngine
from docflow_assets.ocr.engines import PageText, TesseractEngine
from docflow_assets.ocr.ensemble import CALIBRATION_FILE, is_junk, token
from docflow_assets.ocr.evaluation import ground_truth_pairs
from docflow_assets.ocr.pages import iter_page_images
from docflow_assets.ocr.preprocess import PreprocessConfig, preprocess
from docflow_assets.settings import DocflowSettings

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-class", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    settings = DocflowSettings()
    engines = {"tesseract": TesseractEngine(), "easyocr": EasyOcrEngine()}
    seen: dict[str, list[tuple[float, int]]] = {name: [] for name in engines}
    with tempfile.TemporaryDirectory() as folder:
        render_corpus(Path(folder), args.per_class, seed=args.seed)
        for path, truth in ground_truth_pairs(Path(folder)):
            data = path.read_bytes()
            content_type = inspect_content(data, settings).content_type
            for image in iter_page_images(data, content_type):
                prepared, _ = preprocess(image, PreprocessConfig())
                for name, engine in engines.items():
                    seen[name] += observations(engine.read(prepared, "eng"), truth)
            print(f"{path.name}: {', '.join(f'{n} {len(o)}' for n, o in seen.items())} words")
    edges = [round((index + 1) / BINS, 3) for index in range(BINS)]
    table = {}
    for name, rows in seen.items():
        confidence = np.array([c for c, _ in rows])
        right = np.array([r for _, r in rows])
        curve = IsotonicRegression(y_min=0.01, y_max=0.99, out_of_bounds="clip")
        curve.fit(confidence, right)
        centres = [edge - 0.5 / BINS for edge in edges]
        probabilities = [round(float(p), 3) for p in curve.predict(centres)]
        table[name] = {"edges": edges, "probabilities": probabilities, "words": len(rows)}
        print(name, f"{right.mean():.3f} right;", dict(zip(edges, probabilities, strict=True)))
    CALIBRATION_FILE.write_text(
        json.dumps({"seed": args.seed, "per_class": args.per_class, "engines": table}, indent=1)
        + "\n"
    )
    print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
