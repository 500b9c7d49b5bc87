"""The learning loop: training set snapshot, trained classifier, deployed registry alias."""

from datetime import timedelta
from typing import Any, cast

from dagster import (
    AllPartitionMapping,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetRecordsFilter,
    Config,
    DataVersion,
    Failure,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    ResourceParam,
    asset,
)
from dagster_mlflow.resources import MlFlow

from docflow_assets.defs import OWNER
from docflow_assets.defs.documents import ocr_text, retry_through_outages
from docflow_assets.defs.partitions import PARTITION_TAG, training_snapshots
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.ml.gate import GateResult, GateThresholds
from docflow_assets.ml.promotion import compare_with_served, judge
from docflow_assets.settings import (
    MODEL_SEED,
    TRAINING_FOLDS,
    TRAINING_MAX_EPOCHS,
    DocflowSettings,
)

MIN_DOCUMENTS_PER_CLASS = 3
MAX_CLASS_IMBALANCE = 10.0
MIN_VOCABULARY = 200


@asset(
    group_name="model",
    owners=[OWNER],
    # A snapshot holds the labelled documents of every upload day.
    deps=[AssetDep(ocr_text, partition_mapping=AllPartitionMapping())],
    partitions_def=training_snapshots,
    kinds={"parquet"},
    description=(
        "The labelled documents' OCR text with their labels as of the partition's time, a "
        "parquet snapshot named by its content hash. One partition per training: "
        "training_snapshot_sensor adds them; `docflow train` (or a new partition in the "
        "launchpad) takes one by hand."
    ),
    check_specs=[
        AssetCheckSpec(
            "examples_per_class",
            asset="training_set",
            blocking=True,
            description=f"At least two classes, each with {MIN_DOCUMENTS_PER_CLASS} examples.",
        ),
        AssetCheckSpec(
            "label_balance",
            asset="training_set",
            description=f"No class outnumbers another more than {MAX_CLASS_IMBALANCE:.0f}-fold.",
        ),
    ],
)
@retry_through_outages
def training_set(context: AssetExecutionContext, docflow: DocflowResource) -> MaterializeResult:
    taken = docflow.service().take_snapshot(context.partition_key)
    snapshot, frame = taken.snapshot, taken.frame
    in_processing = taken.labelled_documents_still_in_ocr
    if in_processing:
        context.log.warning(f"{in_processing} labelled documents are still in OCR: not in it")
    counts = {str(k): int(v) for k, v in frame["label"].value_counts().items()}
    smallest = min(counts.values(), default=0)
    imbalance = max(counts.values(), default=0) / smallest if smallest else float("inf")
    return MaterializeResult(
        metadata={
            "dagster/row_count": snapshot.rows,
            "new_labels": taken.new_labels,
            "new_classes": MetadataValue.json(taken.new_classes),
            "labelled_documents_still_in_ocr": in_processing,
            "classes": len(counts),
            "per_class": counts,
            "sha256": snapshot.sha256,
            "object_key": snapshot.key,
        },
        check_results=[
            AssetCheckResult(
                check_name="examples_per_class",
                passed=len(counts) >= 2 and smallest >= MIN_DOCUMENTS_PER_CLASS,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "classes": len(counts),
                    "smallest_class": smallest,
                    "minimum": MIN_DOCUMENTS_PER_CLASS,
                },
            ),
            AssetCheckResult(
                check_name="label_balance",
                passed=imbalance <= MAX_CLASS_IMBALANCE,
                severity=AssetCheckSeverity.WARN,
                metadata={"largest_to_smallest": imbalance, "limit": MAX_CLASS_IMBALANCE},
            ),
        ],
    )


DEFAULT_GATE = GateThresholds()


