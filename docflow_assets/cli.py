"""The ``docflow`` command line."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from docflow_assets.ocr.pipeline import OCR_MODES, DocumentText
from docflow_assets.settings import DocflowSettings

console = Console()


@click.group(context_settings={"max_content_width": 120})
def main() -> None:
    """Docflow: document OCR and classification."""


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
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text: each file's text; json: one JSON object a line (file, pages, text, "
    "mean_confidence, engine, seconds).",
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
    workers: int | None,
) -> None:
    """Read the text of FILES with the pipeline the assets use.

    PNG, JPEG, TIFF, PDF, ...; a folder stands for the files in it.

    Text goes to stdout, progress to stderr. Exit code 1 when any file could not be read.
    """
    import json
    import sys

    from docflow_assets.document_service import DocumentService
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
                if output_format == "json":
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


@main.command()
def migrate() -> None:
    """Create or upgrade the application database schema."""
    from docflow_assets.store.database import migrate as run_migrations

    settings = DocflowSettings()
    run_migrations(settings.resolved_database_url)
    console.print(f"database at {settings.resolved_database_url} is up to date")
    # Creating MLflow's tables from two run processes at once races; create them here, once.
    _registry(settings).experiment_id()
    console.print(f"MLflow store at {settings.resolved_mlflow_tracking_uri} is ready")


@main.command("ingest")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of filename,label rows (a header row is allowed); a filename is the file's "
    "path under FOLDER (sub/scan.png) or its bare name, matched exactly (case included). "
    "Labels: 1-64 letters, digits, _ or -. Ingesting again with a corrected CSV relabels.",
)
def ingest_command(folder: Path, labels: Path | None) -> None:
    """Upload every file under FOLDER (sub-folders too).

    Duplicates are skipped; the same code path as the API's upload."""
    from docflow_assets.demo_run import ingest_labelled_folder

    report = ingest_labelled_folder(DocflowSettings(), folder, labels)
    for name, reason in report.rejected.items():
        console.print(f"[red]rejected[/red] {name}: {reason}")
    for document in report.relabelled:
        console.print(f"relabelled {document.filename} (document {document.id}): {document.label}")
    names = {path.name.lower(): path.name for path in folder.rglob("*") if path.is_file()}
    for row in report.unmatched_labels:
        near = names.get(Path(row).name.lower())
        hint = f" (did you mean {near}?)" if near else ""
        console.print(f"[yellow]no file named {row}[/yellow] in {folder}{hint}")
    console.print(
        f"{len(report.added)} added, {len(report.duplicates)} duplicates "
        f"({len(report.relabelled)} relabelled), {len(report.rejected)} rejected, "
        f"{len(report.unmatched_labels)} label rows matched no file"
    )
    if report.rejected or report.unmatched_labels:
        raise SystemExit(1)


@main.command("predict")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def predict_command(files: tuple[Path, ...]) -> None:
    """Store, read and classify FILES now with the served model.

    Each file is uploaded as by `docflow ingest` (a file already stored keeps its document),
    read unless its text is stored, and its prediction recorded (source `cli`)."""
    from docflow_assets.document_service import DocumentService, OnlineReading
    from docflow_assets.ingest import RejectedDocument

    settings = _settings_of_existing_home()
    registry = _registry(settings)
    served = registry.load_alias(settings.model_alias)
    if served is None:
        raise click.ClickException(
            f"no model is served ({settings.model_name}@{settings.model_alias}): train one with "
            "`docflow train`"
        )
    service = DocumentService.from_settings(settings, registry)
    table = Table("file", "document", "class", "confidence", "read now")
    rejected = 0
    for path in files:
        try:
            with path.open("rb") as handle:
                stored = service.ingest(handle, path.name, label_source="cli")
        except RejectedDocument as error:
            console.print(f"[red]rejected[/red] {path}: {error.message}")
            rejected += 1
            continue
        result = service.predict(
            served.classifier,
            served.name,
            served.version,
            stored.document.id,
            OnlineReading(original=stored.original),
            source="cli",
        )
        table.add_row(
            path.name,
            str(stored.document.id),
            result.scored.predicted_class,
            f"{result.scored.confidence:.2f}",
            "yes" if result.ran_ocr else "no",
        )
    console.print(table)
    console.print(f"model {served.name} version {served.version}", style="dim")
    if rejected:
        raise SystemExit(1)


