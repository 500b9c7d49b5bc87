"""Train and evaluate the classifier: stratified split, class weights, early stopping."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import train_test_split
from torch import nn

from docflow_assets.ml.classifier import DocumentClassifier, TfidfMlp, to_torch_sparse
from docflow_assets.ml.features import TextVectorizer


@dataclass(frozen=True)
class TrainingConfig:
    hidden: int = 256
    dropout: float = 0.3
    learning_rate: float = 2e-3
    weight_decay: float = 1e-5
    batch_size: int = 32
    max_epochs: int = 60
    patience: int = 8
    validation_fraction: float = 0.15
    test_fraction: float = 0.2
    seed: int = 7


@dataclass
class Evaluation:
    accuracy: float
    macro_f1: float
    per_class: dict[str, dict[str, float]]
    confusion: list[list[int]]

    def as_metrics(self, prefix: str) -> dict[str, float]:
        metrics = {f"{prefix}_accuracy": self.accuracy, f"{prefix}_macro_f1": self.macro_f1}
        for name, values in self.per_class.items():
            for metric, value in values.items():
                metrics[f"{prefix}_{name}_{metric}"] = value
        return metrics


@dataclass
class TrainingResult:
    classifier: DocumentClassifier
    test: Evaluation
    baseline_test: Evaluation
    history: list[dict[str, float]]
    split_sizes: dict[str, int]
    seconds: float
    baseline_seconds: float
    test_indices: list[int] = field(default_factory=list)


def evaluate(classes: Sequence[str], truth: Sequence[str], predicted: Sequence[str]) -> Evaluation:
    labels = list(classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return Evaluation(
        accuracy=float(accuracy_score(truth, predicted)),
        macro_f1=float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)),
        per_class={
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": float(support[i]),
            }
            for i, name in enumerate(labels)
        },
        confusion=confusion_matrix(truth, predicted, labels=labels).tolist(),
    )


def split_indices(
    labels: Sequence[str], config: TrainingConfig
) -> tuple[list[int], list[int], list[int]]:
    """Stratified train/validation/test indices, deterministic for the seed."""
    indices = np.arange(len(labels))
    train_val, test = train_test_split(
        indices, test_size=config.test_fraction, stratify=labels, random_state=config.seed
    )
    val_share = config.validation_fraction / (1 - config.test_fraction)
    train, val = train_test_split(
        train_val,
        test_size=val_share,
        stratify=[labels[i] for i in train_val],
        random_state=config.seed,
    )
    return sorted(train.tolist()), sorted(val.tolist()), sorted(test.tolist())


def train_classifier(
    texts: Sequence[str], labels: Sequence[str], config: TrainingConfig | None = None
) -> TrainingResult:
    config = config or TrainingConfig()
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"training needs at least two classes, got {classes}")
    train, val, test = split_indices(labels, config)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    vectorizer = TextVectorizer().fit([texts[i] for i in train])
    features = vectorizer.transform(texts)
    targets = np.array([classes.index(label) for label in labels])

    network = TfidfMlp(vectorizer.n_features, len(classes), config.hidden, config.dropout)
    counts = np.bincount(targets[train], minlength=len(classes)).astype(np.float32)
    class_weights = torch.from_numpy(counts.sum() / (len(classes) * np.maximum(counts, 1)))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights)
    optimiser = torch.optim.AdamW(
        network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    generator = np.random.default_rng(config.seed)
    val_x = to_torch_sparse(features[val])
    val_y = torch.from_numpy(targets[val])
    best_state: dict[str, torch.Tensor] | None = None
    best_val_loss = float("inf")
    epochs_without_gain = 0
    history: list[dict[str, float]] = []
    for epoch in range(config.max_epochs):
        network.train()
        order = generator.permutation(train)
        epoch_loss = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimiser.zero_grad()
            loss = loss_fn(
                network(to_torch_sparse(features[batch])), torch.from_numpy(targets[batch])
            )
            loss.backward()
            optimiser.step()
            epoch_loss += float(loss.detach()) * len(batch)
        network.eval()
        with torch.inference_mode():
            val_logits = network(val_x)
            val_loss = float(loss_fn(val_logits, val_y))
            val_accuracy = float((val_logits.argmax(dim=1) == val_y).float().mean())
        history.append(
            {
                "epoch": float(epoch),
                "train_loss": epoch_loss / len(order),
                "val_loss": val_loss,
                "val_accuracy": val_accuracy,
            }
        )
        if val_loss < best_val_loss - 1e-4:
            best_val_loss = val_loss
            best_state = {name: tensor.clone() for name, tensor in network.state_dict().items()}
            epochs_without_gain = 0
        else:
            epochs_without_gain += 1
            if epochs_without_gain >= config.patience:
                break
    if best_state is not None:
        network.load_state_dict(best_state)
    hyperparameters: dict[str, Any] = {
        "hidden": config.hidden,
        "dropout": config.dropout,
        "learning_rate": config.learning_rate,
        "weight_decay": config.weight_decay,
        "batch_size": config.batch_size,
        "epochs_run": len(history),
        "seed": config.seed,
    }
    classifier = DocumentClassifier(vectorizer, network, classes, hyperparameters)
    seconds = time.perf_counter() - started
    test_truth = [labels[i] for i in test]
    test_predicted = [
        scored.predicted_class for scored in classifier.score_features(features[test])
    ]

    baseline_started = time.perf_counter()
    baseline = LogisticRegression(max_iter=2000, class_weight="balanced")
    baseline.fit(features[train], [labels[i] for i in train])
    baseline_predicted = baseline.predict(features[test]).tolist()
    baseline_seconds = time.perf_counter() - baseline_started
    return TrainingResult(
        classifier=classifier,
        test=evaluate(classes, test_truth, test_predicted),
        baseline_test=evaluate(classes, test_truth, baseline_predicted),
        history=history,
        split_sizes={"train": len(train), "validation": len(val), "test": len(test)},
        seconds=seconds,
        baseline_seconds=baseline_seconds,
        test_indices=test,
    )