class ClassifierConfig(Config):
    """``min_macro_f1`` unset: DOCFLOW_MODEL_MIN_MACRO_F1 (itself unset by default: no floor)."""

    min_macro_f1: float | None = None
    baseline_margin: float = DEFAULT_GATE.baseline_margin
    majority_margin: float = DEFAULT_GATE.majority_margin
    max_regression: float = DEFAULT_GATE.max_regression
    max_epochs: int = TRAINING_MAX_EPOCHS
    folds: int = TRAINING_FOLDS
    seed: int = MODEL_SEED


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


GATE_CHECKS = {
    "macro_f1_above_floor": "Cross-validated macro-F1 above DOCFLOW_MODEL_MIN_MACRO_F1 (if set).",
    "beats_baseline": "At least as good as a plain logistic regression on the same folds.",
    "beats_majority_class": "Accuracy clearly above always naming the largest class.",
    "not_worse_than_deployed": "No worse than the served version on documents it never saw.",
}


def classifier_freshness(settings: DocflowSettings) -> FreshnessPolicy:
    return FreshnessPolicy.time_window(fail_window=timedelta(days=settings.model_max_age_days))


@asset(
    group_name="model",
    owners=[OWNER],
    deps=[training_set],
    partitions_def=training_snapshots,
    kinds={"pytorch", "mlflow"},
    freshness_policy=classifier_freshness(DocflowSettings()),
    description=(
        "TF-IDF + PyTorch classifier trained on its partition's snapshot: the candidate "
        "(logistic regression fitted exactly at one of several strengths, or an MLP) chosen by "
        "cross-validation, confidences calibrated, then trained on every labelled document. "
        "Each partition is one MLflow run and registry version, gated relative to its "
        "baseline."
    ),
    check_specs=[
        AssetCheckSpec(
            name, asset="document_classifier", blocking=True, description=GATE_CHECKS[name]
        )
        for name in GATE_CHECKS
    ]
    + [
        AssetCheckSpec(
            "vocabulary_size",
            asset="document_classifier",
            description=f"The vectorizer knows at least {MIN_VOCABULARY} features.",
        )
    ],
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
    found = docflow.service().snapshot(context.partition_key)
    if found is None:
        raise Failure(
            f"training snapshot {context.partition_key} was never taken: "
            "materialise training_set for this partition first"
        )
    snapshot, frame = found
    texts, labels = frame["text"].tolist(), frame["label"].tolist()
    # Imported by the runs that train: every other process that loads the code location (run
    # workers, the daemon, the sensors) is spared torch and scikit-learn (~2 s each).
    from docflow_assets.ml.training import TrainingConfig, train_classifier

    result = train_classifier(
        texts,
        labels,
        TrainingConfig(max_epochs=config.max_epochs, folds=config.folds, seed=config.seed),
    )
    registry = docflow.registry()
    deployed = registry.load_alias(settings.model_alias)
    served_pairs = None
    if deployed is not None:
        trained_on = registry.training_set_hash(deployed.run_id)
        seen_frame = docflow.service().snapshot_with_hash(trained_on) if trained_on else None
        if seen_frame is not None:
            served_pairs = set(zip(seen_frame["document_id"], seen_frame["label"], strict=True))
    served = compare_with_served(
        result, texts, labels, frame["document_id"].tolist(), deployed, served_pairs
    )
    registered = registry.log_training(
        result,
        snapshot.sha256,
        {
            "training_rows": snapshot.rows,
            "dagster_run_id": context.run_id,
            "training_snapshot": context.partition_key,
        },
    )
    verdict = judge(
        result,
        served,
        GateThresholds(
            config.min_macro_f1 if config.min_macro_f1 is not None else settings.model_min_macro_f1,
            config.baseline_margin,
            config.majority_margin,
            config.max_regression,
        ),
    )
    registry.record_verdict(registered.version, verdict.passed, verdict.reason)
    docflow.service().record_training(
        registered.name,
        registered.version,
        {
            "accuracy": result.test.accuracy,
            "macro_f1": result.test.macro_f1,
            "baseline_accuracy": result.baseline_test.accuracy,
            "baseline_macro_f1": result.baseline_test.macro_f1,
        },
        verdict.passed,
    )
    vocabulary = result.classifier.vectorizer.n_features
    return MaterializeResult(
        metadata={
            "model_name": registered.name,
            "model_version": registered.version,
            "mlflow_run_id": registered.run_id,
            **(
                {"mlflow_run": MetadataValue.url(url)}
                if (url := registry.run_url(registered.run_id))
                else {}
            ),
            **(
                {"mlflow_model_version": MetadataValue.url(url)}
                if (url := registry.version_url(registered.version))
                else {}
            ),
            "training_set_sha256": snapshot.sha256,
            "training_snapshot": context.partition_key,
            "verdict": "deploy" if verdict.passed else "refused",
            "verdict_reason": verdict.reason,
            "head": result.chosen,
            "head_cv_macro_f1": MetadataValue.json(
                {name: round(score, 4) for name, score in result.head_scores.items()}
            ),
            "head_cv_fold_macro_f1": MetadataValue.json(
                {
                    name: [round(score, 4) for score in scores]
                    for name, scores in result.fold_scores.items()
                }
            ),
            **(
                {"heads_dropped": MetadataValue.json(result.dropped_heads)}
                if result.dropped_heads
                else {}
            ),
            "temperature": float(result.classifier.hyperparameters["temperature"]),
            "cv_folds": int(result.split_sizes["folds"]),
            "cross_validated_documents": int(result.split_sizes["cross_validated"]),
            "test_accuracy": result.test.accuracy,
            "test_macro_f1": result.test.macro_f1,
            "baseline_test_accuracy": result.baseline_test.accuracy,
            "baseline_test_macro_f1": result.baseline_test.macro_f1,
            "majority_rate": result.majority_rate,
            "deployed_version": served.version or "none",
            "documents_new_to_deployed": served.unseen,
            **(
                {"deployed_unseen_macro_f1": served.served_macro_f1}
                if served.served_macro_f1 is not None
                else {}
            ),
            "train_seconds": round(result.seconds, 2),
            "baseline_train_seconds": round(result.baseline_seconds, 2),
            "epochs": len(result.history),
            "vocabulary": vocabulary,
            "dagster/row_count": snapshot.rows,
            "classes": MetadataValue.json(result.classifier.classes),
        },
        check_results=[_gate_result(gate, registered.version) for gate in verdict.gates]
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
    owners=[OWNER],
    deps=[document_classifier],
    kinds={"mlflow"},
    description=(
        "The registry alias the API serves, and which training snapshot's model it is; moved "
        "only after the classifier's blocking gate checks pass in the same run. Its data "
        "version is the model version: model_scoring_sensor has a new one score what waits."
    ),
)
def deployed_model(context: AssetExecutionContext, docflow: DocflowResource) -> MaterializeResult:
    settings = docflow.settings()
    snapshot = context.run.tags.get(PARTITION_TAG)
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(
            asset_key=document_classifier.key,
            asset_partitions=[snapshot] if snapshot else None,
        ),
        limit=1,
    ).records
    if not records or records[0].asset_materialization is None:
        raise Failure(f"document_classifier has no model for snapshot {snapshot or '(any)'}")
    trained = records[0].asset_materialization
    version = str(trained.metadata["model_version"].value)
    if trained.metadata["verdict"].value != "deploy":
        raise Failure(f"version {version} was refused by the deployment gate; not deployed")
    previous = docflow.registry().deploy(settings.model_alias, version)
    context.log.info(f"{settings.model_alias} moved from version {previous} to {version}")
    return MaterializeResult(
        # The version is the data: predictions made by an older one show as stale in the UI.
        data_version=DataVersion(f"{settings.model_name}:{version}"),
        metadata={
            "model_name": settings.model_name,
            "alias": settings.model_alias,
            "model_version": version,
            "training_snapshot": str(trained.partition),
            "previous_version": str(previous),
        },
    )
