"""The retention period: a daily run deletes the originals of processed documents older than
DOCFLOW_RETENTION_DAYS (their text, predictions and labels stay)."""

from datetime import UTC, datetime

from dagster import (
    DefaultScheduleStatus,
    OpExecutionContext,
    Output,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    job,
    op,
    schedule,
)

from docflow_assets.defs.jobs import EXECUTOR
from docflow_assets.defs.resources import DocflowResource


@op(description="Deletes the originals past the retention period; text and predictions stay.")
def expire_originals(context: OpExecutionContext, docflow: DocflowResource) -> Output[int]:
    expired = docflow.service().expire_originals(datetime.now(UTC))
    context.log.info(f"deleted the originals of {len(expired)} documents")
    return Output(
        len(expired),
        metadata={"documents": len(expired), "first_ids": str(expired[:20])},
    )


@job(executor_def=EXECUTOR, description="Apply the retention period to original files once.")
def retention_job() -> None:
    expire_originals()


@schedule(
    job=retention_job,
    cron_schedule="0 3 * * *",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Every night: originals older than DOCFLOW_RETENTION_DAYS go (when it is set).",
)
def retention_schedule(
    context: ScheduleEvaluationContext, docflow: DocflowResource
) -> RunRequest | SkipReason:
    days = docflow.settings().retention_days
    if days is None:
        return SkipReason("DOCFLOW_RETENTION_DAYS is unset: originals are kept")
    return RunRequest(tags={"docflow/retention_days": f"{days:g}"})
