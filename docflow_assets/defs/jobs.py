from dagster import AssetSelection, define_asset_job

from docflow_assets.defs.documents import (
    PROCESSING_JOB,
    ocr_text,
    predictions,
    raw_documents,
    tfidf_features,
)
from docflow_assets.defs.executors import executor_for
from docflow_assets.defs.model import deployed_model, document_classifier, training_set
from docflow_assets.defs.partitions import training_snapshots, upload_days
from docflow_assets.settings import DocflowSettings

EXECUTOR = executor_for(DocflowSettings())

process_documents_job = define_asset_job(
    PROCESSING_JOB,
    selection=AssetSelection.assets(raw_documents, ocr_text, tfidf_features, predictions),
    partitions_def=upload_days,
    executor_def=EXECUTOR,
    description="New uploads of one day: validate, OCR, featurise, predict.",
)
score_documents_job = define_asset_job(
    "score_documents_job",
    selection=AssetSelection.assets(tfidf_features, predictions),
    partitions_def=upload_days,
    executor_def=EXECUTOR,
    description="Re-score one day's documents with the deployed model.",
)
train_model_job = define_asset_job(
    "train_model_job",
    selection=AssetSelection.assets(training_set, document_classifier, deployed_model),
    partitions_def=training_snapshots,
    executor_def=EXECUTOR,
    # A run stopped by the model gate failed on purpose: retrying would train the same again.
    tags={"dagster/max_retries": "0"},
    description=(
        "Snapshot the current labels as a new partition, train, register, and deploy if the "
        "gate passes (launched by training_snapshot_sensor, or by `docflow train`)."
    ),
)
