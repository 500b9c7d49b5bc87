"""full-text search over OCR text: an FTS5 table on SQLite, a GIN index on PostgreSQL

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 01:20:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Kept in step by the repository (replace_ocr_results, delete_document).
        op.execute(
            "CREATE VIRTUAL TABLE ocr_search USING fts5("
            "text, document_id UNINDEXED, tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "INSERT INTO ocr_search (text, document_id) SELECT text, document_id FROM ocr_results"
        )
    else:
        op.execute(
            "CREATE INDEX ix_ocr_results_text_search ON ocr_results "
            "USING gin (to_tsvector('simple', text))"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE ocr_search")
    else:
        op.execute("DROP INDEX ix_ocr_results_text_search")
