"""The front page: the state of the pipeline and the model, an upload box, and where the
API's docs and the other UIs are."""

from __future__ import annotations

from litestar import Request, get
from litestar.response import Template

from docflow_api.dependencies import ApiContext
from docflow_api.security import api_keys, carries_valid_key
from docflow_assets.store.repository import PredictionFilter

RECENT_PREDICTIONS = 10


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "min"), (seconds, "s")]
    return " ".join(f"{value} {unit}" for value, unit in parts if value)[:24] or "0 s"


@get("/", include_in_schema=False, sync_to_thread=True)
def index(context: ApiContext, request: Request) -> Template:
    """Open to all (it says where everything is); with API keys on, the state is shown only
    to a caller with a key (header or the review page's cookie)."""
    settings = context.settings
    tracking = settings.resolved_mlflow_tracking_uri
    page: dict[str, object] = {
        "dagster_ui": settings.dagster_ui_url,
        "mlflow_url": tracking if tracking.startswith(("http://", "https://")) else None,
        "home": str(settings.resolved_home),
        "threshold": settings.confidence_threshold,
    }
    keys = api_keys(settings)
    if keys and not carries_valid_key(request, keys):
        return Template(template_name="index.html", context={**page, "locked": True})
    state = context.service.pipeline_state()
    _, recent = context.service.predictions(PredictionFilter(), 1, RECENT_PREDICTIONS)
    return Template(
        template_name="index.html",
        context={
            **page,
            "model": context.model_holder.state(),
            "state": state,
            "waiting": _duration(state.oldest_waiting_seconds),
            "recent": recent,
        },
    )
