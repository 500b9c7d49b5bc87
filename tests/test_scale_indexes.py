"""The indexes that keep a home of 10^5 documents fast are there, through Alembic, and the
planner uses them (EXPLAIN), on the embedded default and on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text

from docflow_assets.services import postgres_database
from docflow_assets.store.database import ensure_schema

NEWEST_PREDICTIONS = (
    "SELECT max(id) FROM predictions WHERE document_id IN (1, 2, 3) GROUP BY document_id"
)
LEAST_CONFIDENT = (
    "SELECT id FROM documents WHERE latest_confidence IS NOT NULL "
    "ORDER BY latest_confidence, id LIMIT 50 OFFSET 100"
)
OF_A_PREDICTED_CLASS = (
    "SELECT id FROM documents WHERE latest_predicted_class = 'invoice' ORDER BY id DESC LIMIT 50"
)


def test_sqlite_finds_the_newest_predictions_and_a_documents_text_by_index(
    tmp_path: Path,
) -> None:
    url = ensure_schema(f"sqlite:///{tmp_path / 'docflow.db'}")
    with create_engine(url).connect() as connection:
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(text("EXPLAIN QUERY PLAN " + NEWEST_PREDICTIONS))
        )
        # Its index on document_id holds the rowid (the id): it covers the lookup.
        assert "USING COVERING INDEX ix_predictions_document_id" in plan, plan
        # Re-indexing a document's text finds its FTS rows by rowid, not by a scan.
        plan = " ".join(
            str(row[-1])
            for row in connection.execute(
                text(
                    "EXPLAIN QUERY PLAN DELETE FROM ocr_search WHERE rowid IN "
                    "(SELECT id FROM ocr_results WHERE document_id = 7)"
                )
            )
        )
        # FTS5's plan names a rowid lookup "0:=", a full scan "0:" (the old delete's plan).
        assert "ocr_search VIRTUAL TABLE INDEX 0:=" in plan, plan
        # The review list, least confident first or of one predicted class: no sort, no scan.
        for query, index in (
            (LEAST_CONFIDENT, "ix_documents_latest_confidence"),
            (OF_A_PREDICTED_CLASS, "ix_documents_latest_predicted_class"),
        ):
            plan = " ".join(
                str(row[-1]) for row in connection.execute(text("EXPLAIN QUERY PLAN " + query))
            )
            assert f"INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan


def test_postgresql_finds_the_newest_predictions_and_text_matches_by_index() -> None:
    with postgres_database("scale-indexes") as url:
        ensure_schema(url)
        driver = url.replace("postgresql://", "postgresql+psycopg2://")
        with create_engine(driver).connect() as connection:
            # A new table is small enough for a sequential scan: ask whether the index serves.
            connection.execute(text("SET enable_seqscan = off"))
            plan = " ".join(
                str(row[0]) for row in connection.execute(text("EXPLAIN " + NEWEST_PREDICTIONS))
            )
            search = " ".join(
                str(row[0])
                for row in connection.execute(
                    text(
                        "EXPLAIN SELECT document_id FROM ocr_results, "
                        "plainto_tsquery('simple', 'total') AS query WHERE text_search @@ query "
                        "ORDER BY ts_rank(text_search, query) DESC LIMIT 50"
                    )
                )
            )
            # ...and whether the index's own order serves the review list, with no sort.
            connection.execute(text("SET enable_sort = off"))
            connection.execute(text("SET enable_bitmapscan = off"))
            review = [
                " ".join(str(row[0]) for row in connection.execute(text("EXPLAIN " + query)))
                for query in (LEAST_CONFIDENT, OF_A_PREDICTED_CLASS)
            ]
        assert "ix_predictions_document_newest" in plan, plan
        for plan, index in zip(review, ("confidence", "predicted_class"), strict=True):
            assert f"using ix_documents_latest_{index}" in plan, plan
            assert "Sort" not in plan, plan
        # Matches come from the stored vectors' GIN index, ranked from the same column.
        assert "ix_ocr_results_text_search_stored" in search, search
