"""The Litestar application: a thin adapter over Docflow's domain code."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio.to_thread
from litestar import Litestar
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.datastructures import State
from litestar.exceptions import ClientException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import RedocRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import OperationalError
from threadpoolctl import threadpool_limits

from docflow_api import metrics
from docflow_api.batch_scorer import BatchScorer
from docflow_api.dependencies import ApiContext, provide
from docflow_api.errors import (
    DOMAIN_ERRORS,
    bad_request,
    domain_error,
    internal_error,
    left_to_pipeline,
    login_required,
    ocr_busy,
    unavailable,
    undecodable,
)
from docflow_api.model_holder import ModelHolder
from docflow_api.routes.documents import DocumentController
from docflow_api.routes.index import index
from docflow_api.routes.model import MetricsController, ModelController
from docflow_api.routes.predictions import PredictionController
from docflow_api.routes.records import PredictionRecordsController
from docflow_api.routes.review import ReviewController
from docflow_api.security import LoginRequired, api_key_guard, api_keys
from docflow_assets.document_service import (
    DocumentService,
    LeftToPipeline,
    OcrBusy,
)
from docflow_assets.ml.registry import Registry
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema
from docflow_assets.store.objects import (
    StoreUnavailable,
)

logger = logging.getLogger("docflow.api")


MULTIPART_OVERHEAD_BYTES = 64 * 1024
TEMPLATES = Path(__file__).parent / "templates"
# Under /schema, which API keys leave open, like the docs pages that load them.
DOCS_ASSETS = "/schema/assets"
SWAGGER = f"{DOCS_ASSETS}/swagger-ui-dist"
FAVICON = f"<link rel='icon' type='image/png' href='{SWAGGER}/favicon-32x32.png'>"


def docs_assets_folder() -> Path:
    """drf-spectacular-sidecar's static files (Swagger UI 5, ReDoc), found without importing
    the package, which would import Django."""
    spec = importlib.util.find_spec("drf_spectacular_sidecar")
    assert spec is not None and spec.submodule_search_locations, "drf-spectacular-sidecar"
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "static" / "drf_spectacular_sidecar"


BATCH_SLICE = 64


def settle_heap() -> None:
    """Take what is loaded now (libraries, the served model) out of the garbage collector's
    sight. Otherwise every full collection walks those millions of long-lived objects and
    stalls all requests: pauses of up to 0.28 s under load, the p99 latency at concurrency 32.
    Run on each model swap, so the replaced model's cycles are collected once first."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def create_app(settings: DocflowSettings | None = None) -> Litestar:
    settings = settings or DocflowSettings()
    registry = Registry.from_settings(settings)
    holder = ModelHolder(registry, settings.model_alias)

    async def refresh_model() -> None:
        try:
            if await anyio.to_thread.run_sync(holder.refresh):
                served = holder.served
                assert served is not None
                metrics.MODEL_INFO.clear()
                metrics.MODEL_INFO.labels(served.model.name, served.model.version).set(1)
                logger.info("serving %s version %s", served.model.name, served.model.version)
                settle_heap()
        except Exception:
            logger.exception("could not load the deployed model; keeping the one served")

    service = DocumentService.from_settings(settings, registry)
    pipeline_metrics = CollectorRegistry(auto_describe=False)
    pipeline_metrics.register(metrics.PipelineCollector(service.pipeline_state))
    context = ApiContext(
        settings=settings,
        service=service,
        model_holder=holder,
        refresh_model=refresh_model,
        scoring_executor=ThreadPoolExecutor(
            settings.api_scoring_threads, thread_name_prefix="docflow-scoring"
        ),
        batch_executor=ThreadPoolExecutor(1, thread_name_prefix="docflow-batch"),
        batch_scorer=BatchScorer(BATCH_SLICE),
        online_ocr_slots=threading.BoundedSemaphore(settings.api_online_ocr_slots),
        pipeline_metrics=pipeline_metrics,
    )

    async def poll_registry() -> None:
        while True:
            await asyncio.sleep(settings.model_poll_seconds)
            await refresh_model()

    async def startup(app: Litestar) -> None:
        # A request's model products are tiny: BLAS threads only wake up to fight the server's
        # own threads for the cores (the hidden-layer product of one text: 21 us with them,
        # 12 us without, on 2 cores). Concurrency comes from requests and uvicorn workers.
        threadpool_limits(limits=1, user_api="blas")
        await anyio.to_thread.run_sync(ensure_schema, settings.resolved_database_url)
        await refresh_model()
        app.state.poller = asyncio.create_task(poll_registry())

    async def shutdown(app: Litestar) -> None:
        app.state.poller.cancel()
        context.scoring_executor.shutdown(wait=False, cancel_futures=True)
        context.batch_executor.shutdown(wait=False, cancel_futures=True)
        context.batch_scorer.close()

    keys = api_keys(settings)
    prometheus = PrometheusConfig(app_name="docflow", group_path=True, exclude=["/metrics"])
    return Litestar(
        route_handlers=[
            PredictionController,
            PredictionRecordsController,
            DocumentController,
            ModelController,
            MetricsController,
            ReviewController,
            index,
            create_static_files_router(
                DOCS_ASSETS, [docs_assets_folder()], include_in_schema=False, name="docs-assets"
            ),
        ],
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        dependencies=provide(context),
        on_startup=[startup],
        on_shutdown=[shutdown],
        guards=[api_key_guard(keys)] if keys else [],
        middleware=[prometheus.middleware],
        # The error handlers see the context here (they are not given dependencies).
        state=State({"context": context}),
        request_max_body_size=settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES,
        exception_handlers={
            500: internal_error,
            UnicodeDecodeError: undecodable,
            ClientException: bad_request,
            LeftToPipeline: left_to_pipeline,
            OcrBusy: ocr_busy,
            LoginRequired: login_required,
            RecursionError: undecodable,
            StoreUnavailable: unavailable,
            OperationalError: unavailable,
            **dict.fromkeys(DOMAIN_ERRORS, domain_error),
        },
        openapi_config=OpenAPIConfig(
            title="Docflow API",
            version="0.1.0",
            path="/schema",
            render_plugins=[
                SwaggerRenderPlugin(
                    js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                    css_url=f"{SWAGGER}/swagger-ui.css",
                    standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
                    favicon=FAVICON,
                    path=["/", "/swagger"],
                ),
                RedocRenderPlugin(
                    js_url=f"{DOCS_ASSETS}/redoc/bundles/redoc.standalone.js",
                    google_fonts=False,
                    favicon=FAVICON,
                ),
            ],
            description="Document OCR and classification: upload scans, read their text, "
            "predict their class, correct labels that train the next model.",
            components=Components(
                security_schemes={
                    "apiKey": SecurityScheme(
                        type="apiKey",
                        name="X-API-Key",
                        security_scheme_in="header",
                        description="One of DOCFLOW_API_KEYS (when set; /health, /metrics "
                        "and the docs need none).",
                    )
                }
            ),
            security=[{"apiKey": []}] if keys else None,
        ),
    )
