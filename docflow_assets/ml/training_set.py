"""Hashed snapshots of labelled OCR text, stored as parquet."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import pandas as pd

from docflow_assets.store.objects import ObjectStore

CURRENT_POINTER = "training_sets/current.json"


@dataclass(frozen=True)
class TrainingSnapshot:
    key: str
    sha256: str
    rows: int


def snapshot_hash(frame: pd.DataFrame) -> str:
    digest = hashlib.sha256()
    for row in frame.sort_values("document_id").itertuples(index=False):
        digest.update(f"{row.document_id}\x1f{row.label}\x1f{row.text}\x1e".encode())
    return digest.hexdigest()


def save_snapshot(store: ObjectStore, frame: pd.DataFrame) -> TrainingSnapshot:
    """Write the snapshot under its content hash and point ``current.json`` at it."""
    sha256 = snapshot_hash(frame)
    key = f"training_sets/{sha256}.parquet"
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(key, buffer.getvalue(), "application/vnd.apache.parquet")
    snapshot = TrainingSnapshot(key, sha256, len(frame))
    store.put_bytes(CURRENT_POINTER, json.dumps(snapshot.__dict__).encode(), "application/json")
    return snapshot


def load_current_snapshot(store: ObjectStore) -> tuple[TrainingSnapshot, pd.DataFrame]:
    snapshot = TrainingSnapshot(**json.loads(store.get_bytes(CURRENT_POINTER)))
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(snapshot.key)))
    return snapshot, frame
