"""Sparse feature matrices in the object store, as npz without pickles."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
import scipy.sparse as sp

from docflow_assets.store.objects import ObjectStore


@dataclass(frozen=True)
class StoredFeatures:
    document_ids: list[int]
    matrix: sp.csr_matrix
    model_version: str  # whose vectorizer made them: the version that must score them


def features_key(upload_date: date, requested_ids: Sequence[int]) -> str:
    """Where one batch's features live: per day and requested batch. The model version is
    inside, not in the key, so the predictions read it from the features rather than from the
    alias, which may have moved since."""
    batch = ",".join(str(i) for i in sorted(requested_ids)) or "all"
    digest = hashlib.sha256(batch.encode()).hexdigest()[:16]
    return f"features/{upload_date.isoformat()}/{digest}.npz"


def save_features(store: ObjectStore, key: str, features: StoredFeatures) -> None:
    buffer = io.BytesIO()
    matrix = features.matrix
    np.savez_compressed(
        buffer,
        document_ids=np.asarray(features.document_ids, dtype=np.int64),
        data=matrix.data,
        indices=matrix.indices,
        indptr=matrix.indptr,
        shape=np.asarray(matrix.shape, dtype=np.int64),
        model_version=np.asarray(features.model_version),
    )
    store.put_bytes(key, buffer.getvalue(), "application/octet-stream")


def load_features(store: ObjectStore, key: str) -> StoredFeatures:
    with np.load(io.BytesIO(store.get_bytes(key)), allow_pickle=False) as saved:
        matrix = sp.csr_matrix(
            (saved["data"], saved["indices"], saved["indptr"]), shape=tuple(saved["shape"])
        )
        return StoredFeatures(saved["document_ids"].tolist(), matrix, str(saved["model_version"]))


def drop_document_features(store: ObjectStore, upload_date: date, document_id: int) -> int:
    """Removes a document's row from every feature file of its upload day; returns how many
    rows went (a document read in more than one batch has one in each)."""
    dropped = 0
    for key in store.keys(f"features/{upload_date.isoformat()}/"):
        stored = load_features(store, key)
        if document_id not in stored.document_ids:
            continue
        keep = [i for i, found in enumerate(stored.document_ids) if found != document_id]
        rows = [stored.document_ids[i] for i in keep]
        save_features(store, key, StoredFeatures(rows, stored.matrix[keep], stored.model_version))
        dropped += len(stored.document_ids) - len(keep)
    return dropped
