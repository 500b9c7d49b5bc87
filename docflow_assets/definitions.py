"""The one Dagster ``Definitions`` of the Docflow code location."""

from dagster import Definitions

from docflow_assets.defs.documents import ocr_text, predictions, raw_documents, tfidf_features
from docflow_assets.defs.jobs import process_documents_job, score_documents_job, train_model_job
from docflow_assets.defs.model import deployed_model, document_classifier, training_set
from docflow_assets.defs.resources import (
    DocflowResource,
    io_manager_for,
    mlflow_tracking_resource,
)
from docflow_assets.defs.retention import retention_job, retention_schedule
from docflow_assets.defs.sensors import (
    failed_documents_sensor,
    model_scoring_sensor,
    new_uploads_sensor,
    training_snapshot_sensor,
)
from docflow_assets.settings import DocflowSettings

defs = Definitions(
    assets=[
        raw_documents,
        ocr_text,
        tfidf_features,
        predictions,
        training_set,
        document_classifier,
        deployed_model,
    ],
    jobs=[process_documents_job, score_documents_job, train_model_job, retention_job],
    schedules=[retention_schedule],
    sensors=[
        new_uploads_sensor,
        failed_documents_sensor,
        training_snapshot_sensor,
        model_scoring_sensor,
    ],
    resources={
        "docflow": DocflowResource(),
        "mlflow": mlflow_tracking_resource,
        "io_manager": io_manager_for(DocflowSettings()),
    },
)
