"""indexes that keep listings and OCR records fast on a home of 10^5 documents

- predictions (document_id, id) on PostgreSQL: each document's newest prediction is an
  index-only lookup. SQLite's index on document_id already holds the rowid (the id) and covers
  it.
- PostgreSQL keeps each OCR row's text search vector in a stored column with its GIN index:
  ranking a common word's matches read it instead of parsing every matching page again.
- SQLite's FTS5 rows take their OCR row's id as rowid: re-indexing or deleting a document's
  text finds its rows by rowid instead of scanning the whole index (every OCR record did).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 17:20:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.create_index("ix_predictions_document_newest", "predictions", ["document_id", "id"])
        op.execute(
            "ALTER TABLE ocr_results ADD COLUMN text_search tsvector "
            "GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED"
        )
        op.execute(
            "CREATE INDEX ix_ocr_results_text_search_stored ON ocr_results USING gin (text_search)"
        )
        op.execute("DROP INDEX ix_ocr_results_text_search")
    else:
        op.execute("DELETE FROM ocr_search")
        op.execute(
            "INSERT INTO ocr_search (rowid, text, document_id) "
            "SELECT id, text, document_id FROM ocr_results"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        op.drop_index("ix_predictions_document_newest", "predictions")
        op.execute(
            "CREATE INDEX ix_ocr_results_text_search ON ocr_results "
            "USING gin (to_tsvector('simple', text))"
        )
        op.execute("ALTER TABLE ocr_results DROP COLUMN text_search")
