"""The learning loop: training set snapshot, trained classifier, deployed registry alias."""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
)

from docflow_assets.defs.documents import ocr_text
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.ml.training import TrainingConfig, train_classifier
from docflow_assets.ml.training_set import load_current_snapshot, save_snapshot
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import ModelMetric
from docflow_assets.store.repository import document_texts, labelled_documents

MIN_DOCUMENTS_PER_CLASS = 3


@asset(
    group_name="model",
    deps=[ocr_text],
    kinds={"parquet"},
    description="All labelled documents' OCR text with labels, as a hashed parquet snapshot.",
    check_specs=[AssetCheckSpec("examples_per_class", asset="training_set")],
)
def training_set(docflow: DocflowResource) -> MaterializeResult:
    with session_scope(docflow.database) as session:
        documents = labelled_documents(session)
        texts = document_texts(session, [document.id for document in documents])
        frame = pd.DataFrame(
            {
                "document_id": [document.id for document in documents],
                "label": [document.label for document in documents],
                "text": [texts.get(document.id, "") for document in documents],
            }
        )
    snapshot = save_snapshot(docflow.store(), frame)
    counts = frame["label"].value_counts().to_dict() if len(frame) else {}
    smallest = min(counts.values(), default=0)
    return MaterializeResult(
        metadata={
            "rows": snapshot.rows,
            "classes": len(counts),
            "per_class": {str(k): int(v) for k, v in counts.items()},
            "sha256": snapshot.sha256,
            "object_key": snapshot.key,
        },
        check_results=[
            AssetCheckResult(
                check_name="examples_per_class",
                passed=len(counts) >= 2 and smallest >= MIN_DOCUMENTS_PER_CLASS,
                severity=AssetCheckSeverity.ERROR,
                metadata={"smallest_class": smallest, "minimum": MIN_DOCUMENTS_PER_CLASS},
            )
        ],
    )


class ClassifierConfig(Config):
    min_macro_f1: float = 0.6
    max_epochs: int = 60
    hidden: int = 256
    seed: int = 7


@asset(
    group_name="model",
    deps=[training_set],
    kinds={"pytorch", "mlflow"},
    description="TF-IDF + PyTorch classifier; each materialisation is a registry version.",
    check_specs=[
        AssetCheckSpec("macro_f1_above_floor", asset="document_classifier", blocking=True)
    ],
)
def document_classifier(
    context: AssetExecutionContext, config: ClassifierConfig, docflow: DocflowResource
) -> MaterializeResult:
    snapshot, frame = load_current_snapshot(docflow.store())
    result = train_classifier(
        frame["text"].tolist(),
        frame["label"].tolist(),
        TrainingConfig(max_epochs=config.max_epochs, hidden=config.hidden, seed=config.seed),
    )
    registry = docflow.registry()
    registered = registry.log_training(
        result, snapshot.sha256, {"training_rows": snapshot.rows, "dagster_run_id": context.run_id}
    )
    with session_scope(docflow.database) as session:
        for name, value in {
            "accuracy": result.test.accuracy,
            "macro_f1": result.test.macro_f1,
            "baseline_accuracy": result.baseline_test.accuracy,
            "baseline_macro_f1": result.baseline_test.macro_f1,
        }.items():
            session.add(
                ModelMetric(
                    model_name=registered.name,
                    model_version=registered.version,
                    split="test",
                    metric=name,
                    value=value,
                )
            )
    return MaterializeResult(
        metadata={
            "model_name": registered.name,
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "training_set_sha256": snapshot.sha256,
            "test_accuracy": result.test.accuracy,
            "test_macro_f1": result.test.macro_f1,
            "baseline_test_accuracy": result.baseline_test.accuracy,
            "baseline_test_macro_f1": result.baseline_test.macro_f1,
            "train_seconds": round(result.seconds, 2),
            "baseline_train_seconds": round(result.baseline_seconds, 2),
            "epochs": len(result.history),
            "split_sizes": result.split_sizes,
            "classes": MetadataValue.json(result.classifier.classes),
        },
        check_results=[
            AssetCheckResult(
                check_name="macro_f1_above_floor",
                passed=result.test.macro_f1 >= config.min_macro_f1,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "macro_f1": result.test.macro_f1,
                    "floor": config.min_macro_f1,
                    "model_version": registered.version,
                },
            )
        ],
    )


@asset(
    group_name="model",
    deps=[document_classifier],
    kinds={"mlflow"},
    description="The registry alias the API serves; moved only after the blocking checks pass.",
)
def deployed_model(context: AssetExecutionContext, docflow: DocflowResource) -> MaterializeResult:
    settings = docflow.settings()
    registry = docflow.registry()
    event = context.instance.get_latest_materialization_event(document_classifier.key)
    if event is None or event.asset_materialization is None:
        raise RuntimeError("document_classifier has never been materialised")
    version = str(event.asset_materialization.metadata["model_version"].value)
    previous = registry.version_for_alias(settings.model_alias)
    registry.set_alias(settings.model_alias, version)
    context.log.info(f"{settings.model_alias} moved from version {previous} to {version}")
    return MaterializeResult(
        metadata={
            "model_name": settings.model_name,
            "alias": settings.model_alias,
            "model_version": version,
            "previous_version": str(previous),
        }
    )
