"""Health, the served model, metrics."""

from __future__ import annotations

from litestar import Response, get, post
from litestar.datastructures import State
from litestar.plugins.prometheus import PrometheusController
from sqlalchemy import select, text

from docflow_api.dependencies import served_model, settings_of, store_of
from docflow_api.schemas import (
    ComponentHealth,
    HealthResponse,
    ModelHealth,
    ModelResponse,
)
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import ModelMetric


@get("/health", sync_to_thread=True)
def health(state: State) -> Response[HealthResponse]:
    settings = settings_of(state)
    database = ComponentHealth("up")
    try:
        with session_scope(settings.resolved_database_url) as session:
            session.execute(text("SELECT 1"))
    except Exception as error:
        database = ComponentHealth("down", f"{type(error).__name__}: {error}")
    object_store = ComponentHealth("up")
    try:
        store_of(state).ping()
    except Exception as error:
        object_store = ComponentHealth("down", f"{type(error).__name__}: {error}")
    served = state.model_holder.served
    model = (
        ModelHealth("down", settings.model_name, detail=state.model_holder.why_not_served())
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
def model_info(state: State) -> ModelResponse:
    served = served_model(state)
    settings = settings_of(state)
    with session_scope(settings.resolved_database_url) as session:
        rows = session.execute(
            select(ModelMetric.metric, ModelMetric.value).where(
                ModelMetric.model_name == served.model.name,
                ModelMetric.model_version == served.model.version,
            )
        ).all()
    return ModelResponse(
        name=served.model.name,
        version=served.model.version,
        alias=settings.model_alias,
        loaded_since=served.loaded_since,
        run_id=served.model.run_id,
        classes=served.model.classifier.classes,
        metrics={name: value for name, value in rows},
    )


@post("/model/reload", status_code=200)
async def reload_model(state: State) -> ModelHealth:
    """Pick up a newly deployed version now instead of at the next poll."""
    await state.refresh_model()
    served = served_model(state)
    return ModelHealth("up", served.model.name, served.model.version, served.loaded_since)


class MetricsController(PrometheusController):
    path = "/metrics"
    # Prometheus's text format for scrapers, not an API operation.
    include_in_schema = False
