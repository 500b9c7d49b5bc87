"""TF-IDF features over word and character n-grams, saved as JSON (never pickled)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

# Character n-grams survive OCR noise ("lnvoice", "T0TAL") that breaks whole words.
VECTORIZER_PARAMS: dict[str, dict[str, Any]] = {
    "word": {
        "analyzer": "word",
        "ngram_range": (1, 2),
        "min_df": 1,
        "max_features": 20_000,
        "sublinear_tf": True,
        "lowercase": True,
        "token_pattern": r"(?u)\b[^\W\d_][\w'-]+\b",
    },
    "char": {
        "analyzer": "char_wb",
        "ngram_range": (3, 5),
        "min_df": 2,
        "max_features": 30_000,
        "sublinear_tf": True,
        "lowercase": True,
    },
}
_WHITESPACE = re.compile(r"\s+")


def normalise_text(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


class TextVectorizer:
    """Word and character TF-IDF side by side, as one sparse CSR matrix."""

    def __init__(self, parts: dict[str, TfidfVectorizer] | None = None) -> None:
        self.parts = parts or {
            name: TfidfVectorizer(dtype=np.float32, **params)
            for name, params in VECTORIZER_PARAMS.items()
        }

    def fit(self, texts: Sequence[str]) -> TextVectorizer:
        cleaned = [normalise_text(text) for text in texts]
        for vectorizer in self.parts.values():
            vectorizer.fit(cleaned)
        return self

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        cleaned = [normalise_text(text) for text in texts]
        blocks = [vectorizer.transform(cleaned) for vectorizer in self.parts.values()]
        return sp.hstack(blocks, format="csr", dtype=np.float32)

    @property
    def n_features(self) -> int:
        return sum(len(vectorizer.vocabulary_) for vectorizer in self.parts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            name: {
                "params": {**VECTORIZER_PARAMS[name], "ngram_range": list(vectorizer.ngram_range)},
                "vocabulary": {term: int(index) for term, index in vectorizer.vocabulary_.items()},
                "idf": vectorizer.idf_.tolist(),
            }
            for name, vectorizer in self.parts.items()
        }

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> TextVectorizer:
        parts: dict[str, TfidfVectorizer] = {}
        for name, saved in payload.items():
            params = {**saved["params"], "ngram_range": tuple(saved["params"]["ngram_range"])}
            params.pop("max_features", None)
            params.pop("min_df", None)
            vectorizer = TfidfVectorizer(dtype=np.float32, vocabulary=saved["vocabulary"], **params)
            vectorizer.idf_ = np.asarray(saved["idf"], dtype=np.float32)
            parts[name] = vectorizer
        return cls(parts)
