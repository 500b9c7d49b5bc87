"""The one Dagster ``Definitions`` of the Docflow code location."""

from dagster import Definitions

from docflow_assets.defs.documents import ocr_text, predictions, raw_documents, tfidf_features
from docflow_assets.defs.jobs import process_documents_job, score_documents_job, train_model_job
from docflow_assets.defs.model import deployed_model, document_classifier, training_set
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.defs.sensors import new_uploads_sensor

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
    jobs=[process_documents_job, score_documents_job, train_model_job],
    sensors=[new_uploads_sensor],
    resources={"docflow": DocflowResource()},
)
