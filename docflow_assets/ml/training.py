"""Train and evaluate the classifier: candidates chosen by cross-validation (logistic
regression fitted exactly along a path of regularisation strengths, and an MLP), calibrated
confidences, and the chosen candidate trained on every labelled document."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import mean
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import StratifiedKFold, train_test_split

from docflow_assets.ml.classifier import DocumentClassifier
from docflow_assets.ml.features import TextVectorizer
from docflow_assets.ml.fitting import (
    Head,
    class_logits,
    fit_network,
    fit_temperature,
    inner_split,
    logistic_model,
    logistic_network,
    network_logits,
)
from docflow_assets.settings import MODEL_SEED, TRAINING_FOLDS, TRAINING_MAX_EPOCHS

# The baseline every candidate is judged against: scikit-learn's logistic regression at its
# default strength, classes weighted by their size.
BASELINE_C = 1.0
# The logistic candidates, from the baseline up (TF-IDF rows are short and sparse: weaker
# regularisation often pays; in one learning-loop run on 69 real office scans C=4-64 reached
# cross-validated macro-F1 0.456 against 0.391 at C=1, in another C=1 won). Each fit starts
# from the previous one's weights.
LOGISTIC_PATH = (BASELINE_C, 4.0, 16.0, 64.0)
# On shared-vocabulary synthetic text the MLP wins; on real office scans the linear models do.
# 128 units in batches of 64: on 10,000 synthetic documents the same cross-validated macro-F1
# as 256 units in batches of 32 (0.841 against 0.842) in 62% of the time.
HEADS = (Head("mlp", hidden=128, weight_decay=1e-5, learning_rate=2e-3),)


def logistic_name(strength: float) -> str:
    return f"logistic-C{strength:g}"


BASELINE = logistic_name(BASELINE_C)


@dataclass(frozen=True)
class TrainingConfig:
    heads: tuple[Head, ...] = HEADS
    logistic_path: tuple[float, ...] = LOGISTIC_PATH
    folds: int = TRAINING_FOLDS
    batch_size: int = 64
    max_epochs: int = TRAINING_MAX_EPOCHS
    patience: int = 5
    validation_fraction: float = 0.15
    # A network whose mean fold score trails the best logistic model's by more than this after
    # any fold is taken to be unable to win: it is not trained on the remaining folds.
    race_margin: float = 0.03
    # Above this many labelled documents the candidate is chosen (and the gate's figures taken)
    # on a stratified sample of this size; the chosen one is still trained on every document.
    max_cross_validated: int = 2000
    seed: int = MODEL_SEED

    def __post_init__(self) -> None:
        if BASELINE_C not in self.logistic_path:
            raise ValueError(f"the logistic path must hold the baseline's C={BASELINE_C:g}")


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
    # Every estimate is out of fold: each document predicted by a model that never saw it.
    predicted: dict[int, str] = field(default_factory=dict)  # document index: out-of-fold class
    head_scores: dict[str, float] = field(default_factory=dict)
    fold_scores: dict[str, list[float]] = field(default_factory=dict)
    # Networks dropped before the last fold, and why.
    dropped_heads: dict[str, str] = field(default_factory=dict)
    majority_rate: float = 0.0

    @property
    def chosen(self) -> str:
        return str(self.classifier.hyperparameters["head"])

    @property
    def chosen_is_baseline_family(self) -> bool:
        """The winner is the baseline's own family (logistic regression) at the C the folds
        chose: at least as good as the baseline by construction."""
        return self.classifier.hyperparameters.get("family") == "logistic"


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


@dataclass
class _Selection:
    """Out-of-fold logits and per-fold figures of every candidate on one set of folds."""

    out_of_fold: dict[str, np.ndarray]
    fold_scores: dict[str, list[float]]
    best_epochs: dict[str, list[int]]
    dropped: dict[str, str]
    baseline_seconds: float


def _select(
    texts: Sequence[str], targets: np.ndarray, n_classes: int, folds: int, config: TrainingConfig
) -> _Selection:
    """Every candidate on the same stratified folds: the logistic path fitted exactly
    (L-BFGS, each C warm-started from the one before, the baseline's C from scratch), then
    the networks, raced: one whose mean fold score trails the best logistic model's by more
    than ``race_margin`` after any fold but the last is not trained on the rest."""
    path = sorted(config.logistic_path)
    logistic = [logistic_name(strength) for strength in path]
    networks = list(config.heads)
    out_of_fold = {name: np.zeros((len(texts), n_classes)) for name in logistic}
    out_of_fold.update({head.name: np.zeros((len(texts), n_classes)) for head in networks})
    fold_scores: dict[str, list[float]] = {name: [] for name in out_of_fold}
    best_epochs: dict[str, list[int]] = {head.name: [] for head in networks}
    dropped: dict[str, str] = {}
    baseline_seconds = 0.0
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    for fold, (train, test) in enumerate(splitter.split(np.zeros(len(texts)), targets)):
        vectorizer = TextVectorizer().fit([texts[i] for i in train])
        features = vectorizer.transform(texts)
        started = time.perf_counter()
        baseline = logistic_model(BASELINE_C).fit(features[train], targets[train])
        baseline_seconds += time.perf_counter() - started
        fitted_path = {BASELINE_C: baseline}
        # Each side of the path walks away from the baseline, each fit warm-started from the
        # one before it (the baseline itself is scikit-learn's default cold fit).
        for side in (
            sorted(c for c in path if c > BASELINE_C),
            sorted((c for c in path if c < BASELINE_C), reverse=True),
        ):
            model = baseline
            for strength in side:
                model = copy.deepcopy(model).set_params(C=strength, warm_start=True)
                fitted_path[strength] = model.fit(features[train], targets[train])
        for strength, model in fitted_path.items():
            name = logistic_name(strength)
            out_of_fold[name][test] = class_logits(model, features[test])
            fold_scores[name].append(
                _macro_f1(targets[test], out_of_fold[name][test].argmax(axis=1), n_classes)
            )
        best_logistic = max(mean(fold_scores[name]) for name in logistic)
        fit, validation = inner_split(train, targets, config)
        for head in networks:
            if head.name in dropped:
                continue
            fitted = fit_network(
                head, features, targets, n_classes, fit, validation, config.max_epochs, config
            )
            out_of_fold[head.name][test] = network_logits(fitted.network, features[test])
            best_epochs[head.name].append(fitted.best_epoch)
            fold_scores[head.name].append(
                _macro_f1(targets[test], out_of_fold[head.name][test].argmax(axis=1), n_classes)
            )
            so_far = mean(fold_scores[head.name])
            if so_far < best_logistic - config.race_margin and fold + 1 < folds:
                dropped[head.name] = (
                    f"after fold {fold + 1} of {folds}: mean macro-F1 {so_far:.3f} against "
                    f"{best_logistic:.3f} for the best logistic model; not trained on the rest"
                )
    return _Selection(out_of_fold, fold_scores, best_epochs, dropped, baseline_seconds)


def train_classifier(
    texts: Sequence[str], labels: Sequence[str], config: TrainingConfig | None = None
) -> TrainingResult:
    """Choose a candidate by stratified k-fold cross-validation on the labelled documents (a
    stratified sample of ``max_cross_validated`` of them when there are more): the exactly
    fitted logistic regressions, the baseline's C among them, and the networks. Fit a
    temperature on the winner's out-of-fold logits, then train it on every document."""
    config = config or TrainingConfig()
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise ValueError(f"training needs at least two classes, got {classes}")
    targets = np.array([classes.index(label) for label in labels])
    smallest = int(np.bincount(targets).min())
    folds = max(2, min(config.folds, smallest))
    if smallest < 2:
        raise ValueError("every class needs at least two labelled documents")
    started = time.perf_counter()
    sample = np.arange(len(labels))
    if len(labels) > config.max_cross_validated:
        sample, _ = train_test_split(
            sample,
            train_size=config.max_cross_validated,
            stratify=targets,
            random_state=config.seed,
        )
        sample = np.sort(sample)
    all_targets, targets = targets, targets[sample]
    selection = _select([texts[i] for i in sample.tolist()], targets, len(classes), folds, config)
    scores = {
        name: _macro_f1(targets, logits.argmax(axis=1), len(classes))
        for name, logits in selection.out_of_fold.items()
        if name not in selection.dropped
    }
    # The first of equals: the logistic path comes first, the baseline at its head.
    chosen = max(scores, key=lambda name: scores[name])
    temperature = fit_temperature(selection.out_of_fold[chosen], targets)
    vectorizer = TextVectorizer().fit(texts)
    features = vectorizer.transform(texts)
    heads = {head.name: head for head in config.heads}
    history: list[dict[str, float]] = []
    if chosen in heads:
        head = heads[chosen]
        epochs = max(1, int(np.median(selection.best_epochs[chosen])))
        final = fit_network(
            head, features, all_targets, len(classes), range(len(labels)), None, epochs, config
        )
        network, history = final.network, final.history
        shape: dict[str, Any] = {
            "family": "network",
            "hidden": head.hidden,
            "dropout": head.dropout,
            "learning_rate": head.learning_rate,
            "weight_decay": head.weight_decay,
            "batch_size": config.batch_size,
            "epochs_run": epochs,
        }
    else:
        strength = next(c for c in config.logistic_path if logistic_name(c) == chosen)
        model = logistic_model(strength).fit(features, all_targets)
        network = logistic_network(model, len(classes))
        shape = {
            "family": "logistic",
            "hidden": 0,
            "dropout": 0.0,
            "C": strength,
            "solver": "lbfgs",
            "iterations": int(np.max(model.n_iter_)),
        }
    hyperparameters: dict[str, Any] = {
        "head": chosen,
        **shape,
        "folds": folds,
        "temperature": round(temperature, 4),
        "seed": config.seed,
    }
    classifier = DocumentClassifier(vectorizer, network, classes, hyperparameters)
    chosen_predicted = [classes[i] for i in selection.out_of_fold[chosen].argmax(axis=1)]
    baseline_predicted = [classes[i] for i in selection.out_of_fold[BASELINE].argmax(axis=1)]
    sample_labels = [labels[i] for i in sample.tolist()]
    return TrainingResult(
        classifier=classifier,
        test=evaluate(classes, sample_labels, chosen_predicted),
        baseline_test=evaluate(classes, sample_labels, baseline_predicted),
        history=history,
        split_sizes={"train": len(labels), "cross_validated": len(sample), "folds": folds},
        seconds=time.perf_counter() - started - selection.baseline_seconds,
        baseline_seconds=selection.baseline_seconds,
        predicted=dict(zip(sample.tolist(), chosen_predicted, strict=True)),
        head_scores=scores,
        fold_scores={**selection.fold_scores, "baseline": selection.fold_scores[BASELINE]},
        dropped_heads=selection.dropped,
        majority_rate=float(np.bincount(all_targets).max() / len(all_targets)),
    )


def _macro_f1(truth: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    return float(
        f1_score(truth, predicted, labels=range(n_classes), average="macro", zero_division=0)
    )
