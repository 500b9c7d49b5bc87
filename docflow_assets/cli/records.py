"""Commands on the home's documents: schema, ingest, predict, label, delete, export, info."""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import click
from rich.table import Table

from docflow_assets.cli.app import console, home_registry, main, settings_of_existing_home
from docflow_assets.settings import DocflowSettings


@main.command()
def migrate() -> None:
    """Create or upgrade the application database schema."""
    from docflow_assets.store.database import migrate as run_migrations

    settings = DocflowSettings()
    run_migrations(settings.resolved_database_url)
    console.print(f"database at {settings.resolved_database_url} is up to date")
    # Creating MLflow's tables from two run processes at once races; create them here, once.
    home_registry(settings).experiment_id()
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

    settings = settings_of_existing_home()
    registry = home_registry(settings)
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

    settings = settings_of_existing_home()
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

    settings = settings_of_existing_home()
    try:
        document = DocumentService.from_settings(settings).label(document_id, label, "cli")
    except (DocumentNotFound, InvalidRequest) as error:
        raise click.ClickException(str(error)) from error
    console.print(f"document {document.id} ({document.filename}): {document.label}")


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
    from docflow_assets.exports.tables import TableFormat
    from docflow_assets.store.repository import PredictionFilter

    settings = settings_of_existing_home()
    chosen = file_format or out_file.suffix.lstrip(".").lower()
    if chosen not in {"csv", "parquet"}:
        raise click.UsageError(f"cannot tell the format from {out_file.name}: pass --format")
    where = PredictionFilter(predicted_class, source, model_version, max_confidence)
    service = DocumentService.from_settings(settings)
    with out_file.open("wb") as sink:
        rows = service.export_predictions(where, cast(TableFormat, chosen), sink)
    console.print(f"{rows} predictions written to {out_file}")


@main.command()
def info() -> None:
    """Show which Docflow home and stores this shell uses.

    From DOCFLOW_* and DAGSTER_HOME; nothing is created."""
    settings = settings_of_existing_home()
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
