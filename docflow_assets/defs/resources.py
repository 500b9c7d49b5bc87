from dagster import ConfigurableResource

from docflow_assets.ml.registry import Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema
from docflow_assets.store.objects import ObjectStore, open_object_store


class DocflowResource(ConfigurableResource):
    """Docflow's database, object store and model registry; unset fields come from DOCFLOW_*."""

    home: str | None = None
    database_url: str | None = None
    object_store: str | None = None
    mlflow_tracking_uri: str | None = None

    def settings(self) -> DocflowSettings:
        overrides = {
            "home": self.home,
            "database_url": self.database_url,
            "object_store": self.object_store,
            "mlflow_tracking_uri": self.mlflow_tracking_uri,
        }
        return DocflowSettings(**{key: value for key, value in overrides.items() if value})

    @property
    def database(self) -> str:
        return ensure_schema(self.settings().resolved_database_url)

    def store(self) -> ObjectStore:
        settings = self.settings()
        return open_object_store(settings.resolved_object_store, settings.s3_endpoint_url)

    def registry(self) -> Registry:
        settings = self.settings()
        return Registry(
            settings.resolved_mlflow_tracking_uri,
            settings.mlflow_artifact_location,
            settings.model_name,
        )
