"""Sparse feature matrices in the object store, as npz without pickles."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import date

import numpy as np
import scipy.sparse as sp

from docflow_assets.store.objects import ObjectStore


def features_key(upload_date: date, model_version: str, requested_ids: Sequence[int]) -> str:
    """Where one batch's features live: per day, model version and requested batch."""
    batch = ",".join(str(i) for i in sorted(requested_ids)) or "all"
    digest = hashlib.sha256(batch.encode()).hexdigest()[:16]
    return f"features/{upload_date.isoformat()}/v{model_version}/{digest}.npz"


def save_features(
    store: ObjectStore, key: str, document_ids: Sequence[int], matrix: sp.csr_matrix
) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer,
        document_ids=np.asarray(document_ids, dtype=np.int64),
        data=matrix.data,
        indices=matrix.indices,
        indptr=matrix.indptr,
        shape=np.asarray(matrix.shape, dtype=np.int64),
    )
    store.put_bytes(key, buffer.getvalue(), "application/octet-stream")


def load_features(store: ObjectStore, key: str) -> tuple[list[int], sp.csr_matrix]:
    with np.load(io.BytesIO(store.get_bytes(key)), allow_pickle=False) as saved:
        matrix = sp.csr_matrix(
            (saved["data"], saved["indices"], saved["indptr"]), shape=tuple(saved["shape"])
        )
        return saved["document_ids"].tolist(), matrix
