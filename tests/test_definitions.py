"""The code location loads, and the demo corpus generator is deterministic and complete."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import Definitions
from sqlalchemy import select

from docflow_assets.cli import main
from docflow_assets.definitions import defs
from docflow_assets.defs.partitions import START_WHEN_UNREADABLE, partitions_start
from docflow_assets.demo.content import DOCUMENT_CLASSES
from docflow_assets.demo.render import render_document
from docflow_assets.ingest import ingest
from docflow_assets.ml.registry import Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import Document, Prediction
from docflow_assets.store.objects import open_object_store
from tests.helpers import page_png


def test_definitions_load_with_every_asset_job_and_sensor() -> None:
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "raw_documents",
        "ocr_text",
        "tfidf_features",
        "predictions",
        "training_set",
        "document_classifier",
        "deployed_model",
    }
    assert defs.resolve_sensor_def("new_uploads_sensor").job_name == "process_documents_job"
    assert defs.resolve_sensor_def("training_snapshot_sensor").job_name == "train_model_job"
    # Each trained model is a partition: one per training snapshot.
    by_snapshot = {
        key.to_user_string()
        for key in graph.get_all_asset_keys()
        if getattr(graph.get(key).partitions_def, "name", None) == "training_snapshots"
    }
    assert by_snapshot == {"training_set", "document_classifier"}
    assert all(graph.get(key).owners == ["team:docflow"] for key in graph.get_all_asset_keys())
    for job in ("process_documents_job", "score_documents_job", "train_model_job"):
        assert defs.resolve_job_def(job) is not None


def test_demo_data_command_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    for folder in ("a", "b"):
        result = runner.invoke(
            main, ["demo-data", "--out", str(tmp_path / folder), "--per-class", "2", "--seed", "5"]
        )
        assert result.exit_code == 0, result.output
    first = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert first == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in first:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    with (tmp_path / "a" / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(DOCUMENT_CLASSES) >= 8
    assert sorted({row["label"] for row in rows}) == sorted(DOCUMENT_CLASSES)
    assert len(rows) == 2 * len(DOCUMENT_CLASSES)
    suffixes = {Path(row["filename"]).suffix for row in rows}
    assert {".png", ".jpg", ".pdf", ".tif"} <= suffixes
    for row in rows:
        truth = tmp_path / "a" / (Path(row["filename"]).stem + ".gt.txt")
        assert truth.read_text().strip()


def test_read_only_commands_say_which_home_and_never_create_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("DOCFLOW_HOME", "DOCFLOW_MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(variable, raising=False)
    runner = CliRunner()
    for command in (["info"], ["model", "info"], ["model", "rollback"], ["mlflow-ui"]):
        result = runner.invoke(main, command)
        assert result.exit_code == 1, command
        assert f"no Docflow home at {tmp_path / '.docflow'}" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing made where the command happened to run
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DOCFLOW_HOME", str(home))
    shown = runner.invoke(main, ["info"])
    assert shown.exit_code == 0 and f"home {home}" in shown.output
    assert "database" in shown.output and "in_process" in shown.output


def test_mlflow_keeps_every_experiment_s_artefacts_under_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = DocflowSettings(home=tmp_path / "home")
    registry = Registry.from_settings(settings)
    registry.experiment_id()
    locations = {e.name: e.artifact_location for e in registry.client.search_experiments()}
    home = (tmp_path / "home").as_uri()
    assert locations["Default"].startswith(home), locations
    assert all(location.startswith(home) for location in locations.values())
    assert list(elsewhere.iterdir()) == []  # no stray ./mlruns


def test_every_command_summary_is_shown_whole() -> None:
    for group in ([], ["model"]):
        listing = CliRunner().invoke(main, [*group, "--help"]).output.split("Commands:")[1]
        assert "..." not in listing, listing  # Click cuts summaries that do not fit


def test_predict_command_reads_and_classifies_files_with_the_served_model(
    home_copy: DocflowSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCFLOW_HOME", str(home_copy.resolved_home))
    monkeypatch.setenv("DOCFLOW_OCR_MODE", "tesseract")
    data, extension, _ = render_document("invoice", 7, seed=11)
    new = tmp_path / f"new-invoice.{extension}"
    new.write_bytes(data)
    with session_scope(home_copy.resolved_database_url) as session:
        stored = session.scalars(select(Document).where(Document.status == "predicted")).first()
        assert stored is not None
        stored_id, stored_name = stored.id, stored.filename
    again = tmp_path / stored_name
    again.write_bytes(
        open_object_store(home_copy.resolved_object_store).get_bytes(stored.storage_key)
    )

    result = CliRunner().invoke(main, ["predict", str(new), str(again)])
    assert result.exit_code == 0, result.output
    with session_scope(home_copy.resolved_database_url) as session:
        made = session.scalars(select(Prediction).where(Prediction.source == "cli")).all()
        new_id = session.scalar(select(Document.id).where(Document.filename == new.name))
    assert {prediction.document_id for prediction in made} == {new_id, stored_id}
    rows = [line for line in result.output.splitlines() if "new-invoice" in line]
    [new_prediction] = [p for p in made if p.document_id == new_id]
    assert new_prediction.predicted_class in rows[0]
    assert "yes" in rows[0]  # read now; the stored document kept its text

    bad = tmp_path / "notes.txt"
    bad.write_text("not a scan")
    refused = CliRunner().invoke(main, ["predict", str(bad)])
    assert refused.exit_code == 1
    assert "rejected" in refused.output and "notes.txt" in refused.output


def test_upload_days_start_at_the_first_upload_or_the_configured_day(
    settings: DocflowSettings,
) -> None:
    today = datetime.now(UTC).date()
    assert partitions_start(settings) == today
    assert not settings.home.exists()  # looking did not create the home

    ensure_schema(settings.resolved_database_url)
    assert partitions_start(settings) == today
    store = open_object_store(settings.resolved_object_store)
    first = ingest(io.BytesIO(page_png("first upload")), "a.png", settings, store).document.id
    with session_scope(settings.resolved_database_url) as session:
        document = session.get(Document, first)
        assert document is not None
        document.upload_date = date(2026, 3, 2)
    assert partitions_start(settings) == date(2026, 3, 2)

    pinned = settings.model_copy(update={"partitions_start": date(2025, 1, 1)})
    assert partitions_start(pinned) == date(2025, 1, 1)

    unreadable = DocflowSettings(database_url="postgresql://nobody@127.0.0.1:1/none")
    assert partitions_start(unreadable) == START_WHEN_UNREADABLE
