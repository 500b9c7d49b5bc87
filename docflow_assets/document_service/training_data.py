"""The labelled documents as training data: snapshots taken, found and compared."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from docflow_assets.document_service.stores import ServiceStores
from docflow_assets.ml.training_set import (
    TrainingSnapshot,
    current_labels,
    current_snapshot_labels,
    labelled_frame,
    new_classes,
    new_labels,
    partition_snapshot,
    save_snapshot,
    snapshot_by_hash,
)
from docflow_assets.store.database import session_scope
from docflow_assets.store.repository import labelled_documents_in_processing


@dataclass(frozen=True)
class SnapshotTaken:
    snapshot: TrainingSnapshot
    frame: pd.DataFrame
    new_labels: int  # documents labelled, or labelled differently, since the previous one
    new_classes: list[str]
    labelled_documents_still_in_ocr: int  # labelled, but not yet read: not in it


@dataclass(frozen=True)
class LabelsNow:
    labels: pd.DataFrame  # document_id and label of every labelled document read
    labelled_documents_still_in_ocr: int


class TrainingData(ServiceStores):
    def take_snapshot(self, partition_key: str) -> SnapshotTaken:
        """Every labelled document read, with its text, stored as the snapshot of
        ``partition_key`` and made the current one."""
        with session_scope(self.database) as session:
            frame = labelled_frame(session, self.settings.ocr_mode)
            in_processing = labelled_documents_in_processing(session)
        before = current_snapshot_labels(self.store)
        snapshot = save_snapshot(self.store, frame, partition_key)
        return SnapshotTaken(
            snapshot,
            frame,
            new_labels(before, frame),
            sorted(new_classes(before, frame)),
            in_processing,
        )

    def snapshot(self, partition_key: str) -> tuple[TrainingSnapshot, pd.DataFrame] | None:
        """The snapshot taken for a training partition, or None when it was never taken."""
        return partition_snapshot(self.store, partition_key)

    def snapshot_with_hash(self, sha256: str) -> pd.DataFrame | None:
        return snapshot_by_hash(self.store, sha256)

    def snapshot_labels(self) -> pd.DataFrame | None:
        """The current snapshot's ``document_id`` and ``label``, None before the first."""
        return current_snapshot_labels(self.store)

    def labels_now(self) -> LabelsNow:
        with session_scope(self.database) as session:
            return LabelsNow(current_labels(session), labelled_documents_in_processing(session))
