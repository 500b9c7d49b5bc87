"""The learning loop on real labelled office scans, as a user meets it: `dagster dev` with its
daemon on a fresh home, the scans uploaded with labels on part of them, and nothing else.
The new-uploads sensor reads them, training_snapshot_sensor trains and the gate deploys (or
says why not), and model_scoring_sensor has the deployed model score every document.

    .venv/bin/python benchmarks/learning_loop.py [--scans ../shared/data/office-scans-dev]

The scans' fixed split decides: `train` pages are uploaded labelled, `test` pages unlabelled
and held out. Printed: the time to each stage, every candidate's cross-validated macro-F1
from the MLflow run, the gate's verdict, and the served model's macro-F1 on the held-out
pages beside two baselines trained on the same labelled pages: plain `tesseract` text + word
TF-IDF + logistic regression (scikit-learn defaults), and logistic regression at its default
strength on Docflow's own text and features.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sqlalchemy import select

from docflow_assets import services
from docflow_assets.demo_run import REPO_ROOT, prepare_dagster_home
from docflow_assets.ingest import ingest_folder
from docflow_assets.ml.features import TextVectorizer
from docflow_assets.ml.registry import Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import Document
from docflow_assets.store.objects import open_object_store
from docflow_assets.store.repository import document_texts, latest_predictions

SCANS = REPO_ROOT.parent / "shared" / "data" / "office-scans-dev"
DAGSTER_PORT = 3473


def wait(what: str, done: object, timeout: float) -> float:
    started = time.monotonic()
    while not done():  # type: ignore[operator]
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what} after {timeout:.0f} s")
        time.sleep(3)
    return time.monotonic()


def statuses(settings: DocflowSettings) -> dict[int, str]:
    with session_scope(settings.resolved_database_url) as session:
        return dict(session.execute(select(Document.id, Document.status)).tuples().all())


def tesseract_texts(paths: list[Path], folder: Path) -> dict[str, str]:
    """The plain CLI's text of each page, two at a time as `xargs -P2` would."""
    folder.mkdir()
    commands = [["tesseract", str(path), str(folder / path.stem), "--psm", "3"] for path in paths]
    environment = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    while commands:
        running = [
            subprocess.Popen(c, stderr=subprocess.DEVNULL, env=environment) for c in commands[:2]
        ]
        for process in running:
            process.wait()
        commands = commands[2:]
    return {path.name: (folder / f"{path.stem}.txt").read_text() for path in paths}


def macro_f1(truth: list[str], predicted: list[str]) -> float:
    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scans", type=Path, default=SCANS)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    console = Console()
    if not (args.scans / "labels.csv").exists():
        console.print(f"no labelled scans at {args.scans}: nothing to measure")
        return
    rows = list(csv.DictReader((args.scans / "labels.csv").open()))
    train = {row["file"]: row["label"] for row in rows if row["split"] == "train"}
    held_out = {row["file"]: row["label"] for row in rows if row["split"] == "test"}
    work = Path(tempfile.mkdtemp(prefix="docflow-loop-"))
    settings = DocflowSettings(home=work / "home")
    environment = {
        **os.environ,
        "DOCFLOW_HOME": str(settings.resolved_home),
        "OMP_THREAD_LIMIT": "1",
    }
    environment.pop("DAGSTER_HOME", None)
    prepare_dagster_home(environment, settings.resolved_home)
    run_dir = work / "run"
    ensure_schema(settings.resolved_database_url)
    Registry.from_settings(settings).experiment_id()
    try:
        services.start(
            services.dagster_service(DAGSTER_PORT, REPO_ROOT / "workspace.yaml"),
            run_dir,
            environment,
        )
        started = time.monotonic()
        store = open_object_store(settings.resolved_object_store, settings.s3_endpoint_url)
        report = ingest_folder(args.scans / "images", settings, store, train)
        ids = {document.filename: document.id for document in report.added}
        console.print(f"uploaded {len(ids)} scans, {len(train)} labelled")
        read = wait(
            "every scan read",
            lambda: all(s != "uploaded" for s in statuses(settings).values()),
            args.timeout,
        )
        registry = Registry.from_settings(settings)

        def verdict_given() -> bool:
            return registry.last_verdict() is not None

        judged = wait("the gate's verdict", verdict_given, args.timeout)
        version, verdict, reason = registry.last_verdict() or ("", "", "")
        console.print(f"version {version}: {verdict} ({reason})")
        predicted_at = None
        if verdict == "passed":
            predicted_at = wait(
                "every scan predicted",
                lambda: set(statuses(settings).values()) <= {"predicted", "failed"},
                args.timeout,
            )
        judged_version = registry.client.get_model_version(settings.model_name, version)
        run = registry.client.get_run(judged_version.run_id or "")
        candidates = {
            key.removeprefix("cv_macro_f1."): value
            for key, value in run.data.metrics.items()
            if key.startswith("cv_macro_f1.")
        }
        with session_scope(settings.resolved_database_url) as session:
            held_ids = [ids[name] for name in held_out]
            answers = latest_predictions(session, held_ids)
            texts = document_texts(session, list(ids.values()), prefer=settings.ocr_mode)
        truth = list(held_out.values())
        served = macro_f1(
            truth,
            [answers[i].predicted_class if i in answers else "" for i in held_ids],
        )
        plain = tesseract_texts(
            [args.scans / "images" / name for name in [*train, *held_out]], work / "tesseract"
        )
        words = TfidfVectorizer().fit([plain[name] for name in train])
        cli_baseline = LogisticRegression(max_iter=2000).fit(
            words.transform([plain[name] for name in train]), list(train.values())
        )
        cli = macro_f1(
            truth, list(cli_baseline.predict(words.transform([plain[n] for n in held_out])))
        )
        ours = TextVectorizer().fit([texts[ids[name]] for name in train])
        default = LogisticRegression(max_iter=2000, class_weight="balanced").fit(
            ours.transform([texts[ids[name]] for name in train]), list(train.values())
        )
        docflow_default = macro_f1(
            truth,
            list(default.predict(ours.transform([texts[ids[name]] for name in held_out]))),
        )
    finally:
        services.stop_all(run_dir)
    table = Table(title=f"The learning loop on {len(ids)} real office scans ({args.scans.name})")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("upload to every scan read", f"{read - started:.0f} s")
    table.add_row("upload to the gate's verdict", f"{judged - started:.0f} s")
    if predicted_at is not None:
        table.add_row("upload to every scan predicted", f"{predicted_at - started:.0f} s")
    table.add_row("verdict", f"version {version} {verdict}")
    table.add_row("served candidate", str(run.data.params.get("head")))
    for name, value in sorted(candidates.items()):
        table.add_row(f"  cross-validated macro-F1, {name}", f"{value:.3f}")
    table.add_row(f"held-out macro-F1 ({len(held_out)} pages): served model", f"{served:.3f}")
    table.add_row("  tesseract CLI + word TF-IDF + logistic regression", f"{cli:.3f}")
    table.add_row("  Docflow text + features, logistic regression C=1", f"{docflow_default:.3f}")
    console.print(table)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
