"""The learning loop: training set snapshot, trained classifier, deployed registry alias."""

from datetime import timedelta
from typing import Any, cast

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

from docflow_assets.defs.documents import ocr_text, retry_through_outages
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.ml.gate import (
    GateResult,
    GateThresholds,
    baseline_check,
    deployed_check,
    floor_check,
    majority_check,
)
from docflow_assets.ml.training import TrainingConfig, evaluate, train_classifier
from docflow_assets.ml.training_set import (
    current_snapshot,
    new_classes,
    new_labels,
    save_snapshot,
    snapshot_by_hash,
)
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import ModelMetric
from docflow_assets.store.repository import (
    document_texts,
    labelled_documents,
    labelled_documents_in_processing,
)

MIN_DOCUMENTS_PER_CLASS = 3
MAX_CLASS_IMBALANCE = 10.0
MIN_VOCABULARY = 200


class TrainingSetConfig(Config):
    """``force``: snapshot the current labels whatever changed (manual training always does;
    the automation does not). ``min_new_labels`` unset: DOCFLOW_RETRAIN_MIN_NEW_LABELS."""

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
):
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
        in_processing = labelled_documents_in_processing(session)
    store = docflow.store()
    previous = current_snapshot(store)
    before = previous[1] if previous else None
    fresh = new_labels(before, frame)
    unknown = new_classes(before, frame)
    needed = config.min_new_labels or settings.retrain_min_new_labels
    if not config.force:
        if in_processing:
            context.log.info(f"{in_processing} labelled documents are still in OCR; waiting")
            return
        if previous is not None and fresh < needed and not unknown:
            context.log.info(f"{fresh} new labels since the last snapshot; {needed} make one")
            return
    snapshot = save_snapshot(store, frame)
    counts = frame["label"].value_counts().to_dict() if len(frame) else {}
    yield Output(
        None,
        metadata={
            "rows": snapshot.rows,
            "dagster/row_count": snapshot.rows,
            "new_labels": fresh,
            "new_classes": MetadataValue.json(sorted(unknown)),
            "labelled_documents_still_in_ocr": in_processing,
            "forced": config.force,
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
    """``min_macro_f1`` unset: DOCFLOW_MODEL_MIN_MACRO_F1 (itself unset by default: no floor)."""

    min_macro_f1: float | None = None
    baseline_margin: float = 0.0
    majority_margin: float = 0.1
    max_regression: float = 0.0
    max_epochs: int = 60
    folds: int = 5
    seed: int = 7


def _gate_result(gate: GateResult, version: str) -> AssetCheckResult:
    return AssetCheckResult(
        check_name=gate.name,
        passed=gate.passed,
        severity=AssetCheckSeverity.ERROR,
        description=gate.reason,
        metadata={
            **{k: v for k, v in gate.detail.items() if v is not None},
            "reason": gate.reason,
            "model_version": version,
        },
    )


GATE_CHECKS = (
    "macro_f1_above_floor",
    "beats_baseline",
    "beats_majority_class",
    "not_worse_than_deployed",
)


def classifier_freshness(settings: DocflowSettings) -> FreshnessPolicy:
    return FreshnessPolicy.time_window(fail_window=timedelta(days=settings.model_max_age_days))


@asset(
    group_name="model",
    deps=[training_set],
    kinds={"pytorch", "mlflow"},
    freshness_policy=classifier_freshness(DocflowSettings()),
    automation_condition=(
        cast(
            AutomationCondition,
            AutomationCondition.any_deps_updated()
            | AutomationCondition.freshness_failed()
            | AutomationCondition.missing(),
        ).since_last_handled()
        & ~AutomationCondition.any_deps_missing()
        & ~AutomationCondition.any_deps_in_progress()
        & ~AutomationCondition.in_progress()
    ),
    description=(
        "TF-IDF + PyTorch classifier: the head (linear or MLP, regularisation) chosen by "
        "cross-validation on the snapshot, confidences calibrated, trained on every labelled "
        "document; each materialisation is a registry version, gated relative to its baseline."
    ),
    check_specs=[
        AssetCheckSpec(name, asset="document_classifier", blocking=True) for name in GATE_CHECKS
    ]
    + [AssetCheckSpec("vocabulary_size", asset="document_classifier")],
)
@retry_through_outages
def document_classifier(
    context: AssetExecutionContext,
    config: ClassifierConfig,
    docflow: DocflowResource,
    mlflow: ResourceParam[MlFlow],
) -> MaterializeResult:
    """Trains inside the MLflow run that dagster-mlflow opened for this Dagster run."""
    settings = docflow.settings()
    # dagster-mlflow's resource forwards to the mlflow module, whose run it has opened.
    active = cast(Any, mlflow).active_run()
    context.log.info(f"MLflow run {active.info.run_id if active else '(new)'}")
    found = current_snapshot(docflow.store())
    if found is None:
        raise RuntimeError("no training set snapshot yet; materialise training_set first")
    snapshot, frame = found
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    result = train_classifier(
        texts,
        labels,
        TrainingConfig(max_epochs=config.max_epochs, folds=config.folds, seed=config.seed),
    )
    registry = docflow.registry()
    deployed = registry.load_alias(settings.model_alias)
    unseen: list[int] = []
    candidate_f1 = deployed_f1 = None
    if deployed is not None:
        trained_on = registry.training_set_hash(deployed.run_id)
        seen_frame = snapshot_by_hash(docflow.store(), trained_on) if trained_on else None
        if seen_frame is not None:
            seen = set(zip(seen_frame["document_id"], seen_frame["label"], strict=True))
            pairs = zip(frame["document_id"], labels, strict=True)
            unseen = [
                index
                for index, pair in enumerate(pairs)
                if pair not in seen and index in result.predicted
            ]
        if unseen:
            truth = [labels[i] for i in unseen]
            classes = result.classifier.classes
            served = deployed.classifier.score_texts([texts[i] for i in unseen])
            deployed_f1 = evaluate(classes, truth, [s.predicted_class for s in served]).macro_f1
            candidate_f1 = evaluate(classes, truth, [result.predicted[i] for i in unseen]).macro_f1
    registered = registry.log_training(
        result, snapshot.sha256, {"training_rows": snapshot.rows, "dagster_run_id": context.run_id}
    )
    thresholds = GateThresholds(
        config.min_macro_f1 if config.min_macro_f1 is not None else settings.model_min_macro_f1,
        config.baseline_margin,
        config.majority_margin,
        config.max_regression,
    )
    gates = [
        floor_check(result.test.macro_f1, thresholds),
        baseline_check(
            result.test.macro_f1,
            result.baseline_test.macro_f1,
            result.fold_scores[str(result.classifier.hyperparameters["head"])],
            result.fold_scores["baseline"],
            thresholds,
        ),
        majority_check(result.test.accuracy, result.majority_rate, thresholds),
        deployed_check(
            candidate_f1,
            deployed_f1,
            deployed.version if deployed else None,
            len(unseen),
            thresholds,
        ),
    ]
    refused = [gate for gate in gates if not gate.passed]
    registry.record_verdict(
        registered.version,
        not refused,
        "; ".join(f"{gate.name}: {gate.reason}" for gate in refused) or "every check passed",
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
    vocabulary = result.classifier.vectorizer.n_features
    return MaterializeResult(
        metadata={
            "model_name": registered.name,
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            "training_set_sha256": snapshot.sha256,
            "verdict": "deploy" if not refused else "refused",
            "head": str(result.classifier.hyperparameters["head"]),
            "head_cv_macro_f1": MetadataValue.json(
                {name: round(score, 4) for name, score in result.head_scores.items()}
            ),
            "temperature": float(result.classifier.hyperparameters["temperature"]),
            "cv_folds": int(result.split_sizes["folds"]),
            "cross_validated_documents": int(result.split_sizes["cross_validated"]),
            "test_accuracy": result.test.accuracy,
            "test_macro_f1": result.test.macro_f1,
            "baseline_test_accuracy": result.baseline_test.accuracy,
            "baseline_test_macro_f1": result.baseline_test.macro_f1,
            "majority_rate": result.majority_rate,
            "deployed_version": deployed.version if deployed else "none",
            "documents_new_to_deployed": len(unseen),
            **({"deployed_unseen_macro_f1": deployed_f1} if deployed_f1 is not None else {}),
            "train_seconds": round(result.seconds, 2),
            "baseline_train_seconds": round(result.baseline_seconds, 2),
            "epochs": len(result.history),
            "vocabulary": vocabulary,
            "dagster/row_count": snapshot.rows,
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
