"""Hashed snapshots of labelled OCR text, stored as parquet."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.orm import Session

from docflow_assets.store.objects import ObjectNotFound, ObjectStore
from docflow_assets.store.repository import document_texts, labelled_documents

CURRENT_POINTER = "training_sets/current.json"
PARTITION_POINTERS = "training_sets/partitions"
LABEL_COLUMNS = ["document_id", "label"]


@dataclass(frozen=True)
class TrainingSnapshot:
    key: str
    sha256: str
    rows: int


def current_labels(session: Session) -> pd.DataFrame:
    """The labelled documents whose OCR is done: ``document_id`` and ``label``."""
    documents = labelled_documents(session)
    return pd.DataFrame(
        {
            "document_id": [document.id for document in documents],
            "label": [document.label for document in documents],
        }
    )


def labelled_frame(session: Session, prefer_engine: str) -> pd.DataFrame:
    """The labelled documents whose OCR is done, with their text: what a snapshot holds."""
    frame = current_labels(session)
    texts = document_texts(session, frame["document_id"].tolist(), prefer=prefer_engine)
    frame["text"] = [texts.get(document_id, "") for document_id in frame["document_id"]]
    return frame


def _digest(frame: pd.DataFrame, columns: list[str]) -> str:
    """SHA-256 of ``columns``, row by row in document order (fields \x1f, rows \x1e)."""
    digest = hashlib.sha256()
    for row in frame.sort_values("document_id")[columns].itertuples(index=False):
        digest.update(("\x1f".join(str(value) for value in row) + "\x1e").encode())
    return digest.hexdigest()


def labels_digest(labels: pd.DataFrame) -> str:
    """A hash of which documents carry which label (not their text)."""
    return _digest(labels, LABEL_COLUMNS)


def snapshot_hash(frame: pd.DataFrame) -> str:
    return _digest(frame, [*LABEL_COLUMNS, "text"])


def snapshot_partition_key(now: datetime) -> str:
    """A training snapshot's name: when it was taken, UTC, sortable and readable in a UI."""
    return now.strftime("%Y%m%d-%H%M%S")


def _partition_pointer(partition: str) -> str:
    return f"{PARTITION_POINTERS}/{partition}.json"


def save_snapshot(
    store: ObjectStore, frame: pd.DataFrame, partition: str | None = None
) -> TrainingSnapshot:
    """Write the snapshot under its content hash and point ``current.json`` (and the
    partition's own pointer, when it has one) at it."""
    sha256 = snapshot_hash(frame)
    key = f"training_sets/{sha256}.parquet"
    _put_parquet(store, key, frame)
    # The labels alone, beside it: the training sensor compares them every tick, and the
    # text is nearly all of a snapshot's bytes.
    _put_parquet(store, _labels_key(key), frame[LABEL_COLUMNS])
    snapshot = TrainingSnapshot(key, sha256, len(frame))
    pointer = json.dumps(snapshot.__dict__).encode()
    if partition is not None:
        store.put_bytes(_partition_pointer(partition), pointer, "application/json")
    store.put_bytes(CURRENT_POINTER, pointer, "application/json")
    return snapshot


def _put_parquet(store: ObjectStore, key: str, frame: pd.DataFrame) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    store.put_bytes(key, buffer.getvalue(), "application/vnd.apache.parquet")


def _labels_key(snapshot_key: str) -> str:
    return snapshot_key.removesuffix(".parquet") + ".labels.parquet"


def current_snapshot_labels(store: ObjectStore) -> pd.DataFrame | None:
    """The current snapshot's ``document_id`` and ``label`` columns, None before the first."""
    try:
        snapshot = TrainingSnapshot(**json.loads(store.get_bytes(CURRENT_POINTER)))
    except ObjectNotFound:
        return None
    try:
        return pd.read_parquet(io.BytesIO(store.get_bytes(_labels_key(snapshot.key))))
    except ObjectNotFound:  # a snapshot taken before labels were stored on their own
        data = io.BytesIO(store.get_bytes(snapshot.key))
        return pd.read_parquet(data, columns=LABEL_COLUMNS)


