"""Per-day document assets: raw files, OCR text, TF-IDF features and predictions."""

import functools
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from datetime import date

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    RunsFilter,
    asset,
)
from sqlalchemy.exc import OperationalError

from docflow_assets.defs import OWNER
from docflow_assets.defs.partitions import DocumentBatch, upload_days
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.document_service import (
    DRIFT_WINDOW,
    MIN_MEAN_CONFIDENCE,
    READY_FOR_FEATURES,
    OcrReport,
)
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.models import DocumentStatus
from docflow_assets.store.objects import StoreUnavailable

# Named, not imported: the model assets depend on ocr_text, which is defined here.
DEPLOYED_MODEL = AssetKey("deployed_model")
# The name of the job over these assets (jobs.py defines it; it imports them from here).
PROCESSING_JOB = "process_documents_job"
MAX_EMPTY_TEXT_RATE = 0.2
MAX_LOW_CONFIDENCE_RATE = 0.3
MAX_LANGUAGE_MISMATCH_RATE = 0.1
MAX_CLASS_DRIFT = 0.4
OUTAGE_RETRIES = 4
PROGRESS_EVERY = 10
PARENT_RUN_TAG = "dagster/parent_run_id"


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


def ocr_processes(instance: DagsterInstance, settings: DocflowSettings) -> int:
    """The OCR processes this run starts: ``ocr_workers`` shared among the processing runs in
    flight, when steps run in the run's own process (every run on the daemon's machine). Four
    processes on two cores read 294 real office scans at 0.92 CPU-s a page, two at 0.82. Under
    Celery each worker is a machine of its own and reads with all of ``ocr_workers``."""
    if settings.executor != "in_process":
        return settings.ocr_workers
    in_flight = instance.get_runs_count(
        RunsFilter(
            job_name=PROCESSING_JOB,
            statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED],
        )
    )
    return max(1, settings.ocr_workers // max(1, in_flight))


def _day(context: AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def _markdown_preview(rows: Sequence[Mapping[str, object]]) -> MetadataValue:
    if not rows:
        return MetadataValue.md("(none)")
    return MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))


