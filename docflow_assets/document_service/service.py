"""The front door: one class every adapter (Dagster, the API, the CLI) calls."""

from __future__ import annotations

from docflow_assets.document_service.batch import BatchSteps
from docflow_assets.document_service.intake import Intake
from docflow_assets.document_service.online import OnlineReader
from docflow_assets.document_service.records import Records
from docflow_assets.document_service.training_data import TrainingData
from docflow_assets.ml.registry import Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.objects import open_object_store


class DocumentService(Intake, BatchSteps, OnlineReader, Records, TrainingData):
    """Processing of stored documents, over one set of stores built once."""

    @classmethod
    def from_settings(
        cls, settings: DocflowSettings, registry: Registry | None = None
    ) -> DocumentService:
        """The settings' object store and registry (or ``registry``, when the caller holds one)."""
        return cls(
            settings,
            open_object_store(settings.resolved_object_store, settings.s3_endpoint_url),
            registry or Registry.from_settings(settings),
        )
