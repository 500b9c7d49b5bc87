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
