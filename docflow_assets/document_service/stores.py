"""The stores every part of the service works over, built once."""

from __future__ import annotations

from sqlalchemy.orm import Session

from docflow_assets.document_service.errors import DocumentNotFound
from docflow_assets.ml.registry import Registry
from docflow_assets.ocr.pipeline import OcrOptions
from docflow_assets.ocr.preprocess import PreprocessConfig
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.models import Document
from docflow_assets.store.objects import ObjectStore


class ServiceStores:
    """The settings, the object store, the model registry and the database URL."""

    def __init__(self, settings: DocflowSettings, store: ObjectStore, registry: Registry) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.database = settings.resolved_database_url


def ocr_options(settings: DocflowSettings, language: str | None = None) -> OcrOptions:
    """The OCR the settings ask for (``language`` instead of the configured languages)."""
    return OcrOptions(
        language or settings.ocr_languages,
        settings.render_dpi,
        settings.max_image_pixels,
        PreprocessConfig.parse(settings.ocr_preprocess),
        settings.ocr_mode,
        settings.ocr_cascade_threshold,
    )


def existing_document(session: Session, document_id: int) -> Document:
    document = session.get(Document, document_id)
    if document is None:
        raise DocumentNotFound(document_id)
    return document
