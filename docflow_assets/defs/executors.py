"""Where runs execute their steps (``DOCFLOW_EXECUTOR``): in the run's own process (the
embedded default), or on Celery workers that take steps from a broker (``docflow worker`` on
any machine that shares the stores)."""

from __future__ import annotations

from typing import Any

from dagster import ExecutorDefinition, in_process_executor

from docflow_assets.settings import DocflowSettings


def celery_app_config(settings: DocflowSettings) -> dict[str, Any]:
    """The Celery app of the executor and of every worker: the two must agree."""
    return {
        "broker": settings.celery_broker,
        "backend": settings.celery_backend,
        "config_source": {
            # A step is acknowledged when it has finished, not when it was received, and a
            # worker that dies mid-step gives it back: the broker hands it to another worker.
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            # One step at a time per worker: an OCR step keeps every core of its machine busy
            # with its own process pool, so a second step would only wait there. The broker
            # sends a worker multiplier x concurrency steps ahead; with the solo pool's default
            # concurrency (the core count) a busy worker held the next step back from an idle one.
            "worker_prefetch_multiplier": 1,
            "worker_concurrency": 1,
        },
    }


def executor_for(settings: DocflowSettings) -> ExecutorDefinition:
    if settings.executor == "celery":
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_app_config(settings), name="docflow_celery")
    # OCR spreads pages over its own process pool, so ops need no process each.
    return in_process_executor
