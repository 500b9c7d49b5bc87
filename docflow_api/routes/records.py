"""Recorded predictions: a filtered, paged list and exports (CSV, Parquet)."""

from __future__ import annotations

import io
from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.params import Parameter

from docflow_api.dependencies import PAGE_SIZE, PageSize, as_utc
from docflow_api.schemas import PredictionPage, PredictionRecord
from docflow_assets.document_service import DocumentService
from docflow_assets.settings import LABEL_MAX_LENGTH
from docflow_assets.store.repository import PredictionFilter

EXPORT_MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


ClassFilter = Annotated[
    str | None, Parameter(max_length=LABEL_MAX_LENGTH, description="Predicted class.")
]
SourceFilter = Annotated[
    Literal["batch", "api", "cli"] | None,
    Parameter(description="batch: the pipeline; api: online; cli: `docflow predict`."),
]
VersionFilter = Annotated[str | None, Parameter(max_length=32, description="Model version.")]
ConfidenceFilter = Annotated[
    float | None,
    Parameter(ge=0, le=1, description="Only predictions this unsure or less (for review)."),
]


class PredictionRecordsController(Controller):
    tags = ["predictions"]

    @get("/predictions", sync_to_thread=True)
    def list_predictions(
        self,
        service: DocumentService,
        predicted_class: ClassFilter = None,
        source: SourceFilter = None,
        model_version: VersionFilter = None,
        max_confidence: ConfidenceFilter = None,
        page: Annotated[int, Parameter(ge=1, le=1_000_000)] = 1,
        page_size: PageSize = PAGE_SIZE,
    ) -> PredictionPage:
        """Recorded predictions of stored documents, newest first."""
        where = PredictionFilter(predicted_class, source, model_version, max_confidence)
        total, rows = service.predictions(where, page, page_size)
        items = [
            PredictionRecord(
                prediction.id,
                document.id,
                document.filename,
                document.label,
                prediction.predicted_class,
                prediction.confidence,
                prediction.model_name,
                prediction.model_version,
                prediction.source,
                as_utc(prediction.created_at),
            )
            for prediction, document in rows
        ]
        return PredictionPage(items, total, page, page_size)

    @get("/predictions/export", sync_to_thread=True, media_type="*/*")
    def export_predictions(
        self,
        service: DocumentService,
        export_format: Annotated[
            Literal["csv", "parquet"], Parameter(query="format", description="File format.")
        ] = "csv",
        predicted_class: ClassFilter = None,
        source: SourceFilter = None,
        model_version: VersionFilter = None,
        max_confidence: ConfidenceFilter = None,
    ) -> Response[bytes]:
        """Every matching prediction as one file, oldest first, a row each."""
        table = service.predictions_table(
            PredictionFilter(predicted_class, source, model_version, max_confidence)
        )
        buffer = io.BytesIO()
        if export_format == "csv":
            table.to_csv(buffer, index=False)
        else:
            table.to_parquet(buffer, index=False)
        return Response(
            buffer.getvalue(),
            media_type=EXPORT_MEDIA_TYPES[export_format],
            headers={"Content-Disposition": f'attachment; filename="predictions.{export_format}"'},
        )
