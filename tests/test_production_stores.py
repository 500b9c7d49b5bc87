"""Production storage for real: the local PostgreSQL and a SeaweedFS S3 server on loopback."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from docflow_assets.ingest import RejectedDocument, ingest
from docflow_assets.services import postgres_database
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import get_engine, session_scope
from docflow_assets.store.models import Document, OcrResult
from docflow_assets.store.objects import S3ObjectStore, open_object_store
from tests.helpers import check_deletion, check_retention, check_search, encoded
from tests.servers import BUCKET, SeaweedS3, s3_credentials

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database("stores") as url:
        yield url
        get_engine(url).dispose()


@pytest.fixture
def s3_endpoint(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in s3_credentials().items():
        monkeypatch.setenv(name, value)
    return seaweed.endpoint


@pytest.fixture
def production(postgres_url: str, s3_endpoint: str, tmp_path: Path) -> DocflowSettings:
    prefix = uuid.uuid4().hex[:8]
    return DocflowSettings(
        home=tmp_path,
        database_url=postgres_url,
        object_store=f"s3://{BUCKET}/{prefix}",
        s3_endpoint_url=s3_endpoint,
    )


def objects(settings: DocflowSettings) -> list[str]:
    store = open_object_store(settings.resolved_object_store, settings.s3_endpoint_url)
    assert isinstance(store, S3ObjectStore)
    listed = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store.prefix + "/")
    return [item["Key"] for item in listed.get("Contents", [])]


def test_ingest_on_postgres_and_s3(production: DocflowSettings) -> None:
    store = open_object_store(production.resolved_object_store, production.s3_endpoint_url)
    data = encoded("TIFF", 2)
    first = ingest(io.BytesIO(data), "scan.tif", production, store, label="letter")
    again = ingest(io.BytesIO(data), "again.tif", production, store)
    assert again.duplicate and again.document.id == first.document.id
    assert store.get_bytes(first.document.storage_key) == data
    with pytest.raises(RejectedDocument):
        ingest(io.BytesIO(b"not a document at all"), "x.png", production, store)
    assert objects(production) == [f"{store.prefix}/{first.document.storage_key}"]  # type: ignore[attr-defined]
    with session_scope(production.resolved_database_url) as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 1


def test_ocr_assets_run_on_postgres_and_s3(production: DocflowSettings, tmp_path: Path) -> None:
    from dagster import materialize

    from docflow_assets.defs.documents import ocr_text, raw_documents
    from docflow_assets.defs.resources import DocflowResource
    from docflow_assets.demo.render import render_document

    store = open_object_store(production.resolved_object_store, production.s3_endpoint_url)
    ids = []
    for label in ("invoice", "memo"):
        data, extension, _ = render_document(label, 0, seed=9)
        ids.append(ingest(io.BytesIO(data), f"{label}.{extension}", production, store).document.id)
    with session_scope(production.resolved_database_url) as session:
        day = session.get(Document, ids[0]).upload_date.isoformat()  # type: ignore[union-attr]
    resource = DocflowResource(
        home=str(tmp_path),
        database_url=production.database_url,
        object_store=production.object_store,
        s3_endpoint_url=production.s3_endpoint_url,
    )
    result = materialize(
        [raw_documents, ocr_text],
        resources={"docflow": resource},
        partition_key=day,
        run_config={
            "ops": {
                name: {"config": {"document_ids": ids}} for name in ("raw_documents", "ocr_text")
            }
        },
    )
    assert result.success
    with session_scope(production.resolved_database_url) as session:
        texts = {
            row.document_id: row.text
            for row in session.scalars(select(OcrResult).where(OcrResult.document_id.in_(ids)))
        }
    assert set(texts) == set(ids)
    assert "INVOICE" in texts[ids[0]].upper()


def test_a_document_is_deleted_whole_on_postgres_and_s3(production: DocflowSettings) -> None:
    check_deletion(production)


def test_ocr_text_is_searched_with_postgres_full_text(production: DocflowSettings) -> None:
    check_search(production)


def test_originals_past_the_retention_period_go_on_postgres_and_s3(
    production: DocflowSettings,
) -> None:
    check_retention(production)
