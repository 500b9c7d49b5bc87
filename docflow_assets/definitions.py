"""The one Dagster ``Definitions`` of the Docflow code location."""

from dagster import (
    AssetSelection,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
    Definitions,
)

from docflow_assets.defs.documents import ocr_text, predictions, raw_documents, tfidf_features
from docflow_assets.defs.jobs import process_documents_job, score_documents_job, train_model_job
from docflow_assets.defs.model import (
    deployed_model,
    document_classifier,
    training_set,
    training_set_checks,
)
from docflow_assets.defs.resources import (
    DocflowResource,
    io_manager_for,
    mlflow_tracking_resource,
)
from docflow_assets.defs.sensors import failed_documents_sensor, new_uploads_sensor
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
    asset_checks=training_set_checks,
    jobs=[process_documents_job, score_documents_job, train_model_job],
    sensors=[
        new_uploads_sensor,
        failed_documents_sensor,
        # The built-in automation sensor starts stopped on a fresh instance; this one runs.
        AutomationConditionSensorDefinition(
            "model_automation_sensor",
            target=AssetSelection.groups("model"),
            default_status=DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=30,
            # A gate refusal is a verdict, not an accident: retrying would train the same
            # snapshot again (store outages are retried by the steps themselves).
            run_tags={"dagster/max_retries": "0"},
        ),
    ],
    resources={
        "docflow": DocflowResource(),
        "mlflow": mlflow_tracking_resource,
        "io_manager": io_manager_for(DocflowSettings()),
    },
)
