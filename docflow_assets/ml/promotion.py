"""Promotion: whether a trained candidate may replace the served model, and why.

Plain domain code: the training asset maps the verdict to check results and metadata, the CLI
prints it, the registry keeps it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docflow_assets.ml.gate import (
    GateResult,
    GateThresholds,
    baseline_check,
    deployed_check,
    floor_check,
    majority_check,
)

if TYPE_CHECKING:
    from docflow_assets.ml.classifier import LoadedModel
    from docflow_assets.ml.training import TrainingResult


@dataclass(frozen=True)
class ServedComparison:
    """The candidate and the served model on labelled documents the served one never saw."""

    version: str | None
    unseen: int = 0
    candidate_macro_f1: float | None = None
    served_macro_f1: float | None = None


def compare_with_served(
    result: TrainingResult,
    texts: Sequence[str],
    labels: Sequence[str],
    document_ids: Sequence[int],
    served: LoadedModel | None,
    served_training_pairs: set[tuple[int, str]] | None,
) -> ServedComparison:
    """Score the served model on the snapshot's documents it was not trained on (a document
    whose label changed since counts as unseen), beside the candidate's out-of-fold answers
    for the same documents. ``served_training_pairs``: (document id, label) of the served
    model's own training set; None when it cannot be found (nothing is compared)."""
    from docflow_assets.ml.training import evaluate

    if served is None:
        return ServedComparison(None)
    if served_training_pairs is None:
        return ServedComparison(served.version)
    unseen = [
        index
        for index, pair in enumerate(zip(document_ids, labels, strict=True))
        if pair not in served_training_pairs and index in result.predicted
    ]
    if not unseen:
        return ServedComparison(served.version)
    truth = [labels[i] for i in unseen]
    classes = result.classifier.classes
    answers = served.classifier.score_texts([texts[i] for i in unseen])
    return ServedComparison(
        served.version,
        len(unseen),
        evaluate(classes, truth, [result.predicted[i] for i in unseen]).macro_f1,
        evaluate(classes, truth, [answer.predicted_class for answer in answers]).macro_f1,
    )


@dataclass(frozen=True)
class Verdict:
    gates: list[GateResult]

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def reason(self) -> str:
        refused = [gate for gate in self.gates if not gate.passed]
        return "; ".join(f"{gate.name}: {gate.reason}" for gate in refused) or (
            "every check passed"
        )


def judge(result: TrainingResult, served: ServedComparison, thresholds: GateThresholds) -> Verdict:
    """Every check of the deployment gate on the candidate's cross-validated figures."""
    hyperparameters = result.classifier.hyperparameters
    return Verdict(
        [
            floor_check(result.test.macro_f1, thresholds),
            baseline_check(
                result.test.macro_f1,
                result.baseline_test.macro_f1,
                result.fold_scores[result.chosen],
                result.fold_scores["baseline"],
                thresholds,
                f"C={hyperparameters['C']:g}" if result.chosen_is_baseline_family else None,
            ),
            majority_check(result.test.accuracy, result.majority_rate, thresholds),
            deployed_check(
                served.candidate_macro_f1,
                served.served_macro_f1,
                served.version,
                served.unseen,
                thresholds,
            ),
        ]
    )
