"""Health, the served model, metrics."""

from __future__ import annotations

from collections.abc import Callable

from litestar import Controller, Response, get, post
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from docflow_api.dependencies import ApiContext
from docflow_api.model_holder import ServedModel
from docflow_api.schemas import (
    ComponentHealth,
    HealthResponse,
    ModelHealth,
    ModelResponse,
)


def _component(check: Callable[[], object]) -> ComponentHealth:
    try:
        check()
    except Exception as error:
        return ComponentHealth("down", f"{type(error).__name__}: {error}")
    return ComponentHealth("up")


class ModelController(Controller):
    tags = ["model and health"]

    @get("/health", sync_to_thread=True)
    def health(self, context: ApiContext) -> Response[HealthResponse]:
        database = _component(context.service.database_ping)
        object_store = _component(context.service.store.ping)
        holder = context.model_holder
        served = holder.served
        model = (
            ModelHealth("down", context.settings.model_name, detail=holder.why_not_served())
            if served is None
            else ModelHealth("up", served.model.name, served.model.version, served.loaded_since)
        )
        parts = {
            "database": database.status,
            "object_store": object_store.status,
            "model": model.status,
        }
        down = [name for name, status in parts.items() if status != "up"]
        body = HealthResponse(
            "ok" if not down else f"down: {', '.join(down)}", database, object_store, model
        )
        return Response(body, status_code=200 if not down else 503)

    @get("/model", sync_to_thread=True)
    def model_info(self, context: ApiContext, served: ServedModel) -> ModelResponse:
        model = served.model
        return ModelResponse(
            name=model.name,
            version=model.version,
            alias=context.settings.model_alias,
            loaded_since=served.loaded_since,
            run_id=model.run_id,
            classes=model.classifier.classes,
            metrics=context.service.model_metrics(model.name, model.version),
        )

    @post("/model/reload", status_code=200)
    async def reload_model(self, context: ApiContext) -> ModelHealth:
        """Pick up a newly deployed version now instead of at the next poll."""
        await context.refresh_model()
        served = context.served()
        return ModelHealth("up", served.model.name, served.model.version, served.loaded_since)


class MetricsController(Controller):
    path = "/metrics"
    # Prometheus's text format for scrapers, not an API operation.
    include_in_schema = False

    @get(sync_to_thread=True)
    def scrape(self, context: ApiContext) -> Response[bytes]:
        """The API's own metrics, then the pipeline's, read from the database now."""
        body = generate_latest(REGISTRY) + generate_latest(context.pipeline_metrics)
        return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})
