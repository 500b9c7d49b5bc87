"""Per-day document assets: raw files, OCR text, TF-IDF features and predictions."""

import functools
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import date

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    asset,
)
from sqlalchemy.exc import OperationalError

from docflow_assets.defs.partitions import DocumentBatch, upload_days
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.ml.feature_store import (
    StoredFeatures,
    features_key,
    load_features,
    save_features,
)
from docflow_assets.ml.training_set import class_distribution, current_snapshot, total_variation
from docflow_assets.ocr.language import page_script, script_mismatch
from docflow_assets.ocr.pipeline import OcrOptions, OcrRequest, ocr_documents
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import DocumentStatus
from docflow_assets.store.objects import ObjectNotFound, StoreUnavailable
from docflow_assets.store.repository import (
    add_prediction,
    batch_documents,
    document_texts,
    mark_failed,
    recent_predicted_classes,
    replace_ocr_results,
)

MAX_EMPTY_TEXT_RATE = 0.2
MAX_LOW_CONFIDENCE_RATE = 0.3
MAX_LANGUAGE_MISMATCH_RATE = 0.1
MAX_CLASS_DRIFT = 0.4
DRIFT_WINDOW = 500
MIN_MEAN_CONFIDENCE = 0.6
READY_FOR_FEATURES = (DocumentStatus.OCR_DONE, DocumentStatus.PREDICTED)


OUTAGE_RETRIES = 4


def retry_through_outages(
    materialize: Callable[..., MaterializeResult],
) -> Callable[..., MaterializeResult]:
    """A database or object store that is down for a while fails the step, not the documents:
    Dagster re-runs the step after 1, 2, 4, 8 x ``docflow.outage_retry_seconds``."""

    @functools.wraps(materialize)
    def with_retries(context: AssetExecutionContext, **kwargs: object) -> MaterializeResult:
        try:
            return materialize(context, **kwargs)
        except (StoreUnavailable, OperationalError) as error:
            docflow = kwargs["docflow"]
            assert isinstance(docflow, DocflowResource)
            wait = docflow.outage_retry_seconds * 2**context.retry_number
            context.log.warning(f"{error}; retrying the step in {wait:.0f} s")
            raise RetryRequested(max_retries=OUTAGE_RETRIES, seconds_to_wait=wait) from error

    return with_retries


def _day(context: AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _markdown_preview(rows: Sequence[Mapping[str, object]]) -> MetadataValue:
    if not rows:
        return MetadataValue.md("(none)")
    return MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))