@main.command("delete")
@click.argument("document_id", type=click.IntRange(1))
@click.confirmation_option(prompt="Delete the document, its file, text and predictions?")
def delete_command(document_id: int) -> None:
    """Delete a document with its file, text and predictions.

    As DELETE /document/{id}. Its label leaves later training snapshots; snapshots already
    taken, and models trained on them, keep what they hold."""
    from docflow_assets.document_service import DocumentNotFound, DocumentService

    settings = _settings_of_existing_home()
    try:
        report = DocumentService.from_settings(settings).delete(document_id)
    except DocumentNotFound as error:
        raise click.ClickException(str(error)) from error
    console.print(
        f"deleted document {report.document_id}: {report.ocr_rows} OCR rows, "
        f"{report.predictions} predictions, {report.feature_rows} feature rows, {report.original}"
    )


@main.command("label")
@click.argument("document_id", type=click.IntRange(1))
@click.argument("label")
def label_command(document_id: int, label: str) -> None:
    """Set a document's label (what the next model learns).

    As PUT /document/{id}/label does."""
    from docflow_assets.document_service import (
        DocumentNotFound,
        DocumentService,
        InvalidRequest,
    )

    settings = _settings_of_existing_home()
    try:
        document = DocumentService.from_settings(settings).label(document_id, label, "cli")
    except (DocumentNotFound, InvalidRequest) as error:
        raise click.ClickException(str(error)) from error
    console.print(f"document {document.id} ({document.filename}): {document.label}")


@main.command()
@click.option("--per-class", type=click.IntRange(3, 10_000), default=12, show_default=True)
@click.option("--dagster-port", type=int, default=3000, show_default=True)
@click.option("--api-port", type=int, default=8000, show_default=True)
@click.option("--timeout", type=float, default=1800, show_default=True)
def demo(per_class: int, dagster_port: int, api_port: int, timeout: float) -> None:
    """Run the whole pipeline on synthetic scans; leave the UIs up.

    Renders a labelled corpus, ingests it, lets the sensors OCR and train, deploys, scores, and
    starts the API; Dagster and the API keep running (`docflow stop`)."""
    from docflow_assets.demo_run import DemoFailed, DemoStack

    settings = DocflowSettings()
    stack = DemoStack(settings, ConsoleProgress(), dagster_port, api_port, timeout)
    try:
        summary = stack.run(per_class)
    except DemoFailed as error:
        raise click.ClickException(str(error)) from error
    table = Table(title=f"Docflow demo: model {settings.model_name} v{summary.model_version}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("documents", str(summary.documents))
    for status, count in sorted(summary.statuses.items()):
        table.add_row(f"  status {status}", str(count))
    table.add_row("documents with predictions", str(summary.predicted))
    for name in ("accuracy", "macro_f1", "baseline_accuracy", "baseline_macro_f1"):
        if name in summary.metrics:
            table.add_row(f"cross-validated {name}", f"{summary.metrics[name]:.3f}")
    console.print(table)
    console.print(f"Dagster UI: http://127.0.0.1:{dagster_port}")
    console.print(f"API:        http://127.0.0.1:{api_port}  (docs: /schema)")
    console.print("Stop both with: make stop")


class ConsoleProgress:
    """The demo's progress on the terminal."""

    def step(self, title: str) -> None:
        console.rule(title)

    def note(self, message: str) -> None:
        console.print(message)

    @contextmanager
    def counting(self, what: str, total: int) -> Iterator[Callable[[int], None]]:
        with Progress(console=console) as progress:
            task = progress.add_task(what, total=total)
            yield lambda done: progress.update(task, completed=done)

    def waiting(self, what: str) -> AbstractContextManager[object]:
        return console.status(what)


@main.command()
@click.option("--name", default="docflow", show_default=True, help="Worker name (@host is added).")
def worker(name: str) -> None:
    """Run a Celery worker that executes pipeline steps.

    For DOCFLOW_EXECUTOR=celery.

    It takes one step at a time from DOCFLOW_CELERY_BROKER and acknowledges it only when done,
    so a worker killed mid-step gives the step back. OCR inside a step uses DOCFLOW_OCR_WORKERS
    processes. Start one per machine; every machine needs the same DOCFLOW_* and DAGSTER_HOME
    (PostgreSQL, S3 and MLflow server in production).
    """
    import sys

    settings = DocflowSettings()
    console.print(f"worker {name}: broker {settings.celery_broker}, home {settings.resolved_home}")
    command = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "docflow_assets.defs.celery_worker",
        "worker",
        # Steps run in the worker process itself: OCR starts its own process pool, which the
        # default prefork pool's daemonic children may not.
        "--pool",
        "solo",
        "--queues",
        "dagster",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
    ]
    # The worker takes this process's place: signals sent to it reach Celery itself.
    os.execv(sys.executable, command)


