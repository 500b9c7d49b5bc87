"""What each of the service's steps reports back to its adapter."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, NamedTuple

from docflow_assets.ocr.language import page_script, script_mismatch
from docflow_assets.ocr.pipeline import DocumentText

if TYPE_CHECKING:
    from docflow_assets.ml.classifier import ScoredText


# A page read with less mean word confidence than this counts as a low-confidence page.
MIN_MEAN_CONFIDENCE = 0.6
Row = dict[str, object]


@dataclass(frozen=True)
class OriginalsReport:
    documents: int
    pages: int
    total_bytes: int
    missing: list[int]
    content_types: dict[str, int]
    preview: list[Row]


@dataclass
class OcrReport:
    """What one OCR step read, tallied document by document as each is recorded."""

    documents: int = 0
    failed: list[int] = field(default_factory=list)
    already_read: int = 0
    page_confidences: list[float] = field(default_factory=list)
    empty_pages: int = 0
    judged_pages: int = 0
    mismatched_documents: list[int] = field(default_factory=list)
    scripts: Counter[str] = field(default_factory=Counter)
    read_by: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    preview: list[Row] = field(default_factory=list)

    def count(self, document_id: int, result: DocumentText) -> None:
        self.documents += 1
        for page in result.pages:
            self.page_confidences.append(page.mean_confidence)
            self.read_by[str(page.preprocessing.get("read_by", page.engine))] += 1
            self.empty_pages += not page.text.strip()
            script = page_script(page)
            mismatch = script_mismatch(script, page.language)
            if mismatch is not None:
                self.judged_pages += 1
                self.scripts[str(script)] += 1
            if mismatch and document_id not in self.mismatched_documents:
                self.mismatched_documents.append(document_id)
        if len(self.preview) < 5:
            self.preview.append({"id": document_id, "text": result.text[:120].replace("\n", " ")})

    @property
    def pages(self) -> int:
        return len(self.page_confidences)

    def _share(self, count: float, of: int) -> float:
        return count / of if of else 0.0

    @property
    def empty_rate(self) -> float:
        return self._share(self.empty_pages, self.pages)

    @property
    def low_confidence_rate(self) -> float:
        low = sum(c < MIN_MEAN_CONFIDENCE for c in self.page_confidences)
        return self._share(low, self.pages)

    @property
    def language_mismatch_rate(self) -> float:
        return self._share(len(self.mismatched_documents), self.judged_pages)

    @property
    def mean_confidence(self) -> float:
        return self._share(sum(self.page_confidences), self.pages)


@dataclass(frozen=True)
class FeaturesReport:
    rows: int
    features: int
    nonzero: int
    model_version: str
    key: str
    seconds: float


@dataclass(frozen=True)
class ScoresReport:
    model_name: str
    model_version: str
    by_class: dict[str, int]
    preview: list[Row]
    already_scored: int  # documents this version had scored before (a step delivered again)


@dataclass(frozen=True)
class ScoringBacklog:
    """The served version, and (id, upload day) of the documents it should score."""

    model_version: str | None
    documents: list[tuple[int, date]]


@dataclass(frozen=True)
class LabelReport:
    labelled: dict[int, str]  # document id -> the label now set
    refused: dict[int, str]  # document id -> why its label was not set


@dataclass(frozen=True)
class PipelineState:
    documents_by_status: dict[str, int]
    # Age of the oldest upload not yet read; 0 when nothing waits.
    oldest_waiting_seconds: float
    pages_read_by_engine: dict[str, int]
    failures_by_kind: dict[str, int]
    # The version the deployment gate judged last and whether it passed; None before any.
    last_gate_verdict: tuple[str, bool] | None


@dataclass(frozen=True)
class DeletionReport:
    document_id: int
    ocr_rows: int
    predictions: int
    feature_rows: int
    original: str  # the object key removed


@dataclass(frozen=True)
class DocumentPrediction:
    document_id: int
    scored: ScoredText
    prediction_id: int
    ran_ocr: bool


@dataclass(frozen=True)
class DocumentsOutcome:
    """Where a set of documents (an upload, a demo's corpus) ended up."""

    statuses: dict[str, int]
    with_predictions: int
    latest_model_version: str | None
    latest_model_metrics: dict[str, float]


class DocumentDay(NamedTuple):
    id: int
    upload_date: date


@dataclass(frozen=True)
class WaitingUploads:
    new: list[DocumentDay]  # uploaded after the cursor, oldest first
    stalled: list[DocumentDay]  # behind the cursor, still uploaded, though old enough to be read
