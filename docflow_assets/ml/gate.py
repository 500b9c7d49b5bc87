"""The deployment gate: what a newly trained classifier must show before it is served."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GateThresholds:
    min_macro_f1: float = 0.6
    max_regression: float = 0.0
    baseline_margin: float = 0.05


@dataclass(frozen=True)
class GateResult:
    name: str
    passed: bool
    detail: dict[str, float | str | None]


def floor_check(macro_f1: float, thresholds: GateThresholds) -> GateResult:
    return GateResult(
        "macro_f1_above_floor",
        macro_f1 >= thresholds.min_macro_f1,
        {"macro_f1": macro_f1, "floor": thresholds.min_macro_f1},
    )


def deployed_check(
    macro_f1: float,
    deployed_macro_f1: float | None,
    deployed_version: str | None,
    thresholds: GateThresholds,
) -> GateResult:
    """Not worse than the served model, both scored on the new model's held-out split."""
    passed = deployed_macro_f1 is None or macro_f1 >= deployed_macro_f1 - thresholds.max_regression
    return GateResult(
        "not_worse_than_deployed",
        passed,
        {
            "macro_f1": macro_f1,
            "deployed_macro_f1": deployed_macro_f1,
            "deployed_version": deployed_version,
            "max_regression": thresholds.max_regression,
        },
    )


def baseline_check(
    macro_f1: float, baseline_macro_f1: float, thresholds: GateThresholds
) -> GateResult:
    return GateResult(
        "beats_baseline",
        macro_f1 >= baseline_macro_f1 - thresholds.baseline_margin,
        {
            "macro_f1": macro_f1,
            "baseline_macro_f1": baseline_macro_f1,
            "margin": thresholds.baseline_margin,
        },
    )