@main.command()
def stop() -> None:
    """Stop the processes that `docflow demo` started."""
    from docflow_assets import services

    stopped = services.stop_all(DocflowSettings().resolved_home / "run")
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@main.command()
def train() -> None:
    """Snapshot the labels, train, deploy if the gate passes.

    Adds a training snapshot partition and runs train_model_job for it in this process against
    the home's Dagster instance, so the run, the partition and its checks show in the Dagster
    UI. Exit code 1 when the gate refused the model.
    """
    from dagster import DagsterInstance

    from docflow_assets.definitions import defs
    from docflow_assets.defs.partitions import TRAINING_SNAPSHOTS
    from docflow_assets.demo_run import prepare_dagster_home
    from docflow_assets.ml.training_set import snapshot_partition_key

    settings = DocflowSettings()
    dagster_home = prepare_dagster_home(os.environ, settings.resolved_home)
    partition = snapshot_partition_key(datetime.now(UTC))
    console.print(
        f"home {settings.resolved_home}, Dagster instance {dagster_home}, "
        f"training snapshot {partition}"
    )
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(TRAINING_SNAPSHOTS, [partition])
        result = defs.resolve_job_def("train_model_job").execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
    trained = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    table = Table(title=f"training snapshot {partition}")
    for column in ("check", "verdict", "why"):
        table.add_column(column)
    for check in result.get_asset_check_evaluations():
        reason = check.metadata.get("reason")
        figures = ", ".join(f"{name} {value.value}" for name, value in check.metadata.items())
        table.add_row(
            f"{check.asset_key.to_user_string()}: {check.check_name}",
            "[green]passed[/green]" if check.passed else "[red]refused[/red]",
            str(reason.value) if reason is not None else figures,
        )
    console.print(table)
    classifier = trained.get("document_classifier")
    if classifier is None:
        raise click.ClickException(f"run {result.run_id} trained no model (see the checks above)")
    console.print(f"model version {classifier['model_version'].value}")
    head = classifier["head"].value
    console.print(
        f"head {head}, cross-validated macro-F1 {classifier['test_macro_f1'].value:.3f} "
        f"(baseline {classifier['baseline_test_macro_f1'].value:.3f})"
    )
    if "deployed_model" not in trained:
        console.print(f"[red]not deployed[/red]: {settings.model_alias} stays where it was")
        raise SystemExit(1)
    console.print(f"deployed as {settings.model_name}@{settings.model_alias}")


@main.group()
def model() -> None:
    """The registered classifier: what is served, and rollback."""


def _registry(settings: DocflowSettings):
    from docflow_assets.ml.registry import Registry

    return Registry.from_settings(settings)


def _settings_of_existing_home() -> DocflowSettings:
    """The settings, once their home is known to exist: a command that only reads must not
    create an empty home (and MLflow store) wherever it happens to run."""
    settings = DocflowSettings()
    home = settings.home.expanduser().resolve()
    if settings.mlflow_tracking_uri is None and not home.is_dir():
        raise click.ClickException(
            f"no Docflow home at {home}: run where `make demo` ran, or set DOCFLOW_HOME"
        )
    console.print(f"home {settings.resolved_home}", style="dim")
    return settings


