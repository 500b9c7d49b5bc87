"""The fault run's own arithmetic (benchmarks/chaos_run.py): a schedule fixed by its seed that
sets off every fault once, in a slot of its own, and the verdict it draws from the counts."""

from __future__ import annotations

import random

from benchmarks.chaos_run import Outcome, Progress, schedule

FAULTS = ["kill a worker", "restart the broker", "restart the database", "stop S3", "kill API"]


def test_the_schedule_sets_off_each_fault_once_in_its_own_slot_fixed_by_the_seed() -> None:
    plan = schedule(FAULTS, 300.0, random.Random(7))
    assert sorted(name for _, name in plan) == sorted(FAULTS)
    for index, (at, _) in enumerate(plan):
        assert index * 60 < at < index * 60 + 0.7 * 60
    assert schedule(FAULTS, 300.0, random.Random(7)) == plan
    assert schedule(FAULTS, 300.0, random.Random(8)) != plan


def test_progress_resumes_at_the_first_new_prediction_after_a_fault() -> None:
    progress = Progress([(0.0, 5), (10.0, 5), (20.0, 5), (26.0, 7), (30.0, 9)])
    assert progress.resumed_after(12.0) == 14.0
    assert progress.resumed_after(30.0) is None  # nothing predicted since
    assert Progress().resumed_after(1.0) is None


def outcome(**changes: object) -> Outcome:
    fields: dict[str, object] = {
        "acknowledged": 3,
        "rows": 3,
        "predicted": 3,
        "failed": {},
        "duplicated_predictions": [],
        "wrong_ocr_rows": [],
        "missing_files": [],
        "stuck_runs": [],
        "trainings": ["abc SUCCESS (first labels)", "def FAILURE (25 new labels)"],
        "verdicts": [("1", "passed", "every check passed"), ("2", "refused", "worse")],
        "drained_in": 40.0,
    }
    return Outcome(**{**fields, **changes})  # type: ignore[arg-type]


def test_the_verdict_names_every_broken_promise() -> None:
    assert outcome().failures() == []
    assert outcome(rows=2, predicted=2).lost == 1
    assert outcome(missing_files=[4]).lost == 1
    unjudged = outcome(verdicts=[("1", "passed", "every check passed")]).failures()
    assert unjudged == ["every training deployed or said why not"]
    broken = outcome(
        rows=2,
        predicted=2,
        duplicated_predictions=[1],
        stuck_runs=["process_documents_job 1234 STARTED"],
        trainings=["abc STARTED (25 new labels)"],
        drained_in=None,
    ).failures()
    assert broken == [
        "every acknowledged upload has its row",
        "every acknowledged upload is predicted",
        "no document predicted twice by one version",
        "no run left unfinished",
        "every training deployed or said why not",
        "the stack drained by itself",
    ]
