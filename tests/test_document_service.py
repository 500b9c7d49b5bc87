"""The service's front door, without Dagster or the API: what the sensors, the demo and the
training asset ask of it, answered from a real embedded home."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from docflow_assets.demo.render import render_document
from docflow_assets.document_service import (
    DocumentNotFound,
    DocumentService,
    InvalidRequest,
    NotReadYet,
)
from docflow_assets.document_service.records_of import DocumentRecord
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.repository import ReviewFilter, add_prediction
from tests.helpers import page_png


@pytest.fixture
def service(tmp_path: Path) -> DocumentService:
    return DocumentService.from_settings(DocflowSettings(home=tmp_path / "home"))


def _upload(service: DocumentService, text: str) -> int:
    return service.ingest(io.BytesIO(page_png(text)), f"{text}.png").document.id


def test_uploads_after_the_cursor_are_new_and_those_behind_it_stalled(
    service: DocumentService,
) -> None:
    first, second, third = (_upload(service, f"upload {n}") for n in range(3))
    later = datetime.now(UTC) + timedelta(minutes=1)
    waiting = service.uploads_waiting(first, stalled_before=later, limit=10)
    assert [d.id for d in waiting.new] == [second, third]
    assert [d.id for d in waiting.stalled] == [first]
    assert waiting.new[0].upload_date == datetime.now(UTC).date()
    # Uploaded just now: not stalled yet however far behind the cursor.
    earlier = datetime.now(UTC) - timedelta(minutes=5)
    assert service.uploads_waiting(third, stalled_before=earlier, limit=10).stalled == []
    assert service.uploads_waiting(0, stalled_before=later, limit=1).new[0].id == first


def test_a_failed_run_fails_only_what_it_left_unfinished(service: DocumentService) -> None:
    ids = [_upload(service, f"in a run {n}") for n in range(3)]
    assert service.processed_count(ids) == 0 and service.settled_count(ids) == 0
    assert service.fail_unfinished(ids, "processing run r1 failed: boom") == 3
    assert service.fail_unfinished(ids, "processing run r2 failed: again") == 0
    assert service.settled_count(ids) == service.processed_count(ids) == 3
    outcome = service.outcome(ids)
    assert outcome.statuses == {"failed": 3} and outcome.with_predictions == 0
    assert service.document(ids[0]).status_reason == "processing run r1 failed: boom"
    assert service.pipeline_state().failures_by_kind == {"run_failed": 3}


def test_labels_wait_for_ocr_before_they_can_be_learned(service: DocumentService) -> None:
    document_id = _upload(service, "a memo to be labelled")
    service.label(document_id, " Memo ", "review")
    assert service.document(document_id).label == "memo"
    now = service.labels_now()
    assert now.labels.empty and now.labelled_documents_still_in_ocr == 1
    taken = service.take_snapshot("20261203-000000-0")
    assert taken.snapshot.rows == 0 and taken.labelled_documents_still_in_ocr == 1
    assert service.snapshot("20261203-000000-0") is not None
    assert service.snapshot("never-taken") is None
    assert service.snapshot_labels() is not None


def test_bad_requests_are_named_and_change_nothing(service: DocumentService) -> None:
    document_id = _upload(service, "nothing changes")
    for bad in ("", "   ", "not a label!", "x" * 65):
        with pytest.raises(InvalidRequest):
            service.label(document_id, bad, "api")
    assert service.document(document_id).label is None
    with pytest.raises(DocumentNotFound, match="document 999 does not exist"):
        service.label(999, "memo", "api")
    with pytest.raises(InvalidRequest, match="unknown status 'lost'"):
        service.documents(1, 50, "lost")
    with pytest.raises(NotReadYet, match=f"document {document_id} has not been read yet"):
        service.export(document_id, "pdf")
    assert service.first_upload_day() == datetime.now(UTC).date()


def _new_scan(service: DocumentService, label: str, number: int) -> DocumentRecord:
    """A rendered scan of class ``label`` the trained home has not seen, uploaded."""
    data, extension, _ = render_document(label, number, seed=13)
    return service.ingest(io.BytesIO(data), f"new-{label}.{extension}").document


def test_a_batch_is_read_featurised_and_scored_by_the_served_version(
    home_copy: DocflowSettings,
) -> None:
    service = DocumentService.from_settings(home_copy)
    document = _new_scan(service, "invoice", 91)
    day = document.upload_date
    read = service.read(day, [document.id])
    assert read.documents == 1 and read.pages == document.pages and not read.failed
    features = service.featurise(day, [document.id])
    served = service.registry.version_for_alias(home_copy.model_alias)
    assert features is not None and features.rows == 1 and features.model_version == served
    scores = service.score(day, [document.id])
    assert scores is not None and scores.model_version == served
    (latest,) = service.history(document.id)
    assert latest.source == "batch" and latest.model_version == served
    assert service.document(document.id).status == "predicted"
    # The broker delivers the step again when its acknowledgement was lost: scored once.
    again = service.score(day, [document.id])
    assert again is not None and again.by_class == {} and again.already_scored == 1
    assert len(service.history(document.id)) == 1


def test_online_reading_reads_once_and_predicts_with_the_model_given(
    home_copy: DocflowSettings,
) -> None:
    service = DocumentService.from_settings(home_copy)
    document = _new_scan(service, "letter", 92)
    text, ran = service.text(document.id)
    assert ran and text.strip()
    again, ran_again = service.text(document.id)
    assert (again, ran_again) == (text, False)  # stored: not read twice
    deployed = service.registry.load_alias(home_copy.model_alias)
    assert deployed is not None
    made = service.predict(deployed.classifier, deployed.name, deployed.version, document.id)
    assert not made.ran_ocr and made.scored.predicted_class == "letter"
    assert [p.source for p in service.history(document.id)] == ["api"]


def test_the_review_list_orders_and_filters_by_each_documents_newest_prediction(
    service: DocumentService,
) -> None:
    ids = [_upload(service, f"review {n}") for n in range(6)]
    scored = {ids[0]: [("memo", 0.9), ("invoice", 0.2)], ids[1]: [("memo", 0.5)]}
    scored |= {ids[2]: [("invoice", 0.3), ("memo", 0.95)], ids[3]: [("invoice", 0.7)]}
    with session_scope(service.settings.resolved_database_url) as session:
        for document_id, predictions in scored.items():
            for predicted_class, confidence in predictions:
                scores = {predicted_class: confidence}
                add_prediction(
                    session, document_id, "m", "1", predicted_class, confidence, scores, "batch"
                )
    # Newest prediction first in confidence order, then the documents without one, oldest first;
    # a page boundary anywhere gives the same list.
    expected = [ids[0], ids[1], ids[3], ids[2], ids[4], ids[5]]
    for page_size in (1, 2, 4, 6):
        listed = []
        for page in range(1, 7 // page_size + 2):
            total, rows = service.review(ReviewFilter(order="unsure"), page, page_size)
            listed += [document.id for document, _ in rows]
        assert total == 6 and listed == expected, page_size
    total, rows = service.review(ReviewFilter(predicted_class="invoice", order="unsure"), 1, 10)
    assert total == 2 and [document.id for document, _ in rows] == [ids[0], ids[3]]
    assert [latest.confidence for _, latest in rows if latest] == [0.2, 0.7]
    _, newest_first = service.review(ReviewFilter(predicted_class="memo"), 1, 10)
    assert [document.id for document, _ in newest_first] == [ids[2], ids[1]]
