"""The ``docflow`` command line."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, date, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from docflow_assets.ocr.pipeline import OCR_MODES, OcrOptions
from docflow_assets.settings import DocflowSettings

# The training sensor looks every minute; a run it launches is queued soon after.
SENSOR_GRACE_SECONDS = 180

console = Console()
REPO_ROOT = Path(__file__).resolve().parents[1]


@click.group()
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
    """Read the text of FILES (PNG, JPEG, TIFF, PDF, ...; a folder stands for the files in it)
    with the pipeline the assets use.

    Text goes to stdout, progress to stderr. Exit code 1 when any file could not be read.
    """
    import json
    import sys
    from dataclasses import replace

    from docflow_assets.ingest import RejectedDocument, inspect_content
    from docflow_assets.ocr.engines import UnsupportedLanguage, check_languages
    from docflow_assets.ocr.pipeline import OcrRequest, iter_ocr_documents

    settings = DocflowSettings()
    options = OcrOptions.from_settings(settings, language)
    if mode:
        options = replace(options, mode=mode)
    try:
        check_languages(options.language)
    except UnsupportedLanguage as error:
        raise click.UsageError(str(error)) from error
    errors = Console(stderr=True, soft_wrap=True)
    requests, names, failed = [], {}, 0
    paths = [
        member
        for given in files
        for member in (
            sorted(p for p in given.iterdir() if p.is_file()) if given.is_dir() else [given]
        )
    ]
    for index, path in enumerate(paths):
        try:
            data = path.read_bytes()
            requests.append(OcrRequest(index, data, inspect_content(data, settings).content_type))
            names[index] = path
        except (OSError, RejectedDocument) as error:
            failed += 1
            errors.print(f"[red]cannot read[/red] {path}: {getattr(error, 'message', error)}")
    with Progress(console=errors, transient=True, disable=len(requests) < 2) as progress:
        task = progress.add_task("OCR", total=len(requests))
        for document in iter_ocr_documents(requests, options, workers or os.cpu_count() or 1):
            progress.advance(task)
            path = names[document.document_id]
            if document.error:
                failed += 1
                errors.print(f"[red]OCR failed[/red] {path}: {document.error}")
                continue
            pages = document.pages
            if output_format == "json":
                words = [word for page in pages for word in page.words]
                record = {
                    "file": str(path),
                    "pages": len(pages),
                    "text": document.text,
                    "mean_confidence": round(
                        sum(w.confidence for w in words) / len(words) if words else 0.0, 4
                    ),
                    "engine": pages[0].engine if pages else options.mode,
                    "read_by": sorted(
                        {str(p.preprocessing.get("read_by", p.engine)) for p in pages}
                    ),
                    "seconds": round(sum(page.seconds for page in pages), 3),
                }
                sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
            else:
                if len(paths) > 1:
                    sys.stdout.write(f"==> {path} <==\n")
                sys.stdout.write(document.text.rstrip("\n") + "\n")
            sys.stdout.flush()
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
    """CER, WER, word F1 and pages/second of each OCR mode against ground truth.

    FOLDER holds documents with NAME.gt.txt or NAME.txt beside them, or is a receipts folder
    (images/NAME.jpg with SROIE-style gt/NAME.csv: eight coordinates, then the line's text).
    """
    from dataclasses import replace

    from docflow_assets.ocr.evaluation import evaluate_modes, ground_truth_pairs
    from docflow_assets.ocr.preprocess import PreprocessConfig

    settings = DocflowSettings()
    configured = OcrOptions.from_settings(settings)
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
    table = Table(title=f"OCR on {len(pairs)} documents in {folder}")
    for column in ("mode", "pages", "CER", "WER", "word F1", "pages/s"):
        table.add_column(column, justify="right")
    for row in evaluate_modes(pairs, options):
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
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def ingest_command(folder: Path, labels: Path | None) -> None:
    """Upload every file of FOLDER, skipping duplicates (same path as the API's upload)."""
    report = _ingest(DocflowSettings(), folder, labels)
    for name, reason in report.rejected.items():
        console.print(f"[red]rejected[/red] {name}: {reason}")
    console.print(
        f"{len(report.added)} added, {len(report.duplicates)} duplicates, "
        f"{len(report.rejected)} rejected"
    )
    if report.rejected:
        raise SystemExit(1)


def _ingest(settings: DocflowSettings, folder: Path, labels: Path | None):
    from docflow_assets.ingest import ingest_folder, read_labels
    from docflow_assets.store.database import ensure_schema
    from docflow_assets.store.objects import open_object_store

    ensure_schema(settings.resolved_database_url)
    store = open_object_store(settings.resolved_object_store, settings.s3_endpoint_url)
    return ingest_folder(
        folder, settings, store, read_labels(labels) if labels else None, show_progress=True
    )


@main.command()
@click.option("--per-class", type=click.IntRange(3, 10_000), default=12, show_default=True)
@click.option("--dagster-port", type=int, default=3000, show_default=True)
@click.option("--api-port", type=int, default=8000, show_default=True)
@click.option("--timeout", type=float, default=1800, show_default=True)
def demo(per_class: int, dagster_port: int, api_port: int, timeout: float) -> None:
    """Render, ingest, let the sensor process, train, deploy, predict; leave the UIs running."""
    from dagster_graphql import DagsterGraphQLClient

    from docflow_assets import services
    from docflow_assets.demo.render import render_corpus

    settings = DocflowSettings()
    started = datetime.now(UTC)
    home = settings.resolved_home
    run_dir = home / "run"
    env = {**os.environ, "DOCFLOW_HOME": str(home), "OMP_THREAD_LIMIT": "1"}
    _prepare_dagster_home(env, home)

    _registry(settings).experiment_id()  # MLflow's tables, before parallel runs race to make them
    corpus = home / "demo-corpus"
    console.rule("1. demo corpus")
    render_corpus(corpus, per_class, seed=0, show_progress=True)

    console.rule("2. Dagster (webserver + daemon with the new-uploads sensor)")
    services.start(
        services.dagster_service(dagster_port, REPO_ROOT / "workspace.yaml"), run_dir, env
    )
    client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_port)

    console.rule("3. ingest")
    report = _ingest(settings, corpus, corpus / "labels.csv")
    console.print(f"{len(report.added)} added, {len(report.duplicates)} already there")
    ids = [document.id for document in report.added + report.duplicates]

    console.rule("4. sensor-launched OCR runs")
    _wait_for_documents(settings, ids, timeout)

    console.rule("5. training_snapshot_sensor: snapshot, train, register, deploy")
    _wait_for_run(client, _training_run(Path(env["DAGSTER_HOME"]), started, client), timeout)

    console.rule("6. predictions with the deployed model")
    for day in _days_needing_predictions(settings, ids):
        run_id = client.submit_job_execution(
            "score_documents_job", tags={"dagster/partition": day.isoformat()}
        )
        _wait_for_run(client, run_id, timeout)

    console.rule("7. API")
    services.start(services.api_service(api_port), run_dir, env)
    _print_summary(settings, ids, dagster_port, api_port)


def _prepare_dagster_home(environment: MutableMapping[str, str], home: Path) -> Path:
    """DAGSTER_HOME as ``environment`` sets it, else under the Docflow home, with the
    repository's instance configuration when it has none of its own."""
    dagster_home = Path(environment.setdefault("DAGSTER_HOME", str(home / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():
        instance_config.write_text((REPO_ROOT / "dagster.yaml").read_text())
    return dagster_home


@main.command()
def stop() -> None:
    """Stop the Dagster and API processes that ``docflow demo`` started."""
    from docflow_assets import services

    stopped = services.stop_all(DocflowSettings().resolved_home / "run")
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


def _poll(what: str, total: int, done: Callable[[], int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with Progress(console=console) as progress:
        task = progress.add_task(what, total=total)
        while (finished := done()) < total:
            progress.update(task, completed=finished)
            if time.monotonic() > deadline:
                raise click.ClickException(f"timed out waiting for {what}")
            time.sleep(2)
        progress.update(task, completed=total)


def _wait_for_documents(settings: DocflowSettings, ids: list[int], timeout: float) -> None:
    from sqlalchemy import func, select

    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document, DocumentStatus

    def finished() -> int:
        with session_scope(settings.resolved_database_url) as session:
            return int(
                session.scalar(
                    select(func.count()).where(
                        Document.id.in_(ids), Document.status != DocumentStatus.UPLOADED
                    )
                )
                or 0
            )

    _poll("documents processed by sensor runs", len(ids), finished, timeout)


def _training_run(dagster_home: Path, since: datetime, client) -> str:
    """The run training_snapshot_sensor launched for the demo's labels; on a home whose labels
    are already learned the sensor has nothing to do, so the demo asks for one by hand."""
    from dagster import DagsterInstance, RunsFilter

    from docflow_assets.defs.partitions import PARTITION_TAG, TRAINING_SNAPSHOTS
    from docflow_assets.ml.training_set import snapshot_partition_key

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        deadline = time.monotonic() + SENSOR_GRACE_SECONDS
        with console.status("waiting for training_snapshot_sensor"):
            while time.monotonic() < deadline:
                runs = instance.get_runs(
                    RunsFilter(job_name="train_model_job", created_after=since), limit=1
                )
                if runs:
                    return runs[0].run_id
                time.sleep(3)
        partition = snapshot_partition_key(datetime.now(UTC))
        instance.add_dynamic_partitions(TRAINING_SNAPSHOTS, [partition])
    console.print("the sensor found nothing new to learn; training by hand")
    return client.submit_job_execution("train_model_job", tags={PARTITION_TAG: partition})


def _wait_for_run(client, run_id: str, timeout: float) -> None:
    from dagster import DagsterRunStatus

    deadline = time.monotonic() + timeout
    with console.status(f"run {run_id}"):
        while (status := client.get_run_status(run_id)) not in {
            DagsterRunStatus.SUCCESS,
            DagsterRunStatus.FAILURE,
            DagsterRunStatus.CANCELED,
        }:
            if time.monotonic() > deadline:
                raise click.ClickException(f"run {run_id} did not finish in {timeout:.0f}s")
            time.sleep(2)
    if status != DagsterRunStatus.SUCCESS:
        raise click.ClickException(f"run {run_id} ended {status.value}; see the Dagster UI")
    console.print(f"run {run_id}: {status.value}")


def _days_needing_predictions(settings: DocflowSettings, ids: list[int]) -> list[date]:
    from sqlalchemy import select

    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document, DocumentStatus

    with session_scope(settings.resolved_database_url) as session:
        return list(
            session.scalars(
                select(Document.upload_date)
                .where(Document.id.in_(ids), Document.status == DocumentStatus.OCR_DONE)
                .distinct()
            )
        )


def _print_summary(
    settings: DocflowSettings, ids: list[int], dagster_port: int, api_port: int
) -> None:
    from sqlalchemy import func, select

    from docflow_assets.store.database import session_scope
    from docflow_assets.store.models import Document, ModelMetric, Prediction

    with session_scope(settings.resolved_database_url) as session:
        latest = session.scalar(select(func.max(ModelMetric.id)))
        version = session.scalar(select(ModelMetric.model_version).where(ModelMetric.id == latest))
        metrics = dict(
            session.execute(
                select(ModelMetric.metric, ModelMetric.value).where(
                    ModelMetric.model_version == version
                )
            ).all()
        )
        statuses = dict(
            session.execute(
                select(Document.status, func.count())
                .where(Document.id.in_(ids))
                .group_by(Document.status)
            ).all()
        )
        predicted = session.scalar(
            select(func.count(func.distinct(Prediction.document_id))).where(
                Prediction.document_id.in_(ids)
            )
        )
    table = Table(title=f"Docflow demo: model {settings.model_name} v{version}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("documents", str(len(ids)))
    for status, count in sorted(statuses.items()):
        table.add_row(f"  status {status}", str(count))
    table.add_row("documents with predictions", str(predicted))
    for name in ("accuracy", "macro_f1", "baseline_accuracy", "baseline_macro_f1"):
        if name in metrics:
            table.add_row(f"cross-validated {name}", f"{metrics[name]:.3f}")
    console.print(table)
    console.print(f"Dagster UI: http://127.0.0.1:{dagster_port}")
    console.print(f"API:        http://127.0.0.1:{api_port}  (docs: /schema)")
    console.print("Stop both with: make stop")


@main.command()
def train() -> None:
    """Snapshot today's labels, train, and deploy if the gate passes; print the verdict.

    Adds a training snapshot partition and runs train_model_job for it in this process against
    the home's Dagster instance, so the run, the partition and its checks show in the Dagster
    UI. Exit code 1 when the gate refused the model.
    """
    from dagster import DagsterInstance

    from docflow_assets.definitions import defs
    from docflow_assets.defs.partitions import TRAINING_SNAPSHOTS
    from docflow_assets.ml.training_set import snapshot_partition_key

    settings = DocflowSettings()
    dagster_home = _prepare_dagster_home(os.environ, settings.resolved_home)
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


@model.command("info")
def model_info() -> None:
    """Show which version the serving alias points at."""
    from docflow_assets.ml.registry import PREVIOUS_ALIAS_SUFFIX

    settings = DocflowSettings()
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
    """Point the serving alias back at the previous (or a given) version."""
    settings = DocflowSettings()
    try:
        left, served = _registry(settings).rollback(settings.model_alias, to_version)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    console.print(f"{settings.model_name}@{settings.model_alias}: version {left} -> {served}")
