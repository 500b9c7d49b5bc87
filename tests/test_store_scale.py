"""The scale benchmark's smoke run: a home filled in bulk the way benchmarks/store_scale.py
fills 10^5 documents, and every call it times answers on it (timings are the benchmark's)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.store_scale import fill, measure
from docflow_assets.document_service import DocumentService
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.repository import ReviewFilter


def test_a_bulk_filled_home_answers_every_timed_call(tmp_path: Path) -> None:
    settings = DocflowSettings(home=tmp_path / "home")
    ids = fill(settings, 300)
    service = DocumentService.from_settings(settings)

    total, listed = service.documents(1, 50)
    assert total == 300 and len(listed) == 50
    predicted, _ = service.documents(1, 50, "predicted")
    assert 250 <= predicted < 300  # a few wait or failed
    found, hits = service.search("total", 1, 50)  # the index is the real one
    assert found > 0 and all("[total]" in snippet.lower() for _, _, snippet in hits)
    _, unsure = service.review(ReviewFilter(order="unsure"), 1, 10)
    confidences = [latest.confidence for _, latest in unsure if latest is not None]
    assert confidences == sorted(confidences)
    assert sum(service.pipeline_state().documents_by_status.values()) == 300

    timings = measure(settings, ids)
    assert len(timings) >= 18 and all(t.p50_ms > 0 for t in timings.values())
    remaining, _ = service.documents(1, 50)
    assert remaining == 300 - 30  # measure deletes a tenth, at most 1,000
