"""Recorded predictions: a filtered, paged list and exports (CSV, Parquet)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import IO, Annotated, Any, Literal

from litestar import Controller, get
from litestar.params import Parameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse

from docflow_api.dependencies import PAGE_SIZE, PageSize, as_utc
from docflow_api.schemas import PredictionPage, PredictionRecord
from docflow_assets.document_service import DocumentService
from docflow_assets.settings import LABEL_MAX_LENGTH
from docflow_assets.store.repository import PredictionFilter

EXPORT_MEDIA_TYPES = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
SPOOL_IN_MEMORY_BYTES = 4 * 1024 * 1024
CHUNK_BYTES = 256 * 1024


class FileStream(Stream):
    """A stream that answers with its own media type. Litestar lets the handler's media type
    win, and the handler's is "*/*", which documents an answer that is a file of any type."""

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        kwargs["media_type"] = self.media_type
        return super().to_asgi_response(*args, **kwargs)


def _chunks(spool: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk
    finally:
        spool.close()


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
    ) -> FileStream:
        """Every matching prediction as one file, oldest first, a row each. Written a batch of
        rows at a time to a file that stays in memory only while small, then streamed: the
        server's memory does not grow with the export."""
        where = PredictionFilter(predicted_class, source, model_version, max_confidence)
        # Closed by _chunks once the response has streamed it.
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES)  # noqa: SIM115
        try:
            service.export_predictions(where, export_format, spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return FileStream(
            _chunks(spool),
            media_type=EXPORT_MEDIA_TYPES[export_format],
            headers={"Content-Disposition": f'attachment; filename="predictions.{export_format}"'},
        )
