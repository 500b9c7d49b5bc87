from typing import Any

import mlflow
from dagster import (
    ConfigurableIOManager,
    ConfigurableResource,
    FilesystemIOManager,
    InitResourceContext,
    resource,
)
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from dagster_mlflow.resources import CONFIG_SCHEMA as MLFLOW_CONFIG_SCHEMA
from dagster_mlflow.resources import MlFlow
from pydantic import PrivateAttr

from docflow_assets.document_service import DocumentService
from docflow_assets.ml.registry import EXPERIMENT_NAME, Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema
from docflow_assets.store.objects import s3_location


class DocflowResource(ConfigurableResource):
    """Docflow's settings, database, object store, model registry and document service, built
    once per run (or sensor tick) on first use; unset fields come from DOCFLOW_*."""

    home: str | None = None
    database_url: str | None = None
    object_store: str | None = None
    s3_endpoint_url: str | None = None
    mlflow_tracking_uri: str | None = None
    # Base wait before a step re-runs after a store outage (doubling each time).
    outage_retry_seconds: float = 5.0

    _service: DocumentService | None = PrivateAttr(default=None)

    def service(self) -> DocumentService:
        if self._service is None:
            overrides = {
                "home": self.home,
                "database_url": self.database_url,
                "object_store": self.object_store,
                "s3_endpoint_url": self.s3_endpoint_url,
                "mlflow_tracking_uri": self.mlflow_tracking_uri,
            }
            given: dict[str, Any] = {key: value for key, value in overrides.items() if value}
            settings = DocflowSettings(**given)
            ensure_schema(settings.resolved_database_url)
            self._service = DocumentService.from_settings(settings)
        return self._service

    def settings(self) -> DocflowSettings:
        return self.service().settings

    def registry(self) -> Registry:
        return self.service().registry


@resource(config_schema=MLFLOW_CONFIG_SCHEMA, required_resource_keys={"docflow"})
def mlflow_tracking(context: InitResourceContext) -> MlFlow:
    """dagster-mlflow's ``mlflow_tracking``, pointed at Docflow's tracking store.

    The experiment is created first with Docflow's artefact location (MLflow would otherwise
    put artefacts in ./mlruns of whatever folder the run happens to start in). The training
    asset ends the MLflow run itself: the package's run-end hook closes it too early in
    multi-step jobs (dagster issue #21872).
    """
    registry = context.resources.docflow.registry()
    registry.experiment_id()
    mlflow.set_tracking_uri(registry.tracking_uri)
    mlflow.set_registry_uri(registry.tracking_uri)
    return MlFlow(context)


mlflow_tracking_resource = mlflow_tracking.configured({"experiment_name": EXPERIMENT_NAME})


def io_manager_for(settings: DocflowSettings) -> ConfigurableIOManager | FilesystemIOManager:
    """Dagster's own outputs go where the documents go: the S3 bucket in production, so a
    run worker on any machine can read what another wrote; DAGSTER_HOME/storage otherwise."""
    s3 = s3_location(settings.resolved_object_store)
    if s3 is None:
        return FilesystemIOManager()
    bucket, prefix = s3
    return S3PickleIOManager(
        s3_resource=S3Resource(endpoint_url=settings.s3_endpoint_url),
        s3_bucket=bucket,
        s3_prefix=f"{prefix}/dagster-io".lstrip("/"),
    )
