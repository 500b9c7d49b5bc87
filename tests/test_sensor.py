"""new_uploads_sensor against a real (temporary, SQLite-backed) Dagster instance."""

from __future__ import annotations

import io

from dagster import RunRequest, SensorResult, build_sensor_context, instance_for_test

from docflow_assets.defs.resources import DocflowResource
from docflow_assets.defs.sensors import BATCH_SIZE, new_uploads_sensor
from docflow_assets.ingest import ingest
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus
from tests.test_ingest import page_png


def upload(settings: DocflowSettings, resource: DocflowResource, text: str) -> int:
    return ingest(io.BytesIO(page_png(text)), f"{text}.png", settings, resource.store()).document.id


def evaluate(instance, resource: DocflowResource, cursor: str | None):  # type: ignore[no-untyped-def]
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
        request = result.run_requests[0]
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


def test_big_backlogs_are_split_into_batches(settings: DocflowSettings) -> None:
    resource = DocflowResource(home=str(settings.home))
    ids = [upload(settings, resource, f"doc {n}") for n in range(BATCH_SIZE + 3)]
    with instance_for_test() as instance:
        result = evaluate(instance, resource, None)
    assert isinstance(result, SensorResult)
    batches = requested_ids(result)
    assert [len(batch) for batch in batches] == [BATCH_SIZE, 3]
    assert [i for batch in batches for i in batch] == ids
    assert len({request.run_key for request in result.run_requests}) == 2


def test_documents_already_processed_are_not_requested(settings: DocflowSettings) -> None:
    resource = DocflowResource(home=str(settings.home))
    done = upload(settings, resource, "already processed")
    fresh = upload(settings, resource, "fresh")
    with session_scope(resource.database) as session:
        session.get(Document, done).status = DocumentStatus.OCR_DONE  # type: ignore[union-attr]
    with instance_for_test() as instance:
        result = evaluate(instance, resource, None)
    assert isinstance(result, SensorResult)
    assert requested_ids(result) == [[fresh]]


def settings_day(settings: DocflowSettings, document_id: int) -> str:
    with session_scope(settings.resolved_database_url) as session:
        return session.get(Document, document_id).upload_date.isoformat()  # type: ignore[union-attr]