@asset(
    partitions_def=upload_days,
    group_name="documents",
    owners=[OWNER],
    kinds={"python", "sql"},
    description="Uploaded files of the day, checked against the object store and decodable.",
)
@retry_through_outages
def raw_documents(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    service = docflow.service()
    report = service.check_originals(_day(context), config.document_ids)
    return MaterializeResult(
        metadata={
            "documents": report.documents,
            # The partition is the day: its row count is every document of the day so far.
            "dagster/row_count": sum(service.day_counts(_day(context)).values()),
            "pages": report.pages,
            "bytes": report.total_bytes,
            "missing_originals": len(report.missing),
            "content_types": report.content_types,
            "preview": _markdown_preview(report.preview),
        }
    )


@asset(
    partitions_def=upload_days,
    group_name="documents",
    owners=[OWNER],
    deps=[raw_documents],
    kinds={"tesseract", "sql"},
    description="Per-page text, words, boxes and confidences of the day's documents.",
    check_specs=[
        AssetCheckSpec(
            "empty_text_rate",
            asset="ocr_text",
            description=f"At most {MAX_EMPTY_TEXT_RATE:.0%} of the batch's pages read as empty.",
        ),
        AssetCheckSpec(
            "low_confidence_rate",
            asset="ocr_text",
            description=f"At most {MAX_LOW_CONFIDENCE_RATE:.0%} of pages read with mean word "
            f"confidence under {MIN_MEAN_CONFIDENCE}.",
        ),
        AssetCheckSpec(
            "language_mismatch_rate",
            asset="ocr_text",
            description="Pages whose script none of the configured OCR languages writes.",
        ),
    ],
)
@retry_through_outages
def ocr_text(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    settings = docflow.settings()
    service = docflow.service()
    queued = len(config.document_ids)

    def log_progress(tally: OcrReport) -> None:
        done = tally.documents + len(tally.failed)
        if done % PROGRESS_EVERY == 0:
            context.log.info(f"read {done} of {queued} documents ({tally.pages} pages)")

    # A retried step, or a re-executed run, reads only what its first attempt did not record.
    resume = context.retry_number > 0 or PARENT_RUN_TAG in context.run.tags
    workers = ocr_processes(context.instance, settings)
    report = service.read(_day(context), config.document_ids, resume, log_progress, workers)
    day = service.day_counts(_day(context))
    context.log.info(
        f"OCR'd {report.pages} pages of {report.documents + len(report.failed)} documents "
        f"in {report.seconds:.1f}s"
    )
    return MaterializeResult(
        metadata={
            "documents": report.documents,
            "already_read": report.already_read,
            "dagster/row_count": sum(day.get(status, 0) for status in READY_FOR_FEATURES),
            "failed_documents": len(report.failed),
            "pages": report.pages,
            "mode": settings.ocr_mode,
            "ocr_processes": workers,
            "pages_read_by": report.read_by,
            "languages": settings.ocr_languages,
            "preprocessing": settings.ocr_preprocess,
            "mean_confidence": round(report.mean_confidence, 4),
            "seconds": round(report.seconds, 2),
            "seconds_per_page": round(report.seconds / report.pages, 3) if report.pages else 0.0,
            # Which machine and process read the batch: a Celery worker, or the run itself.
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "preview": _markdown_preview(report.preview),
        },
        check_results=[
            AssetCheckResult(
                check_name="empty_text_rate",
                passed=report.empty_rate <= MAX_EMPTY_TEXT_RATE,
                severity=AssetCheckSeverity.WARN,
                metadata={"empty_text_rate": report.empty_rate, "limit": MAX_EMPTY_TEXT_RATE},
            ),
            AssetCheckResult(
                check_name="low_confidence_rate",
                passed=report.low_confidence_rate <= MAX_LOW_CONFIDENCE_RATE,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "low_confidence_rate": report.low_confidence_rate,
                    "limit": MAX_LOW_CONFIDENCE_RATE,
                    "page_confidence_floor": MIN_MEAN_CONFIDENCE,
                },
            ),
            AssetCheckResult(
                check_name="language_mismatch_rate",
                passed=report.language_mismatch_rate <= MAX_LANGUAGE_MISMATCH_RATE,
                severity=AssetCheckSeverity.WARN,
                metadata={
                    "language_mismatch_rate": report.language_mismatch_rate,
                    "limit": MAX_LANGUAGE_MISMATCH_RATE,
                    "languages": settings.ocr_languages,
                    "scripts_seen": report.scripts,
                    "mismatched_documents": report.mismatched_documents[:20],
                },
            ),
        ],
    )


@asset(
    partitions_def=upload_days,
    group_name="documents",
    owners=[OWNER],
    # The served model's vectorizer makes the vectors: a deploy makes the day's partitions stale.
    deps=[ocr_text, DEPLOYED_MODEL],
    kinds={"scikitlearn"},
    description="TF-IDF vectors of the day's OCR text under the deployed model's vectorizer.",
)
@retry_through_outages
def tfidf_features(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    report = docflow.service().featurise(_day(context), config.document_ids)
    if report is None:
        context.log.warning("No model is deployed yet; features wait for the first one.")
        return MaterializeResult(metadata={"dagster/row_count": 0, "skipped": "no deployed model"})
    cells = report.rows * report.features
    return MaterializeResult(
        metadata={
            "dagster/row_count": report.rows,
            "features": report.features,
            "nonzero": report.nonzero,
            "density": report.nonzero / cells if cells else 0.0,
            "model_version": report.model_version,
            "object_key": report.key,
            "seconds": round(report.seconds, 3),
        }
    )


def _drift_check(docflow: DocflowResource) -> AssetCheckResult:
    """Recent predicted classes against the training labels' distribution."""
    drift, judged = docflow.service().class_drift()
    return AssetCheckResult(
        check_name="prediction_class_drift",
        passed=drift <= MAX_CLASS_DRIFT,
        severity=AssetCheckSeverity.WARN,
        metadata={"total_variation": drift, "limit": MAX_CLASS_DRIFT, "recent_predictions": judged},
    )


@asset(
    partitions_def=upload_days,
    group_name="documents",
    owners=[OWNER],
    deps=[tfidf_features, DEPLOYED_MODEL],
    kinds={"pytorch", "sql"},
    description="Class and all scores for each document of the day, by the deployed model.",
    check_specs=[
        AssetCheckSpec(
            "prediction_class_drift",
            asset="predictions",
            description=f"The last {DRIFT_WINDOW} predicted classes stay within total variation "
            f"{MAX_CLASS_DRIFT} of the training labels' distribution.",
        )
    ],
)
@retry_through_outages
def predictions(
    context: AssetExecutionContext, config: DocumentBatch, docflow: DocflowResource
) -> MaterializeResult:
    service = docflow.service()
    report = service.score(_day(context), config.document_ids)
    if report is None:
        context.log.warning("No features for this batch: no model was deployed to make them.")
        return MaterializeResult(
            metadata={"dagster/row_count": 0, "skipped": "no deployed model"},
            check_results=[_drift_check(docflow)],
        )
    return MaterializeResult(
        check_results=[_drift_check(docflow)],
        metadata={
            "documents": sum(report.by_class.values()),
            "already_scored": report.already_scored,
            "dagster/row_count": service.day_counts(_day(context)).get(DocumentStatus.PREDICTED, 0),
            "model_name": report.model_name,
            "model_version": report.model_version,
            "by_class": report.by_class,
            "preview": _markdown_preview(report.preview),
        },
    )
