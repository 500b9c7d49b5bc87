"""The one conductor of document processing, batch and online alike: check the originals, OCR
and record, featurise, score and record, with every status change and the quality figures the
data-quality checks judge. The Dagster assets, the API and the CLI call it; none repeats it.

``DocumentService`` is the front door. Behind it: ``batch`` (the pipeline's steps), ``online``
(one document read inside a request), ``records`` (what people look up and correct),
``errors`` and ``reports``."""

from docflow_assets.document_service.batch import DRIFT_WINDOW, READY_FOR_FEATURES
from docflow_assets.document_service.errors import (
    DocumentNotFound,
    InvalidRequest,
    LeftToPipeline,
    NotReadYet,
    OcrBusy,
    OriginalExpired,
    OriginalMissing,
)
from docflow_assets.document_service.online import NO_LIMITS, OnlineReading
from docflow_assets.document_service.records import PREVIEW_SIDE
from docflow_assets.document_service.reports import (
    MIN_MEAN_CONFIDENCE,
    DeletionReport,
    DocumentPrediction,
    FeaturesReport,
    LabelReport,
    OcrReport,
    OriginalsReport,
    PipelineState,
    ScoresReport,
    ScoringBacklog,
)
from docflow_assets.document_service.service import DocumentService
from docflow_assets.document_service.stores import ocr_options

__all__ = [
    "DRIFT_WINDOW",
    "MIN_MEAN_CONFIDENCE",
    "NO_LIMITS",
    "PREVIEW_SIDE",
    "READY_FOR_FEATURES",
    "DeletionReport",
    "DocumentNotFound",
    "DocumentPrediction",
    "DocumentService",
    "FeaturesReport",
    "InvalidRequest",
    "LabelReport",
    "LeftToPipeline",
    "NotReadYet",
    "OcrBusy",
    "OcrReport",
    "OnlineReading",
    "OriginalExpired",
    "OriginalMissing",
    "OriginalsReport",
    "PipelineState",
    "ScoresReport",
    "ScoringBacklog",
    "ocr_options",
]
