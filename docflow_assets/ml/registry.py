"""MLflow tracking and registry: log a trained classifier, move the serving alias, load it back."""

from __future__ import annotations

import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from docflow_assets.settings import DocflowSettings

if TYPE_CHECKING:
    from docflow_assets.ml.classifier import LoadedModel
    from docflow_assets.ml.training import TrainingResult

EXPERIMENT_NAME = "docflow-document-classifier"
PREVIOUS_ALIAS_SUFFIX = "-previous"
GATE_TAG = "docflow.gate"
GATE_REASON_TAG = "docflow.gate_reason"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
PYFUNC_CODE = Path(__file__).with_name("pyfunc_model.py")
SERVING_REQUIREMENTS = [
    "mlflow>=3.17,<4",
    "torch==2.14.1",
    "scikit-learn>=1.5",
    "safetensors>=0.4",
    "pandas>=2.2,<3",
    "scipy>=1.13",
]
PYFUNC_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text")]),
    outputs=Schema([ColSpec("string", "predicted_class"), ColSpec("double", "confidence")]),
)


@dataclass(frozen=True)
class TrainingSummary:
    """How a registered version was trained, from its MLflow run."""

    trained_at: datetime
    training_snapshot: str | None
    head: str | None
    cv_macro_f1: float | None
    baseline_cv_macro_f1: float | None


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: str
    run_id: str


