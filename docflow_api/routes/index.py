"""The front page: where the API's docs and the other UIs are."""

from __future__ import annotations

from html import escape

from litestar import MediaType, get

from docflow_assets.settings import DocflowSettings


@get("/", media_type=MediaType.HTML, include_in_schema=False, sync_to_thread=False)
def index(settings: DocflowSettings) -> str:
    tracking = settings.resolved_mlflow_tracking_uri
    mlflow = (
        f'<a href="{escape(tracking)}">MLflow UI</a>'
        if tracking.startswith(("http://", "https://"))
        else f"MLflow UI: <code>DOCFLOW_HOME={escape(str(settings.resolved_home))} "
        "docflow mlflow-ui</code>"
    )
    links = [
        '<a href="/review">Review documents</a> (page images, text, predictions, labels)',
        '<a href="/schema/swagger">API docs (Swagger UI)</a>',
        '<a href="/schema/redoc">API docs (ReDoc)</a>',
        '<a href="/schema/openapi.json">OpenAPI document</a>',
        '<a href="/health">health</a>',
        f'<a href="{escape(settings.dagster_ui_url)}">Dagster UI</a> (pipelines, runs, checks)',
        mlflow + " (training runs and registered models)",
    ]
    items = "".join(f"<li>{link}</li>" for link in links)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Docflow</title>'
        "</head><body><h1>Docflow</h1><p>Document OCR and classification.</p>"
        f"<ul>{items}</ul></body></html>"
    )
