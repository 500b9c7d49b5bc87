"""Model versions' metrics and the deployment gate's verdicts, as recorded."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from docflow_assets.store.models import ModelMetric


def model_metrics(session: Session, model_name: str, model_version: str) -> dict[str, float]:
    rows = session.execute(
        select(ModelMetric.metric, ModelMetric.value).where(
            ModelMetric.model_name == model_name, ModelMetric.model_version == model_version
        )
    )
    return {metric: value for metric, value in rows}


def record_model_metrics(
    session: Session, model_name: str, model_version: str, split: str, values: dict[str, float]
) -> None:
    for metric, value in values.items():
        session.add(
            ModelMetric(
                model_name=model_name,
                model_version=model_version,
                split=split,
                metric=metric,
                value=value,
            )
        )


def latest_model_metrics(session: Session) -> tuple[str | None, dict[str, float]]:
    """The most recently recorded model version and its metrics."""
    latest = session.scalar(select(func.max(ModelMetric.id)))
    version = session.scalar(select(ModelMetric.model_version).where(ModelMetric.id == latest))
    if version is None:
        return None, {}
    rows = session.execute(
        select(ModelMetric.metric, ModelMetric.value).where(ModelMetric.model_version == version)
    )
    return version, {metric: value for metric, value in rows}


GATE_SPLIT = "gate"


def last_gate_verdict(session: Session) -> tuple[str, bool] | None:
    """The version the deployment gate judged last, and whether it passed."""
    row = session.execute(
        select(ModelMetric.model_version, ModelMetric.value)
        .where(ModelMetric.split == GATE_SPLIT, ModelMetric.metric == "passed")
        .order_by(ModelMetric.id.desc())
        .limit(1)
    ).first()
    return None if row is None else (row[0], row[1] == 1.0)
