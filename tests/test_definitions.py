"""The code location loads, and the demo corpus generator is deterministic and complete."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner
from dagster import Definitions

from docflow_assets.cli import main
from docflow_assets.definitions import defs
from docflow_assets.demo.content import DOCUMENT_CLASSES


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
    for command in (["info"], ["model", "info"], ["model", "rollback"]):
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


def test_every_command_summary_is_shown_whole() -> None:
    for group in ([], ["model"]):
        listing = CliRunner().invoke(main, [*group, "--help"]).output.split("Commands:")[1]
        assert "..." not in listing, listing  # Click cuts summaries that do not fit