class Registry:
    def __init__(self, tracking_uri: str, artifact_location: str | None, model_name: str) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_location = artifact_location
        self.model_name = model_name

    @classmethod
    def from_settings(cls, settings: DocflowSettings) -> Registry:
        return cls(
            settings.resolved_mlflow_tracking_uri,
            settings.mlflow_artifact_location,
            settings.model_name,
        )

    @cached_property
    def client(self) -> MlflowClient:
        # On first use: opening a SQLite tracking store creates or migrates its tables.
        database = self.tracking_uri.removeprefix("sqlite:///")
        if database != self.tracking_uri and self.artifact_location and not Path(database).exists():
            # MLflow makes its `Default` experiment with the tables, artefacts in ./mlruns of
            # whatever folder the first process ran in; made here first, they go to the home.
            from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

            SqlAlchemyStore(self.tracking_uri, self.artifact_location)
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _ui(self) -> str | None:
        """The MLflow UI's address, when the tracking store is a server."""
        uri = self.tracking_uri
        return uri.rstrip("/") if uri.startswith(("http://", "https://")) else None

    def run_url(self, run_id: str) -> str | None:
        """Where the MLflow UI shows a run, when the tracking store is a server."""
        ui = self._ui()
        return None if ui is None else f"{ui}/#/experiments/{self.experiment_id()}/runs/{run_id}"

    def version_url(self, version: str) -> str | None:
        """Where the MLflow UI shows a registered version, when the tracking store is a server."""
        ui = self._ui()
        return None if ui is None else f"{ui}/#/models/{self.model_name}/versions/{version}"

    def experiment_id(self) -> str:
        experiment = self.client.get_experiment_by_name(EXPERIMENT_NAME)
        if experiment is not None:
            return str(experiment.experiment_id)
        return str(
            self.client.create_experiment(EXPERIMENT_NAME, artifact_location=self.artifact_location)
        )

    def log_training(
        self, result: TrainingResult, training_set_hash: str, params: dict[str, Any]
    ) -> RegisteredModel:
        """Log to the active MLflow run (or a new one) and end it: we own its lifetime.

        Parameters, per-epoch curves, per-class metrics, confusion matrix, training-set hash and
        the model, registered as a new version.
        """
        self._activate()
        active = mlflow.active_run()
        context = (
            nullcontext(active) if active else mlflow.start_run(experiment_id=self.experiment_id())
        )
        with context as run:
            mlflow.set_tag("training_set_hash", training_set_hash)
            mlflow.log_params({**result.classifier.hyperparameters, **params})
            mlflow.log_params({f"n_{split}": size for split, size in result.split_sizes.items()})
            for row in result.history:
                step = int(row["epoch"])
                mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=step)
            mlflow.log_metrics(result.test.as_metrics("test"))
            mlflow.log_metrics(
                {
                    "baseline_test_accuracy": result.baseline_test.accuracy,
                    "baseline_test_macro_f1": result.baseline_test.macro_f1,
                    "train_seconds": result.seconds,
                    "baseline_train_seconds": result.baseline_seconds,
                    # Every candidate's cross-validated figure, the winner's among them.
                    **{f"cv_macro_f1.{name}": score for name, score in result.head_scores.items()},
                }
            )
            if result.dropped_heads:
                mlflow.log_dict(result.dropped_heads, "heads_dropped.json")
            mlflow.log_figure(
                confusion_figure(result.classifier.classes, result.test.confusion),
                "confusion_matrix.png",
            )
            with tempfile.TemporaryDirectory() as folder:
                bundle = Path(folder) / "bundle"
                result.classifier.save(bundle)
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(PYFUNC_CODE),
                    artifacts={"bundle": str(bundle)},
                    code_paths=[str(PACKAGE_DIR)],
                    pip_requirements=SERVING_REQUIREMENTS,
                    registered_model_name=self.model_name,
                    signature=PYFUNC_SIGNATURE,
                    input_example=pd.DataFrame({"text": ["INVOICE No 12 Total Due 40.00"]}),
                )
            version = str(info.registered_model_version)
        if active:
            mlflow.end_run()
        return RegisteredModel(self.model_name, version, run.info.run_id)

    def _activate(self) -> None:
        # MLflow's fluent API (runs, models:/ URIs) reads process-wide URIs, not the client's.
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def deploy(self, alias: str, version: str) -> str | None:
        """Point ``alias`` at ``version``; the version it left stays one rollback away."""
        previous = self.version_for_alias(alias)
        if previous is not None and previous != version:
            self.set_alias(alias + PREVIOUS_ALIAS_SUFFIX, previous)
        self.set_alias(alias, version)
        return previous

    def rollback(self, alias: str, to_version: str | None = None) -> tuple[str | None, str]:
        """Serve ``to_version``, or the version served before the current one.

        Returns (version left, version now served).
        """
        target = to_version or self.version_for_alias(alias + PREVIOUS_ALIAS_SUFFIX)
        if target is None:
            raise ValueError(f"{self.model_name} has no earlier version behind '{alias}'")
        self.client.get_model_version(self.model_name, target)
        return self.deploy(alias, target), target

    def version_for_alias(self, alias: str) -> str | None:
        try:
            return str(self.client.get_model_version_by_alias(self.model_name, alias).version)
        except MlflowException:
            return None

    def load(self, version: str) -> LoadedModel:
        model_version = self.client.get_model_version(self.model_name, version)
        self._activate()
        with tempfile.TemporaryDirectory() as folder:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=f"models:/{self.model_name}/{version}",
                    dst_path=folder,
                    tracking_uri=self.tracking_uri,
                )
            )
            # torch is imported by the processes that load a model, not by every one that
            # imports the registry (each Dagster run process would pay ~2 s for it).
            from docflow_assets.ml.classifier import MANIFEST_FILE, DocumentClassifier, LoadedModel

            manifest = next(local.rglob(MANIFEST_FILE))
            classifier = DocumentClassifier.load(manifest.parent)
        return LoadedModel(classifier, self.model_name, version, model_version.run_id)

    def load_alias(self, alias: str) -> LoadedModel | None:
        version = self.version_for_alias(alias)
        return None if version is None else self.load(version)

    def training_set_hash(self, run_id: str | None) -> str | None:
        """The snapshot a logged training run learned from."""
        if run_id is None:
            return None
        return self.client.get_run(run_id).data.tags.get("training_set_hash")

    def record_verdict(self, version: str, passed: bool, reason: str) -> None:
        """The deployment gate's verdict on a version, kept beside it in the registry."""
        self.client.set_model_version_tag(
            self.model_name, version, GATE_TAG, "passed" if passed else "refused"
        )
        self.client.set_model_version_tag(self.model_name, version, GATE_REASON_TAG, reason)

    def training_summary(self, run_id: str) -> TrainingSummary | None:
        try:
            run = self.client.get_run(run_id)
        except MlflowException:
            return None
        return TrainingSummary(
            datetime.fromtimestamp(run.info.start_time / 1000, UTC),
            run.data.params.get("training_snapshot"),
            run.data.params.get("head"),
            run.data.metrics.get("test_macro_f1"),
            run.data.metrics.get("baseline_test_macro_f1"),
        )

    def last_verdict(self) -> tuple[str, str, str] | None:
        """(version, verdict, reason) of the newest version the gate judged."""
        try:
            versions = self.client.search_model_versions(f"name='{self.model_name}'")
        except MlflowException:
            return None
        judged = [v for v in versions if GATE_TAG in v.tags]
        if not judged:
            return None
        newest = max(judged, key=lambda v: int(v.version))
        return str(newest.version), newest.tags[GATE_TAG], newest.tags.get(GATE_REASON_TAG, "")


def confusion_figure(classes: list[str], confusion: list[list[int]]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(1 + 0.8 * len(classes), 1 + 0.8 * len(classes)))
    axes.imshow(confusion, cmap="Blues")
    axes.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axes.set_yticks(range(len(classes)), classes)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row, values in enumerate(confusion):
        for column, count in enumerate(values):
            axes.text(column, row, str(count), ha="center", va="center")
    figure.tight_layout()
    plt.close(figure)
    return figure
