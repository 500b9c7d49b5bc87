"""Training cost against the number of labelled documents: seconds and peak memory of the full
training (k-fold selection among the candidates, calibration, final fit) on synthetic texts
with shared vocabulary and OCR noise, beside one fit of scikit-learn's logistic regression on
the same features as the baseline, on one thread. Each size runs in a fresh process so peak
memory is its own. Targets: 200 documents in 20 s, 10,000 in 180 s.

    .venv/bin/python benchmarks/train_scale.py [--sizes 200 1000 10000] [--classes 16]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

TARGET_SECONDS = {200: 20.0, 10_000: 180.0}


def measure(documents: int, classes: int) -> dict[str, float]:
    import torch
    from threadpoolctl import threadpool_limits

    from docflow_assets.demo.hard_texts import hard_corpus
    from docflow_assets.ml.features import TextVectorizer
    from docflow_assets.ml.training import train_classifier

    torch.set_num_threads(1)
    threadpool_limits(1)
    texts, labels = hard_corpus(classes=classes, per_class=documents // classes, seed=0)
    started = time.perf_counter()
    from sklearn.linear_model import LogisticRegression

    features = TextVectorizer().fit(texts).transform(texts)
    LogisticRegression(max_iter=2000, class_weight="balanced").fit(features, labels)
    baseline = time.perf_counter() - started
    started = time.perf_counter()
    result = train_classifier(texts, labels)
    return {
        "documents": len(texts),
        "seconds": time.perf_counter() - started,
        "baseline_seconds": baseline,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "features": features.shape[1],
        "nonzero_share": features.nnz / (features.shape[0] * features.shape[1]),
        "cv_macro_f1": result.test.macro_f1,
        "head": result.chosen,
        "dropped": ", ".join(result.dropped_heads) or "-",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 1000, 10000])
    parser.add_argument("--classes", type=int, default=16)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.classes)))
        return
    table = Table(title=f"Training on synthetic documents, {args.classes} classes, one thread")
    for column in (
        "documents",
        "seconds",
        "vs logistic regression",
        "peak MB",
        "features",
        "non-zero share",
        "CV macro-F1",
        "head",
        "dropped early",
        "target s",
    ):
        table.add_column(column, justify="right")
    for size in args.sizes:
        output = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--classes", str(args.classes)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        row = json.loads(output.strip().splitlines()[-1])
        table.add_row(
            str(row["documents"]),
            f"{row['seconds']:.0f}",
            f"{row['seconds'] / row['baseline_seconds']:.1f}x",
            f"{row['peak_mb']:.0f}",
            str(row["features"]),
            f"{row['nonzero_share']:.4f}",
            f"{row['cv_macro_f1']:.3f}",
            row["head"],
            row["dropped"],
            f"{TARGET_SECONDS[size]:.0f}" if size in TARGET_SECONDS else "-",
        )
        Console().print(f"{size}: {row}")
    Console().print(table)


if __name__ == "__main__":
    main()
