"""The learning loop: training set snapshot, trained classifier, deployed registry alias."""

from datetime import timedelta

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AutomationCondition,
    Config,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    Output,
    ResourceParam,
    asset,
    asset_check,
)
from dagster_mlflow.resources import MlFlow

from docflow_assets.defs.documents import ocr_text
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.ml.gate import (
    GateResult,
    GateThresholds,
    baseline_check,
    deployed_check,
    floor_check,
)
from docflow_assets.ml.training import TrainingConfig, evaluate, train_classifier
from docflow_assets.ml.training_set import current_snapshot, new_labels, save_snapshot
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import ModelMetric
from docflow_assets.store.repository import document_texts, labelled_documents

MIN_DOCUMENTS_PER_CLASS = 3
MAX_CLASS_IMBALANCE = 10.0
MIN_VOCABULARY = 200


class TrainingSetConfig(Config):
    """``min_new_labels`` unset: DOCFLOW_RETRAIN_MIN_NEW_LABELS."""

    min_new_labels: int | None = None
    force: bool = False


@asset(
    group_name="model",
    deps=[ocr_text],
    kinds={"parquet"},
    output_required=False,
    automation_condition=AutomationCondition.on_cron("*/10 * * * *"),
    description=(
        "All labelled documents' OCR text with labels, as a hashed parquet snapshot. A new "
        "snapshot is published only when enough labels are new, which is what retrains."
    ),
)
def training_set(
    context: AssetExecutionContext, config: TrainingSetConfig, docflow: DocflowResource
):  # type: ignore[no-untyped-def]
    settings = docflow.settings()
    with session_scope(docflow.database) as session:
        documents = labelled_documents(session)
        texts = document_texts(
            session, [document.id for document in documents], prefer=settings.ocr_mode
        )
        frame = pd.DataFrame(
            {
                "document_id": [document.id for document in documents],
                "label": [document.label for document in documents],
                "text": [texts.get(document.id, "") for document in documents],
            }
        )
    store = docflow.store()
    previous = current_snapshot(store)
    fresh = new_labels(previous[1] if previous else None, frame)
    needed = config.min_new_labels or settings.retrain_min_new_labels
    if previous is not None and fresh < needed and not config.force:
        context.log.info(f"{fresh} new labels since the last snapshot; {needed} make a new one")
        return
    snapshot = save_snapshot(store, frame)
    counts = frame["label"].value_counts().to_dict() if len(frame) else {}
    yield Output(
        None,
        metadata={
            "rows": snapshot.rows,
            "new_labels": fresh,
            "classes": len(counts),
            "per_class": {str(k): int(v) for k, v in counts.items()},
            "sha256": snapshot.sha256,
            "object_key": snapshot.key,
        },
    )


def _snapshot_counts(docflow: DocflowResource) -> dict[str, int]:
    found = current_snapshot(docflow.store())
    return found[1]["label"].value_counts().to_dict() if found else {}


@asset_check(asset=training_set, blocking=True, description="Every class has enough examples.")
def examples_per_class(docflow: DocflowResource) -> AssetCheckResult:
    counts = _snapshot_counts(docflow)
    smallest = min(counts.values(), default=0)
    return AssetCheckResult(
        passed=len(counts) >= 2 and smallest >= MIN_DOCUMENTS_PER_CLASS,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "classes": len(counts),
            "smallest_class": smallest,
            "minimum": MIN_DOCUMENTS_PER_CLASS,
        },
    )


@asset_check(asset=training_set, description="No class outnumbers another more than tenfold.")
def label_balance(docflow: DocflowResource) -> AssetCheckResult:
    counts = _snapshot_counts(docflow)
    smallest = min(counts.values(), default=0)
    imbalance = max(counts.values(), default=0) / smallest if smallest else float("inf")
    return AssetCheckResult(
        passed=imbalance <= MAX_CLASS_IMBALANCE,
        severity=AssetCheckSeverity.WARN,
        metadata={"largest_to_smallest": imbalance, "limit": MAX_CLASS_IMBALANCE},
    )


training_set_checks = [examples_per_class, label_balance]


class ClassifierConfig(Config):
    min_macro_f1: float = 0.6
    max_regression: float = 0.0
    baseline_margin: float = 0.05
    max_epochs: int = 60
    hidden: int = 256
    seed: int = 7


def _gate_result(gate: GateResult, version: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=gate.name,
        passed=gate.passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            **{k: v for k, v in gate.detail.items() if v is not None},
            "model_version": version,
        },
    )