@main.command("export")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["csv", "parquet"]),
    default=None,
    help="Default: from the file's extension.",
)
@click.option("--class", "predicted_class", help="Only predictions of this class.")
@click.option(
    "--source",
    type=click.Choice(["batch", "api", "cli"]),
    help="The pipeline's, online (API) or `docflow predict` ones.",
)
@click.option("--model-version", help="Only predictions of this model version.")
@click.option("--max-confidence", type=click.FloatRange(0, 1), help="Only ones this unsure.")
def export(
    out_file: Path,
    file_format: str | None,
    predicted_class: str | None,
    source: str | None,
    model_version: str | None,
    max_confidence: float | None,
) -> None:
    """Write recorded predictions to a CSV or Parquet file.

    One row each, with document, label and model: the rows of GET /predictions/export."""
    from docflow_assets.document_service import DocumentService
    from docflow_assets.store.repository import PredictionFilter

    settings = _settings_of_existing_home()
    chosen = file_format or out_file.suffix.lstrip(".").lower()
    if chosen not in {"csv", "parquet"}:
        raise click.UsageError(f"cannot tell the format from {out_file.name}: pass --format")
    where = PredictionFilter(predicted_class, source, model_version, max_confidence)
    table = DocumentService.from_settings(settings).predictions_table(where)
    if chosen == "csv":
        table.to_csv(out_file, index=False)
    else:
        table.to_parquet(out_file, index=False)
    console.print(f"{len(table)} predictions written to {out_file}")


@main.command()
def info() -> None:
    """Show which Docflow home and stores this shell uses.

    From DOCFLOW_* and DAGSTER_HOME; nothing is created."""
    settings = _settings_of_existing_home()
    table = Table(show_header=False)
    for name, value in (
        ("home", str(settings.resolved_home)),
        ("database", settings.resolved_database_url),
        ("object store", settings.resolved_object_store),
        ("MLflow tracking", settings.resolved_mlflow_tracking_uri),
        (
            "Dagster instance",
            os.environ.get("DAGSTER_HOME", "unset (make sets .docflow/dagster_home)"),
        ),
        ("executor", settings.executor),
        ("OCR", f"{settings.ocr_mode}, {settings.ocr_languages}"),
        ("served alias", f"{settings.model_name}@{settings.model_alias}"),
    ):
        table.add_row(name, value)
    console.print(table)


@main.command("mlflow-ui")
@click.option("--port", default=5000, show_default=True)
def mlflow_ui(port: int) -> None:
    """Open the MLflow UI on the home's runs and models.

    Runs, metrics and model versions of the tracking store."""
    import sys

    settings = _settings_of_existing_home()
    if settings.mlflow_tracking_uri:
        console.print(f"MLflow is a server here: open {settings.mlflow_tracking_uri}")
        return
    artifacts = settings.mlflow_artifact_location
    assert artifacts is not None  # embedded store: artefacts under the home
    console.print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C stops it)")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        settings.resolved_mlflow_tracking_uri,
        "--default-artifact-root",
        artifacts,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    os.execv(sys.executable, command)


@model.command("info")
def model_info() -> None:
    """Show which version the serving alias points at."""
    from docflow_assets.ml.registry import PREVIOUS_ALIAS_SUFFIX

    settings = _settings_of_existing_home()
    registry = _registry(settings)
    current = registry.version_for_alias(settings.model_alias)
    previous = registry.version_for_alias(settings.model_alias + PREVIOUS_ALIAS_SUFFIX)
    console.print(f"{settings.model_name}@{settings.model_alias}: version {current}")
    console.print(f"rollback target: version {previous}")
    verdict = registry.last_verdict()
    if verdict is not None:
        version, outcome, reason = verdict
        console.print(f"last gate verdict: version {version} {outcome} ({reason})")
    if current is None:
        console.print("[red]no model is served[/red]")
        raise SystemExit(1)


@model.command("rollback")
@click.option("--to", "to_version", help="Version to serve (default: the one served before).")
def model_rollback(to_version: str | None) -> None:
    """Serve the previous (or a given) version again."""
    settings = _settings_of_existing_home()
    try:
        left, served = _registry(settings).rollback(settings.model_alias, to_version)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    console.print(f"{settings.model_name}@{settings.model_alias}: version {left} -> {served}")
