from collections import defaultdict

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from docflow_assets.defs.jobs import process_documents_job
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.store.database import session_scope
from docflow_assets.store.repository import new_documents

BATCH_SIZE = 50
PROCESSING_ASSETS = ("raw_documents", "ocr_text", "tfidf_features", "predictions")


def batch_run_config(document_ids: list[int]) -> dict[str, object]:
    config = {"config": {"document_ids": document_ids}}
    return {"ops": {name: config for name in PROCESSING_ASSETS}}


@sensor(
    job=process_documents_job,
    minimum_interval_seconds=15,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches a processing run for each batch of new uploads (cursor: last id seen).",
)
def new_uploads_sensor(
    context: SensorEvaluationContext, docflow: DocflowResource
) -> SensorResult | SkipReason:
    after_id = int(context.cursor or 0)
    with session_scope(docflow.database) as session:
        documents = new_documents(session, after_id, limit=BATCH_SIZE * 10)
        by_day: dict[str, list[int]] = defaultdict(list)
        for document in documents:
            by_day[document.upload_date.isoformat()].append(document.id)
    if not documents:
        return SkipReason(f"no new uploads after document {after_id}")
    requests = []
    for day, ids in sorted(by_day.items()):
        for start in range(0, len(ids), BATCH_SIZE):
            batch = ids[start : start + BATCH_SIZE]
            requests.append(
                RunRequest(
                    run_key=f"documents-{batch[0]}-{batch[-1]}",
                    partition_key=day,
                    run_config=batch_run_config(batch),
                    tags={
                        "docflow/documents": f"{batch[0]}-{batch[-1]}",
                        "docflow/count": str(len(batch)),
                    },
                )
            )
    return SensorResult(run_requests=requests, cursor=str(documents[-1].id))
