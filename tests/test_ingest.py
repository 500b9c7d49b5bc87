"""Ingestion validates by content, stores atomically and rejects cleanly."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from docflow_assets.ingest import RejectedDocument, ingest, ingest_folder, read_labels
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import ensure_schema, session_scope
from docflow_assets.store.models import Document
from docflow_assets.store.objects import LocalObjectStore
from tests.helpers import (
    check_deletion,
    check_retention,
    check_search,
    encoded,
    page,
    pdf_of_huge_pages,
    pdf_promising_three_pages,
)


@pytest.fixture
def store(settings: DocflowSettings) -> LocalObjectStore:
    ensure_schema(settings.resolved_database_url)
    return LocalObjectStore(settings.resolved_object_store)


def stored_objects(store: LocalObjectStore) -> list[Path]:
    return [path for path in store.root.rglob("*") if path.is_file()]


def document_count(settings: DocflowSettings) -> int:
    with session_scope(settings.resolved_database_url) as session:
        return int(session.scalar(select(func.count()).select_from(Document)) or 0)


@pytest.mark.parametrize(
    ("image_format", "pages", "content_type"),
    [
        ("PNG", 1, "image/png"),
        ("JPEG", 1, "image/jpeg"),
        ("BMP", 1, "image/bmp"),
        ("WEBP", 1, "image/webp"),
        ("TIFF", 3, "image/tiff"),
        ("PDF", 2, "application/pdf"),
    ],
)
def test_accepted_formats_are_recognised_by_content(
    settings: DocflowSettings,
    store: LocalObjectStore,
    image_format: str,
    pages: int,
    content_type: str,
) -> None:
    data = encoded(image_format, pages)
    # A misleading extension must not matter: the bytes decide.
    result = ingest(io.BytesIO(data), "scan.txt", settings, store, label="Invoice")
    document = result.document
    assert not result.duplicate
    assert document.content_type == content_type
    assert document.pages == pages
    assert document.size_bytes == len(data)
    assert document.label == "invoice" and document.label_source == "upload"
    assert store.get_bytes(document.storage_key) == data
    assert document.storage_key.endswith(document.sha256)


def test_real_multipage_pdf_counts_every_page(
    settings: DocflowSettings, store: LocalObjectStore, real_scans: Path
) -> None:
    import pypdfium2

    data = (real_scans / "multipage.pdf").read_bytes()
    expected = len(pypdfium2.PdfDocument(data))
    result = ingest(io.BytesIO(data), "multipage.pdf", settings, store)
    assert expected > 1
    assert result.document.pages == expected


def bomb_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buffer, format="PNG")
    return buffer.getvalue()


def truncated_png() -> bytes:
    return encoded("PNG")[:300]


def gif() -> bytes:
    buffer = io.BytesIO()
    page().save(buffer, format="GIF")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data_factory", "code"),
    [
        (lambda: b"", "empty"),
        (lambda: b"plain text, not a document" * 10, "unsupported_type"),
        (gif, "unsupported_type"),
        (truncated_png, "corrupt"),
        (lambda: b"%PDF-1.7\n garbage that is no PDF", "corrupt"),
        (bomb_png, "decompression_bomb"),
        (lambda: encoded("PNG") + b"\0" * 600_000, "too_large"),
        (pdf_promising_three_pages, "corrupt"),
        (pdf_of_huge_pages, "too_many_pixels"),
    ],
    ids=[
        "empty",
        "text",
        "gif",
        "truncated-png",
        "broken-pdf",
        "bomb",
        "too-large",
        "pdf-count-lies",
        "pdf-pixel-budget",
    ],
)
def test_rejections_have_a_reason_and_leave_nothing_behind(
    tmp_path: Path,
    data_factory,
    code: str,
) -> None:
    settings = DocflowSettings(home=tmp_path, max_upload_bytes=500_000, max_image_pixels=50_000_000)
    ensure_schema(settings.resolved_database_url)
    store = LocalObjectStore(settings.resolved_object_store)
    with pytest.raises(RejectedDocument) as raised:
        ingest(io.BytesIO(data_factory()), "upload.bin", settings, store)
    assert raised.value.code == code
    assert raised.value.message
    assert stored_objects(store) == []
    assert document_count(settings) == 0


def test_bad_label_is_rejected_before_anything_is_stored(
    settings: DocflowSettings, store: LocalObjectStore
) -> None:
    with pytest.raises(RejectedDocument) as raised:
        ingest(io.BytesIO(encoded("PNG")), "a.png", settings, store, label="in/voice; drop")
    assert raised.value.code == "bad_label"
    assert stored_objects(store) == [] and document_count(settings) == 0


def test_duplicate_upload_returns_the_stored_document(
    settings: DocflowSettings, store: LocalObjectStore
) -> None:
    data = encoded("PNG")
    first = ingest(io.BytesIO(data), "a.png", settings, store, label="memo")
    second = ingest(io.BytesIO(data), "copy-of-a.png", settings, store)
    assert second.duplicate and not first.duplicate
    assert second.document.id == first.document.id
    assert second.document.filename == "a.png"
    assert document_count(settings) == 1
    assert len(stored_objects(store)) == 1


def test_folder_ingest_applies_labels_and_skips_duplicates(
    settings: DocflowSettings, store: LocalObjectStore, tmp_path: Path
) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    (folder / "a.png").write_bytes(encoded("PNG"))
    (folder / "b.tif").write_bytes(encoded("TIFF", 2))
    (folder / "same-as-a.png").write_bytes(encoded("PNG"))
    (folder / "notes.bin").write_bytes(b"not a document")
    (folder / "labels.csv").write_text("filename,label\na.png,letter\nb.tif,Bank Statement\n")
    report = ingest_folder(folder, settings, store, read_labels(folder / "labels.csv"))
    assert sorted(d.filename for d in report.added) == ["a.png", "b.tif"]
    assert {d.filename: d.label for d in report.added} == {
        "a.png": "letter",
        "b.tif": "bank_statement",
    }
    assert [d.filename for d in report.duplicates] == ["a.png"]
    assert list(report.rejected) == ["notes.bin"]
    again = ingest_folder(folder, settings, store)
    assert again.added == [] and len(again.duplicates) == 3


def test_folder_ingest_reads_sub_folders_relabels_from_a_corrected_csv_and_names_strays(
    settings: DocflowSettings, store: LocalObjectStore, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from docflow_assets.cli import main

    folder = tmp_path / "inbox"
    (folder / "march").mkdir(parents=True)
    (folder / "top.png").write_bytes(encoded("PNG"))
    (folder / "march" / "scan.tif").write_bytes(encoded("TIFF", 2))
    labels = folder / "labels.csv"
    labels.write_text("filename,label\ntop.png,letter\nmarch/scan.tif,memo\nTOP.PNG,invoice\n")
    first = ingest_folder(folder, settings, store, read_labels(labels))
    assert {d.filename: d.label for d in first.added} == {
        "top.png": "letter",
        "scan.tif": "memo",
    }
    assert first.unmatched_labels == ["TOP.PNG"]  # names match exactly, case included

    labels.write_text("filename,label\ntop.png,invoice\nscan.tif,memo\n")  # corrected, bare name
    again = ingest_folder(folder, settings, store, read_labels(labels))
    assert again.added == [] and [d.label for d in again.relabelled] == ["invoice"]
    assert again.unmatched_labels == []
    with session_scope(settings.resolved_database_url) as session:
        stored = dict(session.execute(select(Document.filename, Document.label)).all())
    assert stored == {"top.png": "invoice", "scan.tif": "memo"}

    env = {"DOCFLOW_HOME": str(settings.resolved_home)}
    labels.write_text("filename,label\nTop.png,letter\n")
    shown = CliRunner().invoke(main, ["ingest", str(folder), "--labels", str(labels)], env=env)
    said = " ".join(shown.output.split())  # as the terminal wrapped it
    assert shown.exit_code == 1 and "no file named Top.png" in said
    assert "did you mean top.png?" in said
    document_id = first.added[0].id
    relabel = CliRunner().invoke(main, ["label", str(document_id), "Bank Statement"], env=env)
    assert relabel.exit_code == 0 and "bank_statement" in relabel.output
    refused = CliRunner().invoke(main, ["label", str(document_id), "no/slashes"], env=env)
    assert refused.exit_code == 1 and "must be 1-64 letters" in refused.output


def test_a_document_is_deleted_whole_on_sqlite_and_a_folder(settings: DocflowSettings) -> None:
    check_deletion(settings)


def test_ocr_text_is_searched_with_sqlite_fts5(settings: DocflowSettings) -> None:
    check_search(settings)


def test_originals_past_the_retention_period_go_on_sqlite_and_a_folder(
    settings: DocflowSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster import DagsterInstance, build_schedule_context
    from litestar.testing import TestClient

    from docflow_api.app import create_app
    from docflow_assets.definitions import defs
    from docflow_assets.defs.resources import DocflowResource

    def nightly_run(kept_for: DocflowSettings) -> int:
        monkeypatch.setenv("DOCFLOW_RETENTION_DAYS", f"{kept_for.retention_days:g}")
        result = defs.resolve_job_def("retention_job").execute_in_process(
            resources={"docflow": DocflowResource(home=str(kept_for.home))}
        )
        monkeypatch.delenv("DOCFLOW_RETENTION_DAYS")
        assert result.success
        return int(result.output_for_node("expire_originals"))

    kept, expired = check_retention(settings, nightly_run)
    with TestClient(create_app(settings)) as client:
        assert client.get(f"/document/{kept}/file").status_code == 200
        gone = client.get(f"/document/{expired}/file")
        assert gone.status_code == 410 and "retention period" in gone.json()["detail"]

    schedule = defs.resolve_schedule_def("retention_schedule")
    resources = {"docflow": DocflowResource(home=str(settings.home))}
    with DagsterInstance.ephemeral() as instance:
        unset = schedule.evaluate_tick(build_schedule_context(instance, resources=resources))
        assert not unset.run_requests and "unset" in str(unset.skip_message)
        monkeypatch.setenv("DOCFLOW_RETENTION_DAYS", "30")
        resources = {"docflow": DocflowResource(home=str(settings.home))}
        due = schedule.evaluate_tick(build_schedule_context(instance, resources=resources))
        assert due.run_requests and len(due.run_requests) == 1
