"""OCR text: pages read and recorded, the full-text index and search over it."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy import text as sql
from sqlalchemy.orm import Session

from docflow_assets.page_text import PageText
from docflow_assets.store.models import Document, DocumentStatus, OcrResult


def replace_ocr_results(session: Session, document: Document, pages: Sequence[PageText]) -> None:
    """Idempotent per document: a re-run replaces the rows of the engines it ran."""
    # Re-indexed whole below: every engine's rows of the document come out of the index now.
    drop_from_text_index(session, document.id)
    engines = {page.engine for page in pages}
    session.execute(
        delete(OcrResult).where(OcrResult.document_id == document.id, OcrResult.engine.in_(engines))
    )
    for number, page in enumerate(pages, start=1):
        session.add(
            OcrResult(
                document_id=document.id,
                page=number,
                engine=page.engine,
                language=page.language,
                text=page.text,
                mean_confidence=page.mean_confidence,
                words=page.words_as_dicts(),
                preprocessing=page.preprocessing,
                seconds=page.seconds,
            )
        )
    document.status = DocumentStatus.OCR_DONE
    document.status_reason = None
    session.flush()
    _index_text(session, document.id)


def document_texts(
    session: Session, document_ids: Sequence[int], prefer: str = "tesseract"
) -> dict[int, str]:
    """Each document's text, its pages in order, from the ``prefer`` engine (the OCR mode)
    where the document has it, else from the engine it was read with."""
    rows = session.execute(
        select(OcrResult.document_id, OcrResult.engine, OcrResult.page, OcrResult.text)
        .where(OcrResult.document_id.in_(document_ids))
        .order_by(OcrResult.document_id, OcrResult.engine, OcrResult.page)
    )
    by_engine: dict[int, dict[str, list[str]]] = {}
    for document_id, engine, _page, text in rows:
        by_engine.setdefault(document_id, {}).setdefault(engine, []).append(text)
    return {
        document_id: "\n\n".join(engines.get(prefer) or next(iter(engines.values())))
        for document_id, engines in by_engine.items()
    }


def document_pages(session: Session, document_id: int) -> list[OcrResult]:
    """A document's OCR rows, page by page."""
    query = select(OcrResult).where(OcrResult.document_id == document_id)
    return list(session.scalars(query.order_by(OcrResult.page, OcrResult.engine)))


def pages_read_by_engine(session: Session) -> dict[str, int]:
    query = select(OcrResult.engine, func.count()).group_by(OcrResult.engine)
    return {engine: count for engine, count in session.execute(query)}


# Matching pages one search ranks: the newest this many. Ranking every match of a word found
# in most documents grew with the home (450 ms p99 at 10^5 documents); past this many a query
# is too broad to page through anyway.
MAX_SEARCH_MATCHES = 2000


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def drop_from_text_index(session: Session, document_id: int) -> None:
    """Takes the document's OCR rows out of SQLite's FTS5 table, by rowid (the OCR rows' ids):
    call it while those rows still exist. A delete on its document_id column would scan the
    whole index."""
    if _is_sqlite(session):
        session.execute(
            sql(
                "DELETE FROM ocr_search WHERE rowid IN "
                "(SELECT id FROM ocr_results WHERE document_id = :id)"
            ),
            {"id": document_id},
        )


def _index_text(session: Session, document_id: int) -> None:
    """SQLite's FTS5 table follows the document's OCR rows, each under its row's id (PostgreSQL
    indexes them itself)."""
    if not _is_sqlite(session):
        return
    session.execute(
        sql(
            "INSERT INTO ocr_search (rowid, text, document_id) "
            "SELECT id, text, document_id FROM ocr_results WHERE document_id = :id"
        ),
        {"id": document_id},
    )


def _search_words(query: str) -> list[str]:
    return [word for word in re.findall(r"\w+", query) if word]


def _fts_match(words: list[str]) -> str:
    # Each word quoted: FTS5 would read AND, OR, NEAR, * and quotes as its own syntax.
    return " ".join('"' + word + '"' for word in words)


def search_text(session: Session, query: str) -> list[int]:
    """Documents whose OCR text holds every word of ``query``, best match first: among the
    newest ``MAX_SEARCH_MATCHES`` matching pages, which both databases find from an index
    without ranking the rest."""
    words = _search_words(query)
    if not words:
        return []
    if _is_sqlite(session):
        # FTS5 walks its doclists by rowid (the OCR row's id), newest first, and stops; the
        # rowid bound then lets it rank only those.
        rows = session.execute(
            sql(
                "SELECT document_id FROM ocr_search WHERE ocr_search MATCH :match "
                "AND rowid >= (SELECT min(rowid) FROM (SELECT rowid FROM ocr_search "
                "WHERE ocr_search MATCH :match ORDER BY rowid DESC LIMIT :limit)) "
                "ORDER BY rank"
            ),
            {"match": _fts_match(words), "limit": MAX_SEARCH_MATCHES},
        )
    else:
        rows = session.execute(
            sql(
                "SELECT document_id FROM (SELECT document_id, text_search FROM ocr_results "
                "WHERE text_search @@ plainto_tsquery('simple', :words) "
                "ORDER BY id DESC LIMIT :limit) AS newest "
                "ORDER BY ts_rank(text_search, plainto_tsquery('simple', :words)) DESC"
            ),
            {"words": " ".join(words), "limit": MAX_SEARCH_MATCHES},
        )
    # A document matches once, at its best page.
    return list(dict.fromkeys(int(document_id) for (document_id,) in rows))


def search_snippets(session: Session, query: str, document_ids: Sequence[int]) -> dict[int, str]:
    """A snippet around ``query``'s words (marked ``[...]``) in each document's best page: asked
    for the page of results shown only, as cutting snippets costs more than ranking."""
    words = _search_words(query)
    if not words or not document_ids:
        return {}
    if _is_sqlite(session):
        return _fts_snippets(session, _fts_match(words), document_ids)
    rows = session.execute(
        sql(
            "SELECT document_id, ts_headline('simple', text, query, "
            "'StartSel=[, StopSel=], MaxWords=14, MinWords=6') "
            "FROM ocr_results, plainto_tsquery('simple', :words) AS query "
            "WHERE text_search @@ query AND document_id IN :ids "
            "ORDER BY ts_rank(text_search, query) DESC"
        ).bindparams(bindparam("ids", expanding=True)),
        {"words": " ".join(words), "ids": list(document_ids)},
    )
    best: dict[int, str] = {}
    for document_id, snippet in rows:
        best.setdefault(int(document_id), str(snippet))
    return best


def _fts_snippets(session: Session, match: str, document_ids: Sequence[int]) -> dict[int, str]:
    """FTS5 finds one page by its rowid at once, but a filter on ``document_id`` after MATCH
    ranks every match of the query (110 ms for a common word at 10^5 documents): each page of
    the shown documents is asked for by rowid."""
    pages = session.execute(
        select(OcrResult.id, OcrResult.document_id).where(OcrResult.document_id.in_(document_ids))
    )
    best: dict[int, tuple[float, str]] = {}
    for rowid, document_id in pages:
        found = session.execute(
            sql(
                "SELECT rank, snippet(ocr_search, 0, '[', ']', '...', 12) FROM ocr_search "
                "WHERE ocr_search MATCH :match AND rowid = :rowid"
            ),
            {"match": match, "rowid": rowid},
        ).first()
        if found is not None and (document_id not in best or found[0] < best[document_id][0]):
            best[document_id] = (float(found[0]), str(found[1]))
    return {document_id: snippet for document_id, (_, snippet) in best.items()}
