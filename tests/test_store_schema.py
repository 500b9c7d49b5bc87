"""The application schema is made once per process, whatever asks for it at once."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import inspect

from docflow_assets.store.database import ensure_schema, get_engine


def test_threads_asking_for_a_new_schema_at_once_get_it_made_once(tmp_path: Path) -> None:
    """The daemon evaluates sensors side by side in one code server, and on a new home each
    asks for the schema in its first tick."""
    url = f"sqlite:///{tmp_path / 'docflow.db'}"
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def ask() -> None:
        start.wait()
        try:
            ensure_schema(url)
        except BaseException as error:  # every thread's failure is the test's
            errors.append(error)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {"documents", "ocr_results", "predictions"} <= set(
        inspect(get_engine(url)).get_table_names()
    )
