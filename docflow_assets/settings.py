"""The one settings object, read from ``DOCFLOW_*`` environment variables by both adapters."""

from __future__ import annotations

from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The embedded default's database, in the home.
DATABASE_FILE = "docflow.db"
# Training defaults: folds of the model selection, epochs a network may run, seed of both.
TRAINING_FOLDS = 5
TRAINING_MAX_EPOCHS = 60
MODEL_SEED = 7
# OCR and label defaults, here so that code called without a settings object (a bare OCR call,
# the API's request schemas) uses the same values as the settings below.
RENDER_DPI = 300
MAX_IMAGE_PIXELS = 60_000_000
CASCADE_THRESHOLD = 0.85
PREPROCESSING_STEPS = ("illumination", "orientation", "deskew", "upscale")
LABEL_MAX_LENGTH = 64


class DocflowSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DOCFLOW_", extra="ignore")

    home: Path = Field(
        default=Path(".docflow"),
        description="Folder for everything the embedded default keeps on disk.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the application database."
    )
    object_store: str | None = Field(
        default=None,
        description="Local folder, or s3://bucket[/prefix], for original files and artefacts.",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint.")
    mlflow_tracking_uri: str | None = Field(default=None, description="MLflow tracking URI.")
    model_name: str = Field(default="docflow-classifier", description="Registered model name.")
    model_alias: str = Field(default="champion", description="Registry alias the API serves.")
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, description="Largest accepted file.")
    max_image_pixels: int = Field(
        default=MAX_IMAGE_PIXELS,
        description="Largest page (width x height) before it counts as a bomb.",
    )
    max_pages: int = Field(default=200, description="Most pages one document may have.")
    max_document_pixels: int = Field(
        default=2_000_000_000,
        description="Most pixels a PDF may render to in all (200 A4 pages at 300 dpi are 1.7 "
        "billion): a small file of huge pages is refused instead of costing minutes of OCR.",
    )
    render_dpi: int = Field(
        default=RENDER_DPI, description="Resolution PDF pages are rasterised at."
    )
    ocr_languages: str = Field(default="eng", description="Tesseract languages, e.g. eng+rus.")
    ocr_preprocess: str = Field(
        default=",".join(PREPROCESSING_STEPS),
        description="Preprocessing steps, applied in this order whatever the order given: "
        "illumination (only unevenly lit paper), orientation, deskew, upscale (only text under "
        "10 px), denoise, contrast, binarize.",
    )
    ocr_mode: str = Field(
        default="cascade",
        description="cascade (Tesseract reads; a page it is unsure of is read by PP-OCR), "
        "tesseract, ppocr (PP-OCRv6 small, Latin scripts), easyocr (slow on CPU) or ensemble "
        "(Tesseract and PP-OCR voted word by word).",
    )
    ocr_cascade_threshold: float = Field(
        default=CASCADE_THRESHOLD,
        description="Tesseract's mean word confidence under which the cascade has PP-OCR read "
        "the page (clean scans read at 0.92-0.96, photographed receipts at 0.68-0.73).",
    )
    ocr_workers: int = Field(
        default=2,
        description="Processes OCR'ing pages in parallel on one machine: with steps in "
        "process, the processing runs in flight share them; each Celery worker has its own.",
    )
    executor: Literal["in_process", "celery"] = Field(
        default="in_process",
        description="Where runs execute their steps: in the run's own process, or on Celery "
        "workers (`docflow worker`) that take steps from the broker.",
    )
    celery_broker: str = Field(
        default="pyamqp://guest@127.0.0.1:5672//",
        description="Celery broker URL (RabbitMQ: a step of a killed worker goes back to the "
        "queue at once; Redis works too).",
    )
    celery_backend: str = Field(default="rpc://", description="Celery result backend URL.")
    partitions_start: date | None = Field(
        default=None,
        description="First day of the upload-day partitions (YYYY-MM-DD); unset: the day of the "
        "first upload in the database, or today on a new home.",
    )
    batch_size: int = Field(
        default=200,
        ge=1,
        description="Most documents in one processing run (a tick's uploads are cut into runs "
        "of one size). Each run costs a process start of ~6 s CPU, so small batches waste the "
        "cores; with Celery the runs in flight are what workers share, so keep at least two "
        "runs per worker in a typical backlog.",
    )
    rescore_on_deploy: Literal["none", "unconfirmed", "all"] = Field(
        default="unconfirmed",
        description="What a newly deployed model re-scores besides the documents waiting for "
        "a first prediction: none, unconfirmed (documents with no label: no review decision "
        "yet) or all. Re-scores are new predictions; the history keeps the old ones.",
    )
    retrain_min_new_labels: int = Field(
        default=50, description="New or changed labels that make a new training set and a retrain."
    )
    retrain_max_hold_minutes: float = Field(
        default=15,
        description="How long a due retrain waits for labelled documents still being "
        "processed before it takes its snapshot without them (they go in the next one).",
    )
    model_min_macro_f1: float | None = Field(
        default=None,
        description="Absolute cross-validated macro-F1 a model must reach to be served; unset: "
        "no floor (the gate is relative: beat the baseline, the majority class and the served "
        "model).",
    )
    model_max_age_days: float = Field(
        default=7, description="Age after which the classifier fails its freshness policy."
    )
    model_poll_seconds: float = Field(
        default=30, description="How often the API looks for a new deployed version."
    )
    api_scoring_threads: int = Field(
        default=2,
        ge=1,
        description="API threads that score texts (OCR runs on others, so a slow page never "
        "delays a text prediction).",
    )
    api_max_batch_characters: int = Field(
        default=2_000_000,
        ge=1,
        description="Most characters one /predict/batch request may hold in all (413 past it).",
    )
    api_online_ocr_slots: int = Field(
        default=2,
        ge=0,
        description="Documents the API may OCR at once (one per core); past that a request "
        "that needs OCR gets 503 with Retry-After instead of waiting.",
    )
    online_max_pages: int = Field(
        default=10,
        ge=0,
        description="Most pages the API OCRs inside a request; larger documents are stored "
        "and left to the pipeline (202 with the document id).",
    )
    online_ocr_seconds: float = Field(
        default=30,
        gt=0,
        description="Time one request's OCR may take; past it the reading stops (Tesseract "
        "mid-page) and the document is left to the pipeline (202).",
    )
    retention_days: float | None = Field(
        default=None,
        gt=0,
        description="Days after upload when a processed document's original file is deleted "
        "(daily, by retention_schedule); its text, predictions and label stay. Unset: kept.",
    )
    dagster_ui_url: str = Field(
        default="http://127.0.0.1:3000",
        description="Where the API's front page links the Dagster UI.",
    )
    api_keys: str | None = Field(
        default=None, description="Comma-separated API keys; when set, routes need X-API-Key."
    )
    confidence_threshold: float = Field(
        default=0.5, description="Score above which a prediction is marked confident."
    )

    @cached_property
    def resolved_home(self) -> Path:
        home = self.home.expanduser().resolve()
        home.mkdir(parents=True, exist_ok=True)
        return home

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.resolved_home / DATABASE_FILE}"

    @property
    def resolved_object_store(self) -> str:
        return self.object_store or str(self.resolved_home / "objects")

    @property
    def resolved_mlflow_tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.resolved_home / 'mlflow.db'}"

    @property
    def mlflow_artifact_location(self) -> str | None:
        """Where a new experiment keeps artefacts; None lets a tracking server decide."""
        if self.mlflow_tracking_uri:
            return None
        return (self.resolved_home / "mlartifacts").as_uri()


def get_settings() -> DocflowSettings:
    return DocflowSettings()