@asset(
    partitions_def=upload_days,
    group_name="documents",
    kinds={"python", "sql"},
    description="Uploaded files of the day, checked against the object store and decodable.",
)
@retry_through_outages
def raw_documents(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    store = docflow.store()
    with session_scope(docflow.database) as session:
        documents = batch_documents(session, _day(context), config.document_ids)
        missing = []
        for document in documents:
            if document.status == DocumentStatus.FAILED:
                continue
            if not store.exists(document.storage_key):
                mark_failed(session, document, f"original file {document.storage_key} is missing")
                missing.append(document.id)
        formats = Counter(document.content_type for document in documents)
        preview = [
            {
                "id": d.id,
                "filename": d.filename,
                "type": d.content_type,
                "pages": d.pages,
                "label": d.label,
                "status": d.status,
            }
            for d in documents[:10]
        ]
        pages = sum(document.pages for document in documents)
        total_bytes = sum(document.size_bytes for document in documents)
    return MaterializeResult(
        metadata={
            "documents": len(documents),
            "pages": pages,
            "bytes": total_bytes,
            "missing_originals": len(missing),
            "content_types": dict(formats),
            "preview": _markdown_preview(preview),
        }
    )


@asset(
    partitions_def=upload_days,
    group_name="documents",
    deps=[raw_documents],
    kinds={"tesseract", "sql"},
    description="Per-page text, words, boxes and confidences of the day's documents.",
    check_specs=[
        AssetCheckSpec("empty_text_rate", asset="ocr_text"),
        AssetCheckSpec("low_confidence_rate", asset="ocr_text"),
        AssetCheckSpec("language_mismatch_rate", asset="ocr_text"),
    ],
)
@retry_through_outages
def ocr_text(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    settings = docflow.settings()
    store = docflow.store()
    with session_scope(docflow.database) as session:
        documents = [
            document
            for document in batch_documents(session, _day(context), config.document_ids)
            if document.status != DocumentStatus.FAILED
        ]
        requests = []
        for document in documents:
            try:
                requests.append(
                    OcrRequest(
                        document.id, store.get_bytes(document.storage_key), document.content_type
                    )
                )
            except ObjectNotFound:
                mark_failed(session, document, f"original file {document.storage_key} is missing")
    started = time.perf_counter()
    options = OcrOptions.from_settings(settings)
    results = ocr_documents(requests, options, settings.ocr_workers)
    seconds = time.perf_counter() - started
    failed: list[int] = []
    page_confidences: list[float] = []
    empty_pages = judged_pages = 0
    mismatched: list[int] = []
    scripts: Counter[str] = Counter()
    read_by: Counter[str] = Counter()
    preview: list[dict[str, object]] = []
    with session_scope(docflow.database) as session:
        by_id = {document.id: session.merge(document) for document in documents}
        for result in results:
            document = by_id[result.document_id]
            if result.error:
                mark_failed(session, document, f"OCR failed: {result.error}")
                failed.append(document.id)
                continue
            replace_ocr_results(session, document, result.pages)
            for page in result.pages:
                page_confidences.append(page.mean_confidence)
                read_by[str(page.preprocessing.get("read_by", page.engine))] += 1
                empty_pages += not page.text.strip()
                script = page_script(page)
                mismatch = script_mismatch(script, page.language)
                if mismatch is not None:
                    judged_pages += 1
                    scripts[str(script)] += 1
                if mismatch:
                    mismatched.append(document.id)
            if len(preview) < 5:
                preview.append({"id": document.id, "text": result.text[:120].replace("\n", " ")})
    pages = len(page_confidences)
    empty_rate = empty_pages / pages if pages else 0.0
    low_rate = sum(c < MIN_MEAN_CONFIDENCE for c in page_confidences) / pages if pages else 0.0
    mismatch_rate = len(mismatched) / judged_pages if judged_pages else 0.0
    mean_confidence = sum(page_confidences) / pages if pages else 0.0
    context.log.info(f"OCR'd {pages} pages of {len(results)} documents in {seconds:.1f}s")
    return MaterializeResult(
        metadata={
            "documents": len(results) - len(failed),
            "failed_documents": len(failed),
            "pages": pages,
            "mode": settings.ocr_mode,
            "pages_read_by": dict(read_by),
            "languages": settings.ocr_languages,
            "preprocessing": settings.ocr_preprocess,
            "mean_confidence": round(mean_confidence, 4),
            "seconds": round(seconds, 2),
            "seconds_per_page": round(seconds / pages, 3) if pages else 0.0,
            "preview": _markdown_preview(preview),
        },
        check_results=[
            AssetCheckResult(
                check_name="empty_text_rate",
                passed=empty_rate <= MAX_EMPTY_TEXT_RATE,
                severity=AssetCheckSeverity.WARN,
                metadata={"empty_text_rate": empty_rate, "limit": MAX_EMPTY_TEXT_RATE},
            ),
            AssetCheckResult(
                check_name="low_confidence_rate",
                passed=low_rate <= MAX_LOW_CONFIDENCE_RATE,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "low_confidence_rate": low_rate,
                    "limit": MAX_LOW_CONFIDENCE_RATE,
                    "page_confidence_floor": MIN_MEAN_CONFIDENCE,
                },
            ),
            AssetCheckResult(
                check_name="language_mismatch_rate",
                passed=mismatch_rate <= MAX_LANGUAGE_MISMATCH_RATE,
                severity=AssetCheckSeverity.WARN,
                description="Pages whose script none of the configured OCR languages writes.",
                metadata={
                    "language_mismatch_rate": mismatch_rate,
                    "limit": MAX_LANGUAGE_MISMATCH_RATE,
                    "languages": settings.ocr_languages,
                    "scripts_seen": dict(scripts),
                    "mismatched_documents": sorted(set(mismatched))[:20],
                },
            ),
        ],
    )


@asset(
    partitions_def=upload_days,
    group_name="documents",
    deps=[ocr_text],
    kinds={"scikitlearn"},
    description="TF-IDF vectors of the day's OCR text under the deployed model's vectorizer.",
)
@retry_through_outages
def tfidf_features(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    settings = docflow.settings()
    deployed = docflow.registry().load_alias(settings.model_alias)
    if deployed is None:
        context.log.warning("No model is deployed yet; features wait for the first one.")
        return MaterializeResult(metadata={"rows": 0, "skipped": "no deployed model"})
    with session_scope(docflow.database) as session:
        ids = [
            document.id
            for document in batch_documents(session, _day(context), config.document_ids)
            if document.status in READY_FOR_FEATURES
        ]
        texts = document_texts(session, ids, prefer=settings.ocr_mode)
    started = time.perf_counter()
    matrix = deployed.classifier.vectorizer.transform([texts.get(i, "") for i in ids])
    key = features_key(_day(context), config.document_ids)
    save_features(docflow.store(), key, StoredFeatures(ids, matrix, deployed.version))
    cells = matrix.shape[0] * matrix.shape[1]
    return MaterializeResult(
        metadata={
            "rows": len(ids),
            "features": int(matrix.shape[1]),
            "nonzero": int(matrix.nnz),
            "density": float(matrix.nnz / cells) if cells else 0.0,
            "model_version": deployed.version,
            "object_key": key,
            "seconds": round(time.perf_counter() - started, 3),
        }
    )


def _drift_check(docflow: DocflowResource, recent: list[str]) -> AssetCheckResult:
    """Recent predicted classes against the training labels' distribution."""
    found = current_snapshot(docflow.store())
    training = class_distribution(found[1]["label"].tolist()) if found else {}
    drift = total_variation(class_distribution(recent), training) if recent and training else 0.0
    return AssetCheckResult(
        check_name="prediction_class_drift",
        passed=drift <= MAX_CLASS_DRIFT,
        severity=AssetCheckSeverity.WARN,
        metadata={
            "total_variation": drift,
            "limit": MAX_CLASS_DRIFT,
            "recent_predictions": len(recent),
        },
    )


@asset(
    partitions_def=upload_days,
    group_name="documents",
    deps=[tfidf_features],
    kinds={"pytorch", "sql"},
    description="Class and all scores for each document of the day, by the deployed model.",
    check_specs=[AssetCheckSpec("prediction_class_drift", asset="predictions")],
)
@retry_through_outages
def predictions(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    try:
        features = load_features(docflow.store(), features_key(_day(context), config.document_ids))
    except ObjectNotFound:
        context.log.warning("No features for this batch: no model was deployed to make them.")
        return MaterializeResult(
            metadata={"rows": 0, "skipped": "no deployed model"},
            check_results=[_drift_check(docflow, [])],
        )
    # The version that made the features, even if the alias has moved on since.
    deployed = docflow.registry().load(features.model_version)
    ids = features.document_ids
    scored = dict(zip(ids, deployed.classifier.score_features(features.matrix), strict=True))
    classes: Counter[str] = Counter()
    preview: list[dict[str, object]] = []
    with session_scope(docflow.database) as session:
        for document in batch_documents(session, _day(context), ids):
            result = scored[document.id]
            add_prediction(
                session,
                document.id,
                deployed.name,
                deployed.version,
                result.predicted_class,
                result.confidence,
                result.scores,
                source="batch",
            )
            document.status = DocumentStatus.PREDICTED
            classes[result.predicted_class] += 1
            if len(preview) < 10:
                preview.append(
                    {
                        "id": document.id,
                        "label": document.label,
                        "predicted": result.predicted_class,
                        "confidence": round(result.confidence, 3),
                    }
                )
        recent = recent_predicted_classes(session, DRIFT_WINDOW)
    return MaterializeResult(
        check_results=[_drift_check(docflow, recent)],
        metadata={
            "rows": sum(classes.values()),
            "model_name": deployed.name,
            "model_version": deployed.version,
            "by_class": dict(classes),
            "preview": _markdown_preview(preview),
        },
    )
