"""The PyTorch document classifier and its safe on-disk bundle (safetensors + JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from docflow_assets.ml.features import TextVectorizer

WEIGHTS_FILE = "classifier.safetensors"
VECTORIZER_FILE = "vectorizer.json"
MANIFEST_FILE = "manifest.json"


class TfidfMlp(nn.Module):
    """Sparse TF-IDF input times a dense first layer: with ``hidden`` units, one ReLU hidden
    layer and a linear head (the MLP); with ``hidden=0``, the first layer gives the class
    logits itself (a linear model)."""

    def __init__(self, n_features: int, n_classes: int, hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        width = hidden or n_classes
        self.input_weight = nn.Parameter(torch.empty(n_features, width))
        self.input_bias = nn.Parameter(torch.zeros(width))
        nn.init.xavier_uniform_(self.input_weight)
        self.head = (
            nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))
            if hidden
            else nn.Sequential()
        )

    @property
    def is_linear(self) -> bool:
        return len(self.head) == 0

    def forward(self, rows: SparseRows, input_rows: torch.Tensor | None = None) -> torch.Tensor:
        """Class logits of each document, a bag of weighted feature rows. ``input_rows``: the
        first-layer rows that ``rows.indices`` number, when not the whole layer (training
        passes just the rows a batch uses)."""
        hidden = F.embedding_bag(
            rows.indices,
            self.input_weight if input_rows is None else input_rows,
            rows.offsets,
            mode="sum",
            per_sample_weights=rows.weights,
        )
        return self.head(hidden + self.input_bias)


class SparseRows(NamedTuple):
    """CSR rows as ``embedding_bag`` takes them: feature indices, row starts, TF-IDF weights."""

    indices: torch.Tensor
    offsets: torch.Tensor
    weights: torch.Tensor


def to_torch_sparse(matrix: sp.csr_matrix) -> SparseRows:
    return SparseRows(
        torch.from_numpy(matrix.indices.astype(np.int64)),
        torch.from_numpy(matrix.indptr[:-1].astype(np.int64)),
        torch.from_numpy(matrix.data.astype(np.float32)),
    )


@dataclass
class ScoredText:
    predicted_class: str
    confidence: float
    scores: dict[str, float]


class DocumentClassifier:
    """Vectorizer, network and class names: everything needed to go from text to a class."""

    def __init__(
        self,
        vectorizer: TextVectorizer,
        network: TfidfMlp,
        classes: list[str],
        hyperparameters: dict[str, Any],
    ) -> None:
        self.vectorizer = vectorizer
        self.network = network.eval()
        self.classes = classes
        self.hyperparameters = hyperparameters

    @cached_property
    def _inference_weights(
        self,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """The trained network's weights as NumPy views (shared memory, no copy); no head
        weights for a linear model."""
        input_weight = self.network.input_weight.detach().numpy()
        input_bias = self.network.input_bias.detach().numpy()
        if self.network.is_linear:
            return input_weight, input_bias, None, None
        head = self.network.head[-1]
        assert isinstance(head, nn.Linear)
        return input_weight, input_bias, head.weight.detach().numpy(), head.bias.detach().numpy()

    @property
    def temperature(self) -> float:
        """Divides the logits so that confidences match how often the model is right
        (fitted on cross-validated predictions); 1 for models trained before calibration."""
        return float(self.hyperparameters.get("temperature", 1.0))

    def predict_proba(self, features: sp.csr_matrix) -> np.ndarray:
        """The network's forward pass in eval mode, as sparse x dense NumPy/SciPy products:
        for the few rows a request carries, torch's per-call dispatch costs more than the
        arithmetic. Tests check it matches the torch module."""
        if features.shape[0] == 0:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        input_weight, input_bias, _, _ = self._inference_weights
        return self._head_probabilities(np.asarray(features @ input_weight) + input_bias)

    def _head_probabilities(self, hidden: np.ndarray) -> np.ndarray:
        _, _, head_weight, head_bias = self._inference_weights
        if head_weight is None or head_bias is None:
            logits = hidden
        else:
            np.maximum(hidden, 0.0, out=hidden)
            logits = hidden @ head_weight.T + head_bias
        logits = logits / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities.astype(np.float32, copy=False)

    def _scored(self, probabilities: np.ndarray) -> ScoredText:
        best = int(np.argmax(probabilities))
        return ScoredText(
            predicted_class=self.classes[best],
            confidence=float(probabilities[best]),
            scores=dict(zip(self.classes, probabilities.tolist(), strict=True)),
        )

    def score_features(self, features: sp.csr_matrix) -> list[ScoredText]:
        return [self._scored(row) for row in self.predict_proba(features)]

    def score_texts(self, texts: list[str]) -> list[ScoredText]:
        return self.score_features(self.vectorizer.transform(texts))

    def score_text(self, text: str) -> ScoredText:
        """One text without a sparse matrix: its weighted input rows summed straight into the
        hidden layer, the API's per-request path (same numbers as ``score_texts``)."""
        input_weight, input_bias, _, _ = self._inference_weights
        columns, weights = self.vectorizer.weighted_terms(text)
        hidden = weights @ input_weight[columns] + input_bias
        return self._scored(self._head_probabilities(hidden[np.newaxis])[0])

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        save_file(
            {name: tensor.contiguous() for name, tensor in self.network.state_dict().items()},
            str(folder / WEIGHTS_FILE),
        )
        (folder / VECTORIZER_FILE).write_text(json.dumps(self.vectorizer.to_json()))
        manifest = {
            "classes": self.classes,
            "n_features": self.vectorizer.n_features,
            "hyperparameters": self.hyperparameters,
        }
        (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, folder: Path) -> DocumentClassifier:
        """Load from safetensors and JSON only: nothing is unpickled."""
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        vectorizer = TextVectorizer.from_json(json.loads((folder / VECTORIZER_FILE).read_text()))
        hyper = manifest["hyperparameters"]
        network = TfidfMlp(
            manifest["n_features"], len(manifest["classes"]), hyper["hidden"], hyper["dropout"]
        )
        network.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
        return cls(vectorizer, network, list(manifest["classes"]), hyper)


@dataclass
class LoadedModel:
    """A registered version, loaded to score."""

    classifier: DocumentClassifier
    name: str
    version: str
    run_id: str | None
