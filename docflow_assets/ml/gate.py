"""The deployment gate: what a newly trained classifier must show before it is served.

Relative, not absolute: a real 16-class problem with a few hundred labels sits below any fixed
floor, yet a model that beats its baseline and the majority class is better than nothing. Every
figure is out of fold (cross-validated on the whole snapshot), so small label sets do not make
the verdict a coin toss the way one 20% split does, and every result says why it passed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import mean

# Unseen documents the served model must be compared on before "not worse" means anything.
MIN_UNSEEN_FOR_COMPARISON = 10


@dataclass(frozen=True)
class GateThresholds:
    min_macro_f1: float | None = None  # an absolute floor only when the operator sets one
    baseline_margin: float = 0.0  # macro-F1 by which the candidate must beat its baseline
    majority_margin: float = 0.1  # accuracy by which it must beat always naming the top class
    max_regression: float = 0.0  # macro-F1 it may lose against the served model


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    reason: str
    detail: dict[str, float | str | None]


def floor_check(macro_f1: float, thresholds: GateThresholds) -> GateResult:
    floor = thresholds.min_macro_f1
    if floor is None:
        return GateResult(
            "macro_f1_above_floor",
            True,
            "no absolute floor set (DOCFLOW_MODEL_MIN_MACRO_F1)",
            {"macro_f1": macro_f1},
        )
    passed = macro_f1 >= floor
    return GateResult(
        "macro_f1_above_floor",
        passed,
        f"cross-validated macro-F1 {macro_f1:.3f} {'>=' if passed else '<'} floor {floor:.3f}",
        {"macro_f1": macro_f1, "floor": floor},
    )


def baseline_check(
    macro_f1: float,
    baseline_macro_f1: float,
    candidate_folds: Sequence[float],
    baseline_folds: Sequence[float],
    thresholds: GateThresholds,
    baseline_family_at: str | None = None,
) -> GateResult:
    """The candidate against a logistic regression trained on the same folds; the fold-by-fold
    differences say how steady the lead is. ``baseline_family_at``: the candidate is itself a
    logistic regression at the strength the folds chose (the baseline's among those tried),
    so it is at least as good by construction, and the reason says so."""
    differences = [c - b for c, b in zip(candidate_folds, baseline_folds, strict=True)]
    ahead = sum(difference >= 0 for difference in differences)
    passed = macro_f1 - baseline_macro_f1 >= thresholds.baseline_margin
    comparison = (
        f"cross-validated macro-F1 {macro_f1:.3f} vs baseline {baseline_macro_f1:.3f} "
        f"(margin {thresholds.baseline_margin:+.3f}); at least as good on {ahead} of "
        f"{len(differences)} folds"
    )
    if baseline_family_at is not None:
        comparison = (
            "the candidate is the baseline's family (logistic regression) at "
            f"{baseline_family_at}, the best strength on the same folds, so at least as good "
            f"by construction: {comparison}"
        )
    return GateResult(
        "beats_baseline",
        passed,
        comparison,
        {
            "macro_f1": macro_f1,
            "baseline_macro_f1": baseline_macro_f1,
            "margin": thresholds.baseline_margin,
            "mean_fold_difference": mean(differences) if differences else 0.0,
            "folds_at_least_as_good": float(ahead),
            "baseline_family": baseline_family_at,
        },
    )


def majority_check(accuracy: float, majority_rate: float, thresholds: GateThresholds) -> GateResult:
    passed = accuracy >= majority_rate + thresholds.majority_margin
    return GateResult(
        "beats_majority_class",
        passed,
        f"cross-validated accuracy {accuracy:.3f} vs {majority_rate:.3f} for always naming the "
        f"largest class (margin {thresholds.majority_margin:.2f})",
        {"accuracy": accuracy, "majority_rate": majority_rate},
    )


def deployed_check(
    macro_f1: float | None,
    deployed_macro_f1: float | None,
    deployed_version: str | None,
    unseen: int,
    thresholds: GateThresholds,
) -> GateResult:
    """Not worse than the served model on documents the served model never trained on (its
    own training documents would flatter it); both scored out of fold for the candidate."""
    if deployed_version is None:
        return GateResult(
            "not_worse_than_deployed", True, "no model is served yet", {"deployed_version": None}
        )
    if macro_f1 is None or deployed_macro_f1 is None or unseen < MIN_UNSEEN_FOR_COMPARISON:
        return GateResult(
            "not_worse_than_deployed",
            True,
            f"only {unseen} labelled documents are new to version {deployed_version} "
            f"(a fair comparison needs {MIN_UNSEEN_FOR_COMPARISON})",
            {"deployed_version": deployed_version, "unseen_documents": float(unseen)},
        )
    passed = macro_f1 >= deployed_macro_f1 - thresholds.max_regression
    return GateResult(
        "not_worse_than_deployed",
        passed,
        f"macro-F1 {macro_f1:.3f} vs {deployed_macro_f1:.3f} for version {deployed_version} "
        f"on {unseen} documents it never trained on",
        {
            "macro_f1": macro_f1,
            "deployed_macro_f1": deployed_macro_f1,
            "deployed_version": deployed_version,
            "unseen_documents": float(unseen),
            "max_regression": thresholds.max_regression,
        },
    )
