"""The pipeline's steps, one upload day (or a batch of it) at a time: check the originals,
OCR and record, featurise, score and record."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date, datetime

from docflow_assets.document_service.reports import (
    DocumentDay,
    FeaturesReport,
    OcrReport,
    OriginalsReport,
    Row,
    ScoresReport,
    ScoringBacklog,
    WaitingUploads,
)
from docflow_assets.document_service.stores import ServiceStores, ocr_options
from docflow_assets.ml.feature_store import (
    StoredFeatures,
    features_key,
    load_features,
    save_features,
)
from docflow_assets.ml.training_set import (
    class_distribution,
    current_snapshot_labels,
    total_variation,
)
from docflow_assets.ocr.pipeline import OcrRequest, iter_ocr_documents
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus
from docflow_assets.store.objects import ObjectNotFound
from docflow_assets.store.repository import (
    add_prediction,
    batch_documents,
    document_texts,
    documents_to_score,
    mark_failed,
    new_documents,
    recent_predicted_classes,
    replace_ocr_results,
    scored_since_read,
    stalled_documents,
    status_counts,
    unfinished_documents,
)

DRIFT_WINDOW = 500
READY_FOR_FEATURES = (DocumentStatus.OCR_DONE, DocumentStatus.PREDICTED)


class BatchSteps(ServiceStores):
    def check_originals(self, day: date, document_ids: Sequence[int]) -> OriginalsReport:
        """Marks failed the documents whose original is gone from the object store."""
        with session_scope(self.database) as session:
            documents = batch_documents(session, day, document_ids)
            missing = []
            for document in documents:
                if document.status == DocumentStatus.FAILED:
                    continue
                if not self.store.exists(document.storage_key):
                    mark_failed(
                        session, document, f"original file {document.storage_key} is missing"
                    )
                    missing.append(document.id)
            return OriginalsReport(
                documents=len(documents),
                pages=sum(document.pages for document in documents),
                total_bytes=sum(document.size_bytes for document in documents),
                missing=missing,
                content_types=dict(Counter(document.content_type for document in documents)),
                preview=[
                    {
                        "id": d.id,
                        "filename": d.filename,
                        "type": d.content_type,
                        "pages": d.pages,
                        "label": d.label,
                        "status": d.status,
                    }
                    for d in documents[:10]
                ],
            )

    def read(
        self,
        day: date,
        document_ids: Sequence[int],
        resume: bool = False,
        on_recorded: Callable[[OcrReport], None] | None = None,
        workers: int | None = None,
    ) -> OcrReport:
        """OCR the batch (``workers`` processes, by default ``ocr_workers``), recording each
        document as soon as it is read, in a transaction of its own; a document that cannot be
        read is marked failed with its reason and holds up no other. Originals are fetched only
        as workers free up, so memory does not grow with the batch, and a run killed midway
        loses only the documents in flight: with ``resume`` (a retry of the same step) the
        documents already read are left as they are. ``on_recorded`` hears the tally after
        every document."""
        report = OcrReport()
        with session_scope(self.database) as session:
            queued = []
            for document in batch_documents(session, day, document_ids):
                if document.status == DocumentStatus.FAILED:
                    continue
                if resume and document.status in READY_FOR_FEATURES:
                    report.already_read += 1
                    continue
                queued.append((document.id, document.storage_key, document.content_type))
        started = time.perf_counter()
        requests = self._originals(queued, report)
        options = ocr_options(self.settings)
        processes = workers or self.settings.ocr_workers
        for result in iter_ocr_documents(requests, options, processes):
            with session_scope(self.database) as session:
                read = session.get(Document, result.document_id)
                if read is None:  # deleted while it was being read
                    continue
                if result.error:
                    mark_failed(session, read, f"OCR failed: {result.error}")
                    report.failed.append(read.id)
                else:
                    replace_ocr_results(session, read, result.pages)
            if not result.error:
                report.count(result.document_id, result)
            report.seconds = time.perf_counter() - started
            if on_recorded is not None:
                on_recorded(report)
        report.seconds = time.perf_counter() - started
        return report

    def _originals(
        self, queued: Sequence[tuple[int, str, str]], report: OcrReport
    ) -> Iterator[OcrRequest]:
        """Each document's original, fetched when the OCR is ready for it; one that is gone is
        marked failed then and there."""
        for document_id, storage_key, content_type in queued:
            try:
                data = self.store.get_bytes(storage_key)
            except ObjectNotFound:
                with session_scope(self.database) as session:
                    document = session.get(Document, document_id)
                    if document is not None:
                        mark_failed(session, document, f"original file {storage_key} is missing")
                report.failed.append(document_id)
                continue
            yield OcrRequest(document_id, data, content_type)

    def featurise(self, day: date, document_ids: Sequence[int]) -> FeaturesReport | None:
        """TF-IDF rows of the batch under the deployed model's vectorizer, stored with that
        version; None while no model is deployed."""
        deployed = self.registry.load_alias(self.settings.model_alias)
        if deployed is None:
            return None
        with session_scope(self.database) as session:
            ids = [
                document.id
                for document in batch_documents(session, day, document_ids)
                if document.status in READY_FOR_FEATURES
            ]
            texts = document_texts(session, ids, prefer=self.settings.ocr_mode)
        started = time.perf_counter()
        matrix = deployed.classifier.vectorizer.transform([texts.get(i, "") for i in ids])
        key = features_key(day, document_ids)
        save_features(self.store, key, StoredFeatures(ids, matrix, deployed.version))
        return FeaturesReport(
            rows=len(ids),
            features=int(matrix.shape[1]),
            nonzero=int(matrix.nnz),
            model_version=deployed.version,
            key=key,
            seconds=time.perf_counter() - started,
        )

    def score(self, day: date, document_ids: Sequence[int]) -> ScoresReport | None:
        """Scores the batch's stored features with the version that made them (even if the
        alias has moved since) and records each prediction; None when there are no features.
        A document that version has already scored is left as it is: the broker delivers a
        step again when its acknowledgement was lost (a RabbitMQ restart), and a prediction
        must not be recorded twice."""
        try:
            features = load_features(self.store, features_key(day, document_ids))
        except ObjectNotFound:
            return None
        deployed = self.registry.load(features.model_version)
        ids = features.document_ids
        scored = dict(zip(ids, deployed.classifier.score_features(features.matrix), strict=True))
        classes: Counter[str] = Counter()
        preview: list[Row] = []
        with session_scope(self.database) as session:
            done = scored_since_read(session, ids, deployed.name, deployed.version)
            for document in batch_documents(session, day, ids):
                if document.id in done:
                    continue
                result = scored[document.id]
                add_prediction(
                    session,
                    document.id,
                    deployed.name,
                    deployed.version,
                    result.predicted_class,
                    result.confidence,
                    result.scores,
                    source="batch",
                )
                document.status = DocumentStatus.PREDICTED
                classes[result.predicted_class] += 1
                if len(preview) < 10:
                    preview.append(
                        {
                            "id": document.id,
                            "label": document.label,
                            "predicted": result.predicted_class,
                            "confidence": round(result.confidence, 3),
                        }
                    )
        return ScoresReport(deployed.name, deployed.version, dict(classes), preview, len(done))

    def scoring_backlog(self, limit: int, exclude: Collection[int] = ()) -> ScoringBacklog:
        """What the served model should score next (at most ``limit`` documents, none of
        ``exclude``): documents read but never predicted, then those the re-score policy
        (DOCFLOW_RESCORE_ON_DEPLOY) hands to a newly deployed version."""
        version = self.registry.version_for_alias(self.settings.model_alias)
        if version is None:
            return ScoringBacklog(None, [])
        with session_scope(self.database) as session:
            documents = documents_to_score(
                session,
                self.settings.model_name,
                version,
                self.settings.rescore_on_deploy,
                limit,
                exclude,
            )
        return ScoringBacklog(version, documents)

    def class_drift(self) -> tuple[float, int]:
        """Total variation between the recent predicted classes and the training labels, and
        how many recent predictions it judged."""
        with session_scope(self.database) as session:
            recent = recent_predicted_classes(session, DRIFT_WINDOW)
        found = current_snapshot_labels(self.store)
        training = class_distribution(found["label"].tolist()) if found is not None else {}
        if not recent or not training:
            return 0.0, len(recent)
        return total_variation(class_distribution(recent), training), len(recent)

    def day_counts(self, day: date) -> dict[str, int]:
        """One upload day's documents by status: what a day partition holds, all batches."""
        with session_scope(self.database) as session:
            return status_counts(session, upload_date=day)

    def uploads_waiting(
        self, after_id: int, stalled_before: datetime, limit: int
    ) -> WaitingUploads:
        """Uploads after the cursor ``after_id``, and those behind it still waiting though
        uploaded before ``stalled_before`` (their run was lost): at most ``limit`` of each."""
        with session_scope(self.database) as session:
            new = new_documents(session, after_id, limit=limit)
            stalled = stalled_documents(session, after_id, stalled_before, limit=limit)
            return WaitingUploads(
                [DocumentDay(d.id, d.upload_date) for d in new],
                [DocumentDay(d.id, d.upload_date) for d in stalled],
            )

    def fail_unfinished(self, document_ids: Sequence[int], reason: str) -> int:
        """Marks failed, with ``reason``, those of the documents not yet predicted or failed."""
        with session_scope(self.database) as session:
            documents = unfinished_documents(session, document_ids)
            for document in documents:
                mark_failed(session, document, reason)
            return len(documents)
