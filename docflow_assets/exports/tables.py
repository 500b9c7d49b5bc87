"""Recorded predictions as a CSV or Parquet file, written a batch of rows at a time: memory
stays that of one batch however many rows there are."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

TableFormat = Literal["csv", "parquet"]
PREDICTION_SCHEMA = pa.schema(
    [
        ("prediction_id", pa.int64()),
        ("document_id", pa.int64()),
        ("filename", pa.string()),
        ("upload_date", pa.string()),
        ("status", pa.string()),
        ("label", pa.string()),
        ("predicted_class", pa.string()),
        ("confidence", pa.float64()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
        ("source", pa.string()),
        ("predicted_at", pa.string()),
    ]
)
EXPORT_COLUMNS = PREDICTION_SCHEMA.names


def write_table(batches: Iterable[pd.DataFrame], kind: TableFormat, sink: IO[bytes]) -> int:
    """The batches (columns ``EXPORT_COLUMNS``) one after another into ``sink``: CSV with one
    header, or Parquet with a row group a batch. Returns the rows written."""
    rows = 0
    if kind == "csv":
        sink.write(pd.DataFrame(columns=EXPORT_COLUMNS).to_csv(index=False).encode())
        for frame in batches:
            sink.write(frame.to_csv(index=False, header=False).encode())
            rows += len(frame)
        return rows
    with pq.ParquetWriter(sink, PREDICTION_SCHEMA) as writer:
        for frame in batches:
            writer.write_table(
                pa.Table.from_pandas(frame, schema=PREDICTION_SCHEMA, preserve_index=False)
            )
            rows += len(frame)
    return rows
