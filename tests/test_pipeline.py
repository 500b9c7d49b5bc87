"""The asset graph in-process on rendered documents, with real SQLite, Tesseract and MLflow."""

from __future__ import annotations

from sqlalchemy import func, select

from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, OcrResult, Prediction
from tests.conftest import HOLDOUT_PER_CLASS, TRAIN_PER_CLASS, TrainedHome, today_partition

CLASSES = 8


def test_every_document_is_ocrd_with_text_and_confidence(trained_home: TrainedHome) -> None:
    ids = [*trained_home.training_ids, *trained_home.holdout]
    with session_scope(trained_home.settings.resolved_database_url) as session:
        rows = session.scalars(select(OcrResult).where(OcrResult.document_id.in_(ids))).all()
        documents = session.scalars(select(Document).where(Document.id.in_(ids))).all()
    assert len(documents) == len(ids) == CLASSES * (TRAIN_PER_CLASS + HOLDOUT_PER_CLASS)
    assert {row.document_id for row in rows} == {document.id for document in documents}
    # The default cascade: every page stored under its name, read by Tesseract or PP-OCR.
    assert all(row.engine == "cascade" and row.words for row in rows)
    assert sum(row.mean_confidence for row in rows) / len(rows) > 0.75
    assert all(len(row.text) > 80 for row in rows)


def test_training_metadata_and_registry(trained_home: TrainedHome) -> None:
    classifier = trained_home.materialisations["document_classifier"]
    assert classifier["model_version"] == trained_home.model_version
    assert classifier["test_macro_f1"] >= 0.6
    training = trained_home.materialisations["training_set"]
    assert training["dagster/row_count"] == CLASSES * TRAIN_PER_CLASS
    assert training["classes"] == CLASSES
    assert len(str(training["sha256"])) == 64


def test_holdout_predictions_are_well_above_chance(trained_home: TrainedHome) -> None:
    with session_scope(trained_home.settings.resolved_database_url) as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.document_id.in_(trained_home.holdout))
        ).all()
        statuses = {
            document.status
            for document in session.scalars(
                select(Document).where(Document.id.in_(trained_home.holdout))
            )
        }
    assert statuses == {DocumentStatus.PREDICTED}
    assert {row.document_id for row in rows} == set(trained_home.holdout)
    assert all(row.model_version == trained_home.model_version for row in rows)
    assert all(abs(sum(row.all_scores.values()) - 1) < 1e-4 for row in rows)
    correct = sum(
        row.predicted_class == trained_home.holdout.get(row.document_id or 0) for row in rows
    )
    accuracy = correct / len(rows)
    # Chance is 1/8; the rendered classes are separable, OCR noise and all.
    assert accuracy >= 0.8, f"holdout accuracy {accuracy:.2f}"


def test_reprocessing_a_batch_replaces_its_ocr_and_keeps_one_prediction_history(
    home_copy: DocflowSettings, trained_home: TrainedHome
) -> None:
    from dagster import materialize

    from docflow_assets.defs.documents import ocr_text, predictions, raw_documents, tfidf_features
    from docflow_assets.defs.resources import DocflowResource
    from docflow_assets.defs.sensors import batch_run_config

    batch = sorted(trained_home.holdout)[:4]

    def counts() -> tuple[int, int, set[str]]:
        with session_scope(home_copy.resolved_database_url) as session:
            pages = session.scalar(select(func.count()).where(OcrResult.document_id.in_(batch)))
            scored = session.scalar(select(func.count()).where(Prediction.document_id.in_(batch)))
            statuses = set(session.scalars(select(Document.status).where(Document.id.in_(batch))))
        return int(pages or 0), int(scored or 0), statuses

    pages_before, scored_before, _ = counts()
    assert pages_before >= len(batch)
    again = materialize(
        [raw_documents, ocr_text, tfidf_features, predictions],
        resources={"docflow": DocflowResource(home=str(home_copy.home))},
        partition_key=today_partition(),
        run_config=batch_run_config(batch),
    )
    assert again.success
    pages_after, scored_after, statuses = counts()
    assert pages_after == pages_before  # OCR rows replaced, not added
    assert scored_after == scored_before + len(batch)  # one more prediction each, in history
    assert statuses == {DocumentStatus.PREDICTED}
    with session_scope(home_copy.resolved_database_url) as session:
        duplicates = session.execute(
            select(OcrResult.document_id, OcrResult.page, func.count())
            .group_by(OcrResult.document_id, OcrResult.page, OcrResult.engine)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []
