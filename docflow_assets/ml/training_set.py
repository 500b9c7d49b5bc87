"""Hashed snapshots of labelled OCR text, stored as parquet."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

import pandas as pd

from docflow_assets.store.objects import ObjectNotFound, ObjectStore

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


def snapshot_by_hash(store: ObjectStore, sha256: str) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(io.BytesIO(store.get_bytes(f"training_sets/{sha256}.parquet")))
    except ObjectNotFound:
        return None


def new_classes(previous: pd.DataFrame | None, frame: pd.DataFrame) -> set[str]:
    """Labels the previous snapshot had no example of: a model trained on it cannot name them."""
    known = set() if previous is None else set(previous["label"])
    return {str(label) for label in frame["label"]} - known


def current_snapshot(store: ObjectStore) -> tuple[TrainingSnapshot, pd.DataFrame] | None:
    try:
        return load_current_snapshot(store)
    except ObjectNotFound:
        return None


def new_labels(previous: pd.DataFrame | None, frame: pd.DataFrame) -> int:
    """Documents labelled, or labelled differently, since the previous snapshot."""
    if previous is None:
        return len(frame)
    before = set(zip(previous["document_id"], previous["label"], strict=True))
    return sum(
        pair not in before for pair in zip(frame["document_id"], frame["label"], strict=True)
    )


def class_distribution(labels: list[str]) -> dict[str, float]:
    counts = pd.Series(labels, dtype="object").value_counts(normalize=True)
    return {str(name): float(share) for name, share in counts.items()}


def total_variation(first: dict[str, float], second: dict[str, float]) -> float:
    """Half the L1 distance between two class distributions: 0 same, 1 disjoint."""
    names = set(first) | set(second)
    return 0.5 * sum(abs(first.get(name, 0.0) - second.get(name, 0.0)) for name in names)
