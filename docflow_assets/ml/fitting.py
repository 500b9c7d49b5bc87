"""How each candidate is fitted: the network (row-sparse Adam, early stopping on an inner
split), exact logistic regression and its coefficients as a network layer, and the
calibration temperature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import nn

from docflow_assets.ml.classifier import TfidfMlp, to_torch_sparse

if TYPE_CHECKING:
    from docflow_assets.ml.training import TrainingConfig


@dataclass(frozen=True)
class Head:
    """A network trained by gradient descent: the MLP (``hidden`` units), or a linear layer
    (``hidden=0``), and its regularisation."""

    name: str
    hidden: int
    weight_decay: float
    learning_rate: float
    dropout: float = 0.3


LOGISTIC_MAX_ITER = 2000


class RowAdam:
    """Adam on the rows of the first layer that a batch used, the others left as they are
    (lazy Adam, as in sparse embedding training): SparseAdam's bookkeeping cost half of all
    training time, this a small fraction."""

    def __init__(self, weight: torch.Tensor, learning_rate: float) -> None:
        self.weight = weight
        self.first = torch.zeros_like(weight, requires_grad=False)
        self.second = torch.zeros_like(weight, requires_grad=False)
        self.learning_rate = learning_rate
        self.steps = 0

    def gather(self, used: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(used.astype(np.int64))
        return self.weight.detach().index_select(0, index).requires_grad_(True)

    def step(
        self, used: np.ndarray, rows: torch.Tensor, betas: tuple[float, float] = (0.9, 0.999)
    ) -> None:
        assert rows.grad is not None
        index = torch.from_numpy(used.astype(np.int64))
        gradient = rows.grad
        self.steps += 1
        with torch.no_grad():
            # index_select/index_copy_ on unique rows: fancy-index assignment (index_put_)
            # took most of a step.
            first = self.first.index_select(0, index).mul_(betas[0])
            first.add_(gradient, alpha=1 - betas[0])
            second = self.second.index_select(0, index).mul_(betas[1])
            second.addcmul_(gradient, gradient, value=1 - betas[1])
            self.first.index_copy_(0, index, first)
            self.second.index_copy_(0, index, second)
            scale = second.div_(1 - betas[1] ** self.steps).sqrt_().add_(1e-8)
            update = first.div_(1 - betas[0] ** self.steps).div_(scale)
            self.weight.index_copy_(0, index, rows.detach().sub_(update, alpha=self.learning_rate))


@dataclass
class FittedNetwork:
    network: TfidfMlp
    history: list[dict[str, float]]
    best_epoch: int


def fit_network(
    head: Head,
    features: sp.csr_matrix,
    targets: np.ndarray,
    n_classes: int,
    train: Sequence[int],
    validation: Sequence[int] | None,
    epochs: int,
    config: TrainingConfig,
) -> FittedNetwork:
    """Train one head on ``train``; with ``validation``, keep the epoch that scored best there
    and stop after ``patience`` epochs without gain, otherwise run ``epochs`` epochs."""
    torch.manual_seed(config.seed)
    network = TfidfMlp(features.shape[1], n_classes, head.hidden, head.dropout)
    counts = np.bincount(targets[list(train)], minlength=n_classes).astype(np.float32)
    class_weights = torch.from_numpy(counts.sum() / (n_classes * np.maximum(counts, 1)))
    loss_fn = nn.CrossEntropyLoss(weight=class_weights)
    rest = [p for name, p in network.named_parameters() if name != "input_weight"]
    optimiser = torch.optim.AdamW(rest, lr=head.learning_rate, weight_decay=head.weight_decay)
    first_layer = RowAdam(network.input_weight, head.learning_rate)
    generator = np.random.default_rng(config.seed)
    best_state: dict[str, torch.Tensor] | None = None
    best_score, best_epoch, without_gain = -float("inf"), epochs, 0
    history: list[dict[str, float]] = []
    if validation is not None:
        validation_rows = to_torch_sparse(features[list(validation)])
        validation_truth = torch.from_numpy(targets[list(validation)])
    for epoch in range(epochs):
        network.train()
        order = generator.permutation(np.asarray(train))
        epoch_loss = 0.0
        for start in range(0, len(order), config.batch_size):
            documents = order[start : start + config.batch_size]
            batch = to_torch_sparse(features[documents])
            # Only the feature rows this batch uses take part: gathered into a small dense
            # matrix, trained, written back (a step never walks the whole vocabulary).
            used, local = np.unique(batch.indices.numpy(), return_inverse=True)
            rows = first_layer.gather(used)
            local_batch = batch._replace(indices=torch.from_numpy(local.astype(np.int64)))
            truth = torch.from_numpy(targets[documents])
            loss = loss_fn(network(local_batch, rows), truth)
            optimiser.zero_grad()
            (loss + head.weight_decay * rows.pow(2).sum()).backward()
            optimiser.step()
            first_layer.step(used, rows)
            epoch_loss += float(loss.detach()) * len(truth)
        row = {"epoch": float(epoch), "train_loss": epoch_loss / len(order)}
        if validation is not None:
            network.eval()
            with torch.inference_mode():
                logits = network(validation_rows)
                row["val_loss"] = float(loss_fn(logits, validation_truth))
                row["val_accuracy"] = float(
                    (logits.argmax(dim=1) == validation_truth).float().mean()
                )
            # Validation accuracy first, loss to break ties: a linear model's loss rises as it
            # grows sure of itself long before its accuracy stops improving.
            score = row["val_accuracy"] - 1e-3 * row["val_loss"]
            if score > best_score + 1e-6:
                best_score, best_epoch, without_gain = score, epoch + 1, 0
                best_state = {k: v.clone() for k, v in network.state_dict().items()}
            else:
                without_gain += 1
        history.append(row)
        if validation is not None and without_gain >= config.patience:
            break
    if best_state is not None:
        network.load_state_dict(best_state)
    return FittedNetwork(network.eval(), history, best_epoch)


def network_logits(network: TfidfMlp, features: sp.csr_matrix) -> np.ndarray:
    with torch.inference_mode():
        return network(to_torch_sparse(features)).numpy()


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """The temperature that makes softmax(logits / T) best predict ``targets`` (lowest log
    loss), searched on a log grid: confidences then mean what they say."""
    best, best_loss = 1.0, float("inf")
    for temperature in np.exp(np.linspace(np.log(0.05), np.log(20.0), 121)):
        scaled = logits / temperature
        scaled = scaled - scaled.max(axis=1, keepdims=True)
        log_probabilities = scaled - np.log(np.exp(scaled).sum(axis=1, keepdims=True))
        loss = -float(log_probabilities[np.arange(len(targets)), targets].mean())
        if loss < best_loss:
            best, best_loss = float(temperature), loss
    return best


def inner_split(
    train: np.ndarray, targets: np.ndarray, config: TrainingConfig
) -> tuple[list[int], list[int]]:
    """Part of a fold's training documents held back for early stopping; stratified where
    every class has a document on both sides to spare."""
    counts = np.bincount(targets[train])
    present = counts[counts > 0]
    size = max(round(config.validation_fraction * len(train)), len(present))
    stratified = present.min() >= 2 and len(train) - size >= len(present)
    fit, validation = train_test_split(
        train,
        test_size=size,
        stratify=targets[train] if stratified else None,
        random_state=config.seed,
    )
    return sorted(fit.tolist()), sorted(validation.tolist())


def logistic_model(strength: float) -> LogisticRegression:
    return LogisticRegression(C=strength, max_iter=LOGISTIC_MAX_ITER, class_weight="balanced")


def class_logits(model: LogisticRegression, features: sp.csr_matrix) -> np.ndarray:
    """Logits of every class; scikit-learn's binary model gives one column, the second
    class's logit against a zero for the first."""
    decision = model.decision_function(features)
    if decision.ndim == 1:
        return np.column_stack([np.zeros_like(decision), decision])
    return np.asarray(decision)


def logistic_network(model: LogisticRegression, n_classes: int) -> TfidfMlp:
    """The fitted logistic regression as the served network: a linear layer (``hidden=0``)
    whose weights are the coefficients, stored as safetensors like any head."""
    coefficients = np.asarray(model.coef_, dtype=np.float32)
    intercepts = np.asarray(model.intercept_, dtype=np.float32)
    if coefficients.shape[0] == 1 and n_classes == 2:
        coefficients = np.vstack([np.zeros_like(coefficients), coefficients])
        intercepts = np.concatenate([np.zeros(1, np.float32), intercepts])
    network = TfidfMlp(coefficients.shape[1], n_classes, hidden=0, dropout=0.0)
    with torch.no_grad():
        network.input_weight.copy_(torch.from_numpy(coefficients.T.copy()))
        network.input_bias.copy_(torch.from_numpy(intercepts))
    return network.eval()