def classifier_freshness(settings: DocflowSettings) -> FreshnessPolicy:
    return FreshnessPolicy.time_window(fail_window=timedelta(days=settings.model_max_age_days))


@asset(
    group_name="model",
    deps=[training_set],
    kinds={"pytorch", "mlflow"},
    freshness_policy=classifier_freshness(DocflowSettings()),
    automation_condition=(
        (
            AutomationCondition.any_deps_updated()
            | AutomationCondition.freshness_failed()
            | AutomationCondition.missing()
        ).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ),
    description="TF-IDF + PyTorch classifier; each materialisation is a registry version.",
    check_specs=[
        AssetCheckSpec(name, asset="document_classifier", blocking=True)
        for name in ("macro_f1_above_floor", "not_worse_than_deployed", "beats_baseline")
    ]
    + [AssetCheckSpec("vocabulary_size", asset="document_classifier")],
)
def document_classifier(
    context: AssetExecutionContext,
    config: ClassifierConfig,
    docflow: DocflowResource,
    mlflow: ResourceParam[MlFlow],
) -> MaterializeResult:
    """Trains inside the MLflow run that dagster-mlflow opened for this Dagster run."""
    settings = docflow.settings()
    active = mlflow.active_run()
    context.log.info(f"MLflow run {active.info.run_id if active else '(new)'}")
    found = current_snapshot(docflow.store())
    if found is None:
        raise RuntimeError("no training set snapshot yet; materialise training_set first")
    snapshot, frame = found
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    result = train_classifier(
        texts,
        labels,
        TrainingConfig(max_epochs=config.max_epochs, hidden=config.hidden, seed=config.seed),
    )
    registry = docflow.registry()
    deployed = registry.load_alias(settings.model_alias)
    deployed_f1 = None
    if deployed is not None:
        test_texts = [texts[i] for i in result.test_indices]
        predicted = [s.predicted_class for s in deployed.classifier.score_texts(test_texts)]
        test_labels = [labels[i] for i in result.test_indices]
        deployed_f1 = evaluate(result.classifier.classes, test_labels, predicted).macro_f1
    registered = registry.log_training(
        result, snapshot.sha256, {"training_rows": snapshot.rows, "dagster_run_id": context.run_id}
    )
    thresholds = GateThresholds(config.min_macro_f1, config.max_regression, config.baseline_margin)
    gates = [
        floor_check(result.test.macro_f1, thresholds),
        deployed_check(
            result.test.macro_f1, deployed_f1, deployed.version if deployed else None, thresholds
        ),
        baseline_check(result.test.macro_f1, result.baseline_test.macro_f1, thresholds),
    ]
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
    vocabulary = result.classifier.vectorizer.n_features
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
            "deployed_version": deployed.version if deployed else "none",
            "deployed_test_macro_f1": deployed_f1 if deployed_f1 is not None else -1.0,
            "train_seconds": round(result.seconds, 2),
            "baseline_train_seconds": round(result.baseline_seconds, 2),
            "epochs": len(result.history),
            "vocabulary": vocabulary,
            "split_sizes": result.split_sizes,
            "classes": MetadataValue.json(result.classifier.classes),
        },
        check_results=[_gate_result(gate, registered.version) for gate in gates]
        + [
            AssetCheckResult(
                check_name="vocabulary_size",
                passed=vocabulary >= MIN_VOCABULARY,
                severity=AssetCheckSeverity.WARN,
                metadata={"features": vocabulary, "minimum": MIN_VOCABULARY},
            )
        ],
    )


@asset(
    group_name="model",
    deps=[document_classifier],
    kinds={"mlflow"},
    automation_condition=(
        AutomationCondition.any_deps_updated().since_last_handled()
        & AutomationCondition.all_deps_blocking_checks_passed()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ),
    description="The registry alias the API serves; moved only after the blocking checks pass.",
)
def deployed_model(context: AssetExecutionContext, docflow: DocflowResource) -> MaterializeResult:
    settings = docflow.settings()
    registry = docflow.registry()
    event = context.instance.get_latest_materialization_event(document_classifier.key)
    if event is None or event.asset_materialization is None:
        raise RuntimeError("document_classifier has never been materialised")
    version = str(event.asset_materialization.metadata["model_version"].value)
    previous = registry.deploy(settings.model_alias, version)
    context.log.info(f"{settings.model_alias} moved from version {previous} to {version}")
    return MaterializeResult(
        metadata={
            "model_name": settings.model_name,
            "alias": settings.model_alias,
            "model_version": version,
            "previous_version": str(previous),
        }
    )
