"""new_uploads_sensor against a real (temporary, SQLite-backed) Dagster instance."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    FilesystemIOManager,
    RunRequest,
    SensorResult,
    build_run_status_sensor_context,
    build_sensor_context,
    instance_for_test,
)

from docflow_assets.definitions import defs
from docflow_assets.defs.documents import ocr_processes
from docflow_assets.defs.jobs import process_documents_job, score_documents_job
from docflow_assets.defs.resources import DocflowResource
from docflow_assets.defs.sensors import (
    STALLED_AFTER,
    batch_run_config,
    failed_documents_sensor,
    new_uploads_sensor,
)
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, utcnow
from tests.helpers import page_png


def upload(settings: DocflowSettings, resource: DocflowResource, text: str) -> int:
    return resource.service().ingest(io.BytesIO(page_png(text)), f"{text}.png").document.id


def evaluate(instance, resource: DocflowResource, cursor: str | None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, resources={"docflow": resource}
    )
    return new_uploads_sensor(context)


def requested_ids(result: SensorResult) -> list[list[int]]:
    requests: list[RunRequest] = list(result.run_requests or [])
    return [request.run_config["ops"]["ocr_text"]["config"]["document_ids"] for request in requests]


def test_new_uploads_are_requested_once_and_the_cursor_advances(settings: DocflowSettings) -> None:
    resource = DocflowResource(home=str(settings.home))
    with instance_for_test() as instance:
        first = evaluate(instance, resource, None)
        assert not isinstance(first, SensorResult)  # a SkipReason: nothing uploaded yet

        ids = [upload(settings, resource, f"document {n}") for n in range(3)]
        result = evaluate(instance, resource, None)
        assert isinstance(result, SensorResult)
        assert requested_ids(result) == [ids]
        [request, *_] = result.run_requests or []
        assert request.partition_key == settings_day(settings, ids[0])
        assert set(request.run_config["ops"]) == {
            "raw_documents",
            "ocr_text",
            "tfidf_features",
            "predictions",
        }
        assert result.cursor == str(ids[-1])

        again = evaluate(instance, resource, result.cursor)
        assert not isinstance(again, SensorResult)

        newer = upload(settings, resource, "document late")
        later = evaluate(instance, resource, result.cursor)
        assert isinstance(later, SensorResult)
        assert requested_ids(later) == [[newer]]
        assert later.cursor == str(newer)


def test_big_backlogs_are_split_into_batches_of_one_size(
    settings: DocflowSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCFLOW_BATCH_SIZE", "4")
    resource = DocflowResource(home=str(settings.home))
    ids = [upload(settings, resource, f"doc {n}") for n in range(7)]
    with instance_for_test() as instance:
        result = evaluate(instance, resource, None)
    assert isinstance(result, SensorResult)
    batches = requested_ids(result)
    assert [len(batch) for batch in batches] == [4, 3]
    assert batches == [ids[0::2], ids[1::2]]  # dealt out in turn
    assert len({request.run_key for request in result.run_requests or []}) == 2


def test_documents_already_processed_are_not_requested(settings: DocflowSettings) -> None:
    resource = DocflowResource(home=str(settings.home))
    done = upload(settings, resource, "already processed")
    fresh = upload(settings, resource, "fresh")
    with session_scope(settings.resolved_database_url) as session:
        session.get(Document, done).status = DocumentStatus.OCR_DONE  # type: ignore[union-attr]
    with instance_for_test() as instance:
        result = evaluate(instance, resource, None)
    assert isinstance(result, SensorResult)
    assert requested_ids(result) == [[fresh]]


def settings_day(settings: DocflowSettings, document_id: int) -> str:
    with session_scope(settings.resolved_database_url) as session:
        return session.get(Document, document_id).upload_date.isoformat()  # type: ignore[union-attr]


def test_documents_stalled_behind_the_cursor_are_requested_again(
    settings: DocflowSettings,
) -> None:
    resource = DocflowResource(home=str(settings.home))
    lost = upload(settings, resource, "its run was lost")
    with session_scope(settings.resolved_database_url) as session:
        document = session.get(Document, lost)
        assert document is not None
        document.uploaded_at = utcnow() - STALLED_AFTER - timedelta(minutes=1)
    with instance_for_test() as instance:
        result = evaluate(instance, resource, str(lost))
        assert isinstance(result, SensorResult)
        assert requested_ids(result) == [[lost]]
        assert [request.run_key for request in result.run_requests or []] == [None]
        assert result.cursor == str(lost)

        instance.add_run(
            DagsterRun(
                job_name=process_documents_job.name,
                run_config=batch_run_config([lost]),
                status=DagsterRunStatus.STARTED,
            )
        )
        waiting = evaluate(instance, resource, str(lost))
        assert not isinstance(waiting, SensorResult)  # a run has it in hand: nothing to do


def failed_run(instance: DagsterInstance, settings: DocflowSettings, ids: list[int]) -> DagsterRun:
    """A real processing run that fails: its object store does not answer."""
    unreachable = DocflowResource(
        home=str(settings.home),
        object_store="s3://docflow/unreachable",
        s3_endpoint_url="http://127.0.0.1:9",
        outage_retry_seconds=0,
    )
    day = settings_day(settings, ids[0])
    result = defs.resolve_job_def(process_documents_job.name).execute_in_process(
        instance=instance,
        partition_key=day,
        run_config=batch_run_config(ids),
        resources={"docflow": unreachable, "io_manager": FilesystemIOManager()},
        raise_on_error=False,
    )
    assert not result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return run


def evaluate_failure(instance: DagsterInstance, run: DagsterRun, resource: DocflowResource) -> None:
    records = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.RUN_FAILURE).records
    event = records[-1].event_log_entry.dagster_event
    assert event is not None
    context = build_run_status_sensor_context(
        sensor_name=failed_documents_sensor.name,
        dagster_event=event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"docflow": resource},
    ).for_run_failure()
    failed_documents_sensor(context)


def statuses(settings: DocflowSettings, ids: list[int]) -> dict[int, tuple[str, str | None]]:
    with session_scope(settings.resolved_database_url) as session:
        return {
            i: (document.status, document.status_reason)
            for i in ids
            if (document := session.get(Document, i)) is not None
        }


def test_a_run_that_failed_for_good_marks_its_documents_failed_with_the_reason(
    settings: DocflowSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "docflow")
    resource = DocflowResource(home=str(settings.home))
    ids = [upload(settings, resource, f"failing {n}") for n in range(2)]
    with instance_for_test() as instance:
        run = failed_run(instance, settings, ids)
        evaluate_failure(instance, run, resource)
    for status, reason in statuses(settings, ids).values():
        assert status == DocumentStatus.FAILED
        assert reason is not None and run.run_id in reason
        assert "step raw_documents" in reason and "is unreachable" in reason


def test_a_run_the_daemon_will_retry_leaves_its_documents_waiting(
    settings: DocflowSettings,
) -> None:
    resource = DocflowResource(home=str(settings.home))
    ids = [upload(settings, resource, "retried")]
    retries = {"run_retries": {"enabled": True, "max_retries": 2}}
    with instance_for_test(overrides=retries) as instance:
        run = failed_run(instance, settings, ids)
        evaluate_failure(instance, run, resource)
    assert statuses(settings, ids)[ids[0]] == (DocumentStatus.UPLOADED, None)


def test_processing_runs_in_flight_share_the_ocr_processes_when_steps_run_in_process(
    tmp_path: Path,
) -> None:
    in_process = DocflowSettings(home=tmp_path / "home", ocr_workers=2)
    on_celery = in_process.model_copy(update={"executor": "celery"})

    def run(job: str, status: DagsterRunStatus) -> DagsterRun:
        return DagsterRun(job_name=job, status=status)

    with instance_for_test() as instance:
        instance.add_run(run(process_documents_job.name, DagsterRunStatus.STARTED))
        instance.add_run(run(process_documents_job.name, DagsterRunStatus.SUCCESS))
        instance.add_run(run(process_documents_job.name, DagsterRunStatus.NOT_STARTED))
        instance.add_run(run(score_documents_job.name, DagsterRunStatus.STARTED))
        assert ocr_processes(instance, in_process) == 2  # the only processing run reading
        instance.add_run(run(process_documents_job.name, DagsterRunStatus.STARTING))
        assert ocr_processes(instance, in_process) == 1  # two runs, one process each
        instance.add_run(run(process_documents_job.name, DagsterRunStatus.STARTED))
        assert ocr_processes(instance, in_process) == 1  # never none
        assert ocr_processes(instance, on_celery) == 2  # a worker is a machine of its own
