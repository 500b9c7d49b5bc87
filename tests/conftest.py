"""Shared fixtures: a rendered corpus and one trained, deployed Docflow home for the session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, ExecuteInProcessResult

os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")

from docflow_assets.demo.render import RenderedDocument, render_corpus
from docflow_assets.settings import DocflowSettings
from tests.servers import SeaweedS3

TRAIN_PER_CLASS = 6
HOLDOUT_PER_CLASS = 2
# Public scans with their licences, in the repository so a fresh clone needs no sibling folder.
REAL_SCANS = Path(__file__).resolve().parent / "data" / "real-scans"


@dataclass
class TrainedHome:
    settings: DocflowSettings
    training_ids: list[int]
    holdout: dict[int, str]  # document id -> true label, never shown to the model
    model_version: str
    materialisations: dict[str, dict[str, Any]]


def today_partition() -> str:
    return datetime.now(UTC).date().isoformat()


def new_training_snapshot(instance: DagsterInstance) -> str:
    """A fresh training-snapshot partition, as training_snapshot_sensor or `docflow train`
    adds one (suffixed: tests take several in a second)."""
    from docflow_assets.defs.partitions import TRAINING_SNAPSHOTS
    from docflow_assets.ml.training_set import snapshot_partition_key

    taken = instance.get_dynamic_partitions(TRAINING_SNAPSHOTS)
    partition = f"{snapshot_partition_key(datetime.now(UTC))}-{len(taken)}"
    instance.add_dynamic_partitions(TRAINING_SNAPSHOTS, [partition])
    return partition


def train_model(
    instance: DagsterInstance,
    resources: dict[str, object],
    assets: list | None = None,
    raise_on_error: bool = True,
) -> ExecuteInProcessResult:
    """Materialise the model group (or ``assets`` of it) for a new training snapshot."""
    from dagster import materialize

    from docflow_assets.defs.model import deployed_model, document_classifier, training_set

    return materialize(
        assets or [training_set, document_classifier, deployed_model],
        instance=instance,
        resources=resources,
        partition_key=new_training_snapshot(instance),
        raise_on_error=raise_on_error,
    )


@pytest.fixture(scope="session")
def real_scans() -> Path:
    return REAL_SCANS


@pytest.fixture(scope="session")
def training_corpus(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, list[RenderedDocument]]:
    folder = tmp_path_factory.mktemp("training-corpus")
    return folder, render_corpus(folder, TRAIN_PER_CLASS, seed=1)


@pytest.fixture(scope="session")
def holdout_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RenderedDocument]]:
    folder = tmp_path_factory.mktemp("holdout-corpus")
    return folder, render_corpus(folder, HOLDOUT_PER_CLASS, seed=2)


@pytest.fixture
def settings(tmp_path: Path) -> DocflowSettings:
    return DocflowSettings(home=tmp_path / "home")


@pytest.fixture(scope="session")
def trained_home(
    tmp_path_factory: pytest.TempPathFactory,
    training_corpus: tuple[Path, list[RenderedDocument]],
    holdout_corpus: tuple[Path, list[RenderedDocument]],
) -> TrainedHome:
    """Ingest, OCR, train and deploy through the real asset graph, then score a holdout."""
    from dagster import materialize

    from docflow_assets.defs.documents import (
        ocr_text,
        predictions,
        raw_documents,
        tfidf_features,
    )
    from docflow_assets.defs.resources import DocflowResource, mlflow_tracking_resource
    from docflow_assets.defs.sensors import batch_run_config
    from docflow_assets.ingest import read_labels

    home = tmp_path_factory.mktemp("trained-home")
    settings = DocflowSettings(home=home)
    resource = DocflowResource(home=str(home))
    folder, _ = training_corpus
    report = resource.service().ingest_folder(folder, read_labels(folder / "labels.csv"))
    assert not report.rejected
    training_ids = [document.id for document in report.added]
    partition = today_partition()
    materialisations: dict[str, dict[str, Any]] = {}
    document_assets = [raw_documents, ocr_text, tfidf_features, predictions]

    def record(result: ExecuteInProcessResult) -> None:
        assert result.success
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            materialisations[materialization.asset_key.to_user_string()] = {
                key: value.value for key, value in materialization.metadata.items()
            }

    def process(ids: list[int]) -> None:
        record(
            materialize(
                document_assets,
                resources={"docflow": resource},
                partition_key=partition,
                run_config=batch_run_config(ids),
            )
        )

    process(training_ids)
    # dagster-mlflow's resource opens an MLflow run: only the run that trains gets it.
    with DagsterInstance.ephemeral() as instance:
        record(train_model(instance, {"docflow": resource, "mlflow": mlflow_tracking_resource}))
    model_version = str(materialisations["deployed_model"]["model_version"])

    holdout_folder, rendered = holdout_corpus
    truth = {item.filename: item.label for item in rendered}
    holdout_report = resource.service().ingest_folder(holdout_folder)
    holdout = {document.id: truth[document.filename] for document in holdout_report.added}
    process(sorted(holdout))
    return TrainedHome(settings, training_ids, holdout, model_version, materialisations)


@pytest.fixture
def home_copy(trained_home: TrainedHome, tmp_path: Path) -> DocflowSettings:
    """A private copy of the trained home, for tests that change labels, rows or the registry."""
    import shutil

    copy = tmp_path / "home-copy"
    shutil.copytree(trained_home.settings.resolved_home, copy)
    return DocflowSettings(home=copy)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One SeaweedFS S3 server for the session's production tests (restartable by them)."""
    folder = tmp_path_factory.mktemp("seaweedfs")
    server = SeaweedS3(folder / "data", folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()