def _load(store: ObjectStore, pointer: str) -> tuple[TrainingSnapshot, pd.DataFrame]:
    snapshot = TrainingSnapshot(**json.loads(store.get_bytes(pointer)))
    frame = pd.read_parquet(io.BytesIO(store.get_bytes(snapshot.key)))
    return snapshot, frame


def partition_snapshot(
    store: ObjectStore, partition: str
) -> tuple[TrainingSnapshot, pd.DataFrame] | None:
    """The snapshot taken for a training partition, or None when it was never taken."""
    try:
        return _load(store, _partition_pointer(partition))
    except ObjectNotFound:
        return None


def snapshot_by_hash(store: ObjectStore, sha256: str) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(io.BytesIO(store.get_bytes(f"training_sets/{sha256}.parquet")))
    except ObjectNotFound:
        return None


def new_classes(previous: pd.DataFrame | None, frame: pd.DataFrame) -> set[str]:
    """Labels the previous snapshot had no example of: a model trained on it cannot name them."""
    known = set() if previous is None else set(previous["label"])
    return {str(label) for label in frame["label"]} - known


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


@dataclass(frozen=True)
class RetrainDecision:
    """Whether the automation takes a new training snapshot now, and why (or why not).
    ``held_back``: one is due but waits for labelled documents still being processed."""

    snapshot: bool
    reason: str
    held_back: bool = False


def retrain_decision(
    previous: pd.DataFrame | None,
    labels: pd.DataFrame,
    labelled_in_processing: int,
    min_new_labels: int,
    model_age: timedelta | None,
    max_model_age: timedelta,
    held_back_for: timedelta | None,
    max_hold: timedelta,
) -> RetrainDecision:
    """The automation's rule. ``labels``: the labelled documents (``document_id``, ``label``)
    whose OCR is done; ``model_age``: since the last training, None when there was none;
    ``held_back_for``: how long a due snapshot has been waiting, None when it was not.

    A first snapshot, a class the last snapshot never saw, enough new or changed labels, or a
    model older than ``max_model_age`` each take one. While labelled documents are still being
    processed it waits (a snapshot now would miss them), but no longer than ``max_hold``: under
    a steady stream of labelled uploads some always are, and the wait would never end.
    """
    due = _due(previous, labels, min_new_labels, model_age, max_model_age)
    if not labelled_in_processing:
        return due
    waiting = f"{labelled_in_processing} labelled documents are still being processed"
    if not due.snapshot:
        return RetrainDecision(False, waiting)
    if held_back_for is None or held_back_for < max_hold:
        minutes = max_hold.total_seconds() / 60
        return RetrainDecision(
            False,
            f"{waiting}; due ({due.reason}), it waits for them {minutes:.0f} min at most",
            True,
        )
    minutes = held_back_for.total_seconds() / 60
    return RetrainDecision(
        True, f"{due.reason}; held back {minutes:.0f} min while {waiting}: they wait for the next"
    )


def _due(
    previous: pd.DataFrame | None,
    labels: pd.DataFrame,
    min_new_labels: int,
    model_age: timedelta | None,
    max_model_age: timedelta,
) -> RetrainDecision:
    if labels.empty:
        return RetrainDecision(False, "no labelled documents yet")
    if previous is None:
        return RetrainDecision(True, f"first training set: {len(labels)} labelled documents")
    unknown = new_classes(previous, labels)
    if unknown:
        return RetrainDecision(True, f"labels of classes no model has seen: {sorted(unknown)}")
    fresh = new_labels(previous, labels)
    if fresh >= min_new_labels:
        return RetrainDecision(True, f"{fresh} new or changed labels (threshold {min_new_labels})")
    if model_age is not None and model_age > max_model_age:
        days = model_age.total_seconds() / 86400
        return RetrainDecision(
            True, f"the last model is {days:.1f} days old (limit {max_model_age})"
        )
    return RetrainDecision(
        False, f"{fresh} new labels since the last snapshot; {min_new_labels} make one"
    )
