"""Gated deployment, rollback, safe model files, trained models as partitions, and the
training sensor's rules."""

from __future__ import annotations

import json
import pickle
import random
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import torch
from dagster import (
    AssetKey,
    DagsterInstance,
    SensorResult,
    SkipReason,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from sqlalchemy import select

from docflow_assets.definitions import defs
from docflow_assets.defs.model import MIN_DOCUMENTS_PER_CLASS
from docflow_assets.defs.resources import DocflowResource, mlflow_tracking_resource
from docflow_assets.demo.render import RenderedDocument
from docflow_assets.document_service import DocumentService
from docflow_assets.ml.classifier import DocumentClassifier
from docflow_assets.ml.gate import (
    GateThresholds,
    baseline_check,
    deployed_check,
    floor_check,
    majority_check,
)
from docflow_assets.ml.registry import Registry
from docflow_assets.ml.training import Head, TrainingConfig, evaluate, train_classifier
from docflow_assets.ml.training_set import (
    current_snapshot_labels,
    retrain_decision,
    save_snapshot,
)
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus
from docflow_assets.store.objects import LocalObjectStore
from tests.conftest import TrainedHome, new_training_snapshot, train_model
from tests.helpers import set_aside_other_tests_documents


def resources(settings: DocflowSettings, training: bool = True) -> dict[str, object]:
    """Docflow's resource, and dagster-mlflow's for runs that train (it opens an MLflow run)."""
    docflow = DocflowResource(home=str(settings.home))
    return (
        {"docflow": docflow, "mlflow": mlflow_tracking_resource}
        if training
        else {"docflow": docflow}
    )


def registry(settings: DocflowSettings) -> Registry:
    return Registry.from_settings(settings)


def test_gate_refuses_a_model_trained_on_shuffled_labels(
    home_copy: DocflowSettings, trained_home: TrainedHome
) -> None:
    with session_scope(home_copy.resolved_database_url) as session:
        # What a snapshot takes: labelled documents already read (earlier tests leave others).
        read = (DocumentStatus.OCR_DONE, DocumentStatus.PREDICTED)
        labelled = list(
            session.scalars(
                select(Document).where(Document.label.is_not(None), Document.status.in_(read))
            )
        )
        # Labels dealt at random: the fewest each class may have, the rest to one class. Chance
        # is then that class's share, and a model without signal cannot beat it by the margin
        # through luck (over 8 balanced classes it now and then did: the margin was about two
        # standard deviations of chance on this home's few dozen documents).
        classes = sorted({str(document.label) for document in labelled})
        dealt = [name for name in classes[1:] for _ in range(MIN_DOCUMENTS_PER_CLASS)]
        dealt += [classes[0]] * (len(labelled) - len(dealt))
        random.Random(3).shuffle(dealt)
        for document, label in zip(labelled, dealt, strict=True):
            document.label = label
    with DagsterInstance.ephemeral() as instance:
        result = train_model(instance, resources(home_copy), raise_on_error=False)
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    # No absolute floor by default; a model that guesses no better than always naming the
    # largest class is refused whatever its baseline does.
    assert checks["macro_f1_above_floor"] is True
    assert checks["beats_majority_class"] is False
    assert {"beats_baseline", "not_worse_than_deployed"} <= set(checks)
    events = result.get_asset_materialization_events()
    materialised = {e.asset_key.to_user_string() for e in events if e.asset_key is not None}
    assert "document_classifier" in materialised  # the version is registered, for the record
    assert "deployed_model" not in materialised
    served = registry(home_copy)
    assert served.version_for_alias(home_copy.model_alias) == trained_home.model_version
    version, verdict, reason = served.last_verdict() or ("", "", "")
    assert version != trained_home.model_version and verdict == "refused"
    assert "beats_majority_class: cross-validated accuracy" in reason
    # The front page and the review page say which version was refused and why.
    from html import unescape

    from litestar.testing import TestClient

    from docflow_api.app import create_app

    with TestClient(create_app(home_copy)) as client:
        for page in ("/", "/review"):
            shown = unescape(client.get(page).text)
            assert f"Serving version {trained_home.model_version}" in shown
            assert f"Version {version} was refused by the deployment gate" in shown
            assert "beats_majority_class: cross-validated accuracy" in shown


def test_the_gate_is_relative_and_says_why() -> None:
    default = GateThresholds()
    unset = floor_check(0.3, default)
    assert unset.passed and "no absolute floor" in unset.reason
    floor = GateThresholds(min_macro_f1=0.5)
    assert not floor_check(0.4, floor).passed and floor_check(0.5, floor).passed
    ahead = baseline_check(0.61, 0.44, [0.6, 0.7, 0.5], [0.4, 0.5, 0.5], default)
    assert ahead.passed and "on 3 of 3 folds" in ahead.reason
    assert not baseline_check(0.40, 0.44, [0.4, 0.4], [0.45, 0.43], default).passed
    assert majority_check(0.50, 0.20, default).passed
    assert not majority_check(0.25, 0.20, default).passed  # not clearly better than naming one
    assert deployed_check(None, None, None, 0, default).passed  # nothing served yet
    few = deployed_check(0.5, 0.9, "3", 4, default)
    assert few.passed and "only 4 labelled documents are new to version 3" in few.reason
    refused = deployed_check(0.85, 0.91, "3", 40, default)
    assert not refused.passed and refused.detail["deployed_version"] == "3"
    assert deployed_check(0.90, 0.91, "3", 40, GateThresholds(max_regression=0.02)).passed


def test_cross_validation_picks_the_candidate_that_does_better_on_unseen_documents() -> None:
    """Rendered documents score 1.000 whatever the model; a set with shared vocabulary, OCR
    noise and 12 labels a class tells candidates apart."""
    from docflow_assets.demo.hard_texts import hard_corpus

    texts, labels = hard_corpus(classes=8, per_class=12, seed=0)
    unseen, truth = hard_corpus(classes=8, per_class=15, seed=1)
    linear = Head("linear", hidden=0, weight_decay=1e-2, learning_rate=1e-2)
    # Weight decay this strong pins the first layer near zero: it cannot learn much.
    poor = Head("mlp-crushed", hidden=32, weight_decay=3.0, learning_rate=2e-3)
    config = TrainingConfig(heads=(poor, linear), folds=4, max_epochs=30)
    result = train_classifier(texts, labels, config)
    assert result.chosen == max(result.head_scores, key=lambda name: result.head_scores[name])
    assert {f"logistic-C{c:g}" for c in (1, 4, 16, 64)} <= set(result.head_scores)
    # A network that trails from the first fold on is dropped, and says why.
    assert "mlp-crushed" in result.dropped_heads
    assert "after fold 1 of 4" in result.dropped_heads["mlp-crushed"]
    assert "mlp-crushed" not in result.head_scores
    # The final fit saw them all.
    assert result.split_sizes == {"train": len(texts), "cross_validated": len(texts), "folds": 4}
    # The cross-validated figure is what unseen documents get, within the noise of 120.
    predicted = [s.predicted_class for s in result.classifier.score_texts(unseen)]
    held_out = evaluate(sorted(set(labels)), truth, predicted).macro_f1
    assert abs(held_out - result.test.macro_f1) < 0.15, (held_out, result.test.macro_f1)
    # Calibrated: the mean confidence on unseen documents is close to the share it gets right.
    scored = result.classifier.score_texts(unseen)
    accuracy = sum(s.predicted_class == t for s, t in zip(scored, truth, strict=True)) / len(truth)
    confidence = sum(s.confidence for s in scored) / len(scored)
    assert abs(confidence - accuracy) < 0.15, (confidence, accuracy)
    assert result.test.macro_f1 > result.majority_rate


def test_where_the_baseline_is_best_it_is_served_as_an_exact_pytorch_head() -> None:
    """A set on which logistic regression at the baseline's strength beats every other
    candidate: the served model is that regression, fitted exactly (the same answers as
    scikit-learn's), never worse on the folds than the baseline, and the gate says why."""
    from sklearn.linear_model import LogisticRegression

    from docflow_assets.demo.hard_texts import hard_corpus
    from docflow_assets.ml.gate import GateThresholds
    from docflow_assets.ml.promotion import ServedComparison, judge

    texts, labels = hard_corpus(classes=6, per_class=10, seed=4)
    crushed = Head("mlp-crushed", hidden=32, weight_decay=3.0, learning_rate=2e-3)
    # Much stronger regularisation than the baseline's loses on these texts.
    config = TrainingConfig(heads=(crushed,), logistic_path=(1e-3, 1e-2, 1.0), folds=3)
    result = train_classifier(texts, labels, config)
    assert result.chosen == "logistic-C1" and result.chosen_is_baseline_family
    assert result.head_scores["logistic-C1"] > result.head_scores["logistic-C0.001"]
    assert result.test.macro_f1 == result.baseline_test.macro_f1
    assert result.fold_scores["logistic-C1"] == result.fold_scores["baseline"]
    # The served network is scikit-learn's fit: same probabilities, up to the temperature.
    classifier = result.classifier
    features = classifier.vectorizer.transform(texts)
    reference = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(
        features, labels
    )
    temperature = classifier.temperature
    logits = reference.decision_function(features) / temperature
    expected = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    assert list(reference.classes_) == classifier.classes
    assert abs(classifier.predict_proba(features) - expected).max() < 1e-4
    assert classifier.hyperparameters["family"] == "logistic"
    verdict = judge(result, ServedComparison(None), GateThresholds())
    assert verdict.passed, verdict.reason
    baseline = next(gate for gate in verdict.gates if gate.name == "beats_baseline")
    assert "by construction" in baseline.reason and "C=1" in baseline.reason


def test_the_candidate_is_never_worse_on_its_folds_than_the_baseline() -> None:
    """Whatever wins, on any set: the baseline is one of the candidates on the same folds."""
    from docflow_assets.demo.hard_texts import hard_corpus

    for classes, seed in ((5, 0), (5, 5), (2, 1)):
        texts, labels = hard_corpus(classes=classes, per_class=9, seed=seed)
        result = train_classifier(texts, labels, TrainingConfig(folds=3, max_epochs=20))
        assert result.test.macro_f1 >= result.baseline_test.macro_f1
        assert set(result.head_scores) >= {"logistic-C1", "logistic-C16"}
        # What is served answers as cross-validation expected of it on the texts it saw.
        scored = result.classifier.score_texts(texts)
        assert sum(s.predicted_class == t for s, t in zip(scored, labels, strict=True)) > 0.9 * len(
            labels
        )


@pytest.fixture(scope="module")
def two_versions(
    tmp_path_factory: pytest.TempPathFactory,
    training_corpus: tuple[Path, list[RenderedDocument]],
) -> Iterator[tuple[Registry, list[str]]]:
    """A fresh registry holding two versions trained on ground-truth text (no OCR needed)."""
    _, rendered = training_corpus
    settings = DocflowSettings(home=tmp_path_factory.mktemp("registry"))
    store = registry(settings)
    texts, labels = [d.text for d in rendered], [d.label for d in rendered]
    versions = []
    for seed in (1, 2):
        result = train_classifier(texts, labels, TrainingConfig(seed=seed, max_epochs=15))
        versions.append(store.log_training(result, f"hash-{seed}", {}).version)
    yield store, versions


def test_rollback_returns_to_the_version_served_before(two_versions) -> None:
    store, (first, second) = two_versions
    assert store.deploy("champion", first) is None
    assert store.deploy("champion", second) == first
    assert store.rollback("champion") == (second, first)
    assert store.version_for_alias("champion") == first
    assert store.rollback("champion", to_version=second) == (first, second)
    with pytest.raises(Exception, match="999"):
        store.rollback("champion", to_version="999")
    assert store.version_for_alias("champion") == second


def test_served_model_loads_without_unpickling(two_versions, monkeypatch) -> None:
    store, (first, _) = two_versions

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("model loading must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = store.load(first)
    assert isinstance(loaded.classifier, DocumentClassifier)
    scored = loaded.classifier.score_texts(["SALES RECEIPT TOTAL CASH CHANGE Thank you"])
    assert scored[0].predicted_class == "receipt"


def test_the_retrain_rule_waits_for_ocr_and_counts_new_labels_new_classes_and_age() -> None:
    def labels(pairs: dict[int, str]) -> pd.DataFrame:
        return pd.DataFrame({"document_id": list(pairs), "label": list(pairs.values())})

    before = labels({1: "memo", 2: "invoice", 3: "memo"})
    week, hold = timedelta(days=7), timedelta(minutes=15)

    def decide(now: pd.DataFrame, **changes: object):
        arguments: dict = {
            "labelled_in_processing": 0,
            "min_new_labels": 2,
            "model_age": None,
            "held_back_for": None,
        }
        arguments.update(changes)
        return retrain_decision(before, now, max_model_age=week, max_hold=hold, **arguments)

    assert retrain_decision(None, before, 0, 50, None, week, None, hold).snapshot  # first labels
    assert not retrain_decision(None, labels({}), 0, 50, None, week, None, hold).snapshot
    one_more = labels({1: "memo", 2: "invoice", 3: "memo", 4: "memo"})
    assert not decide(one_more).snapshot
    assert "1 new labels since the last snapshot; 2 make one" in decide(one_more).reason
    relabelled = labels({1: "invoice", 2: "invoice", 3: "memo", 4: "memo"})
    assert decide(relabelled).snapshot  # a changed label counts as new
    newcomer = labels({1: "memo", 2: "invoice", 3: "memo", 4: "letter"})
    assert "['letter']" in decide(newcomer).reason and decide(newcomer).snapshot
    waiting = decide(newcomer, labelled_in_processing=3)
    assert not waiting.snapshot and waiting.held_back
    assert waiting.reason.startswith("3 labelled documents are still being processed; due (")
    # Under a steady stream some labelled documents are always in OCR: the hold ends.
    assert decide(newcomer, held_back_for=timedelta(minutes=14), labelled_in_processing=3).held_back
    late = decide(newcomer, held_back_for=timedelta(minutes=16), labelled_in_processing=3)
    assert late.snapshot and "held back 16 min while 3 labelled documents" in late.reason
    not_due = decide(one_more, labelled_in_processing=3)
    assert not not_due.snapshot and not not_due.held_back
    assert decide(before, model_age=timedelta(days=8)).snapshot  # stale
    assert not decide(before, model_age=timedelta(days=6)).snapshot


def tick(instance: DagsterInstance, settings: DocflowSettings, cursor: str | None = None):
    """One evaluation of the daemon's training sensor on a real instance: a SensorResult
    (run requests, partitions to add, cursor) or a SkipReason."""
    context = build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"docflow": DocflowResource(home=str(settings.home))},
    )
    return defs.resolve_sensor_def("training_snapshot_sensor")(context)


def skipped(result) -> str:
    if isinstance(result, SensorResult):
        assert not result.run_requests and result.skip_reason is not None, result
        return str(result.skip_reason.skip_message)
    assert isinstance(result, SkipReason), result
    return str(result.skip_message)


def label(settings: DocflowSettings, labels: dict[int, str]) -> None:
    with session_scope(settings.resolved_database_url) as session:
        for document_id, name in labels.items():
            session.get(Document, document_id).label = name  # type: ignore[union-attr]


def test_a_snapshot_keeps_its_labels_apart_for_the_sensor_to_read(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path / "objects")
    assert current_snapshot_labels(store) is None
    rng = random.Random(0)
    texts = ["".join(rng.choices("abcdefghij ", k=20_000)) for _ in range(2)]
    frame = pd.DataFrame({"document_id": [1, 2], "label": ["invoice", "letter"], "text": texts})
    snapshot = save_snapshot(store, frame, "20261128-000000")
    labels_key = snapshot.key.replace(".parquet", ".labels.parquet")
    # The sensor reads the small file: the labels only, a fraction of the snapshot's bytes.
    assert len(store.get_bytes(labels_key)) * 4 < len(store.get_bytes(snapshot.key))
    expected = frame[["document_id", "label"]]
    pd.testing.assert_frame_equal(current_snapshot_labels(store), expected)
    store.delete(labels_key)  # as a snapshot taken before the labels had a file of their own
    pd.testing.assert_frame_equal(current_snapshot_labels(store), expected)


def test_the_sensor_trains_a_new_partition_on_enough_new_labels_once_and_when_stale(
    home_copy: DocflowSettings, trained_home: TrainedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_aside_other_tests_documents(home_copy, trained_home)
    holdout = sorted(trained_home.holdout)
    monkeypatch.setenv("DOCFLOW_RETRAIN_MIN_NEW_LABELS", str(len(holdout)))
    job = defs.resolve_job_def("train_model_job")
    with instance_for_test() as instance:
        assert skipped(tick(instance, home_copy)) == (
            f"0 new labels since the last snapshot; {len(holdout)} make one"
        )
        label(home_copy, {i: trained_home.holdout[i] for i in holdout[:-1]})
        assert f"{len(holdout) - 1} new labels" in skipped(tick(instance, home_copy))
        label(home_copy, {holdout[-1]: trained_home.holdout[holdout[-1]]})
        asked = tick(instance, home_copy)
        [request] = asked.run_requests
        assert request.tags["docflow/why"] == (
            f"{len(holdout)} new or changed labels (threshold {len(holdout)})"
        )
        [added] = asked.dynamic_partitions_requests
        assert list(added.partition_keys) == [request.partition_key]
        # Asked once: until that run has snapshotted the labels, the next ticks wait for it.
        assert "already asked" in skipped(tick(instance, home_copy, asked.cursor))

        instance.add_dynamic_partitions("training_snapshots", [request.partition_key])
        trained = job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            resources=resources(home_copy),
            raise_on_error=False,
        )
        assert trained.success
        assert skipped(tick(instance, home_copy, asked.cursor)) == (
            f"0 new labels since the last snapshot; {len(holdout)} make one"
        )
        # The trained model is a partition of document_classifier, and the deployed model
        # records which one is served.
        classifier = instance.get_latest_materialization_event(AssetKey("document_classifier"))
        trained_model = classifier.asset_materialization if classifier else None
        assert trained_model is not None and trained_model.partition == request.partition_key
        version = trained_model.metadata["model_version"].value
        deployed = instance.get_latest_materialization_event(AssetKey("deployed_model"))
        metadata = deployed.asset_materialization.metadata  # type: ignore[union-attr]
        assert metadata["training_snapshot"].value == request.partition_key
        assert metadata["model_version"].value == version
        assert registry(home_copy).version_for_alias(home_copy.model_alias) == version

        # Freshness: a model older than DOCFLOW_MODEL_MAX_AGE_DAYS is retrained on the labels
        # it already had, as a new partition.
        monkeypatch.setenv("DOCFLOW_MODEL_MAX_AGE_DAYS", str(0.5 / 86400))
        time.sleep(1)
        [stale] = tick(instance, home_copy).run_requests
        assert "days old" in stale.tags["docflow/why"]
        assert stale.partition_key != request.partition_key


def test_the_sensor_waits_for_labelled_documents_in_ocr_and_trains_for_a_new_class(
    home_copy: DocflowSettings, trained_home: TrainedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_aside_other_tests_documents(home_copy, trained_home)
    newcomer, still_in_ocr = sorted(trained_home.holdout)[:2]
    label(home_copy, {newcomer: "purchase-order", still_in_ocr: trained_home.holdout[still_in_ocr]})
    with session_scope(home_copy.resolved_database_url) as session:
        session.get(Document, still_in_ocr).status = DocumentStatus.UPLOADED  # type: ignore[union-attr]
    with instance_for_test() as instance:
        held = tick(instance, home_copy)
        assert skipped(held).startswith("1 labelled documents are still being processed; due")
        held_since = json.loads(held.cursor)["held_since"]
        again = tick(instance, home_copy, held.cursor)  # the hold keeps its start
        assert json.loads(again.cursor)["held_since"] == held_since
        monkeypatch.setenv("DOCFLOW_RETRAIN_MAX_HOLD_MINUTES", "0.001")
        time.sleep(0.1)
        [late] = tick(instance, home_copy, again.cursor).run_requests
        assert "they wait for the next" in late.tags["docflow/why"]
        monkeypatch.delenv("DOCFLOW_RETRAIN_MAX_HOLD_MINUTES")
        with session_scope(home_copy.resolved_database_url) as session:
            session.get(Document, still_in_ocr).status = DocumentStatus.OCR_DONE  # type: ignore[union-attr]
        # Two new labels, far under the threshold of 50, but one names a class no model knows.
        [request] = tick(instance, home_copy).run_requests
        assert request.tags["docflow/why"] == (
            "labels of classes no model has seen: ['purchase-order']"
        )


def test_predictions_score_with_the_version_that_made_the_features(
    home_copy: DocflowSettings,
    trained_home: TrainedHome,
    training_corpus: tuple[Path, list[RenderedDocument]],
) -> None:
    from docflow_assets.defs.documents import predictions, tfidf_features
    from tests.conftest import today_partition

    holdout = sorted(trained_home.holdout)

    def materialize_only(asset):
        name = asset.key.to_user_string()
        return materialize(
            [tfidf_features, predictions],
            selection=[asset.key],
            resources=resources(home_copy, training=False),
            partition_key=today_partition(),
            run_config={"ops": {name: {"config": {"document_ids": holdout}}}},
        )

    assert materialize_only(tfidf_features).success
    # The alias moves between the features and the predictions, as a deployment can.
    _, rendered = training_corpus
    newer = train_classifier(
        [d.text for d in rendered], [d.label for d in rendered], TrainingConfig(max_epochs=3)
    )
    store = registry(home_copy)
    newer_version = store.log_training(newer, "hash-newer", {}).version
    store.deploy(home_copy.model_alias, newer_version)

    scored = materialize_only(predictions)
    assert scored.success
    (materialization,) = scored.asset_materializations_for_node("predictions")
    assert materialization.metadata["model_version"].value == trained_home.model_version
    assert trained_home.model_version != newer_version
    # This batch: the trained home's pipeline had scored it with that version already, and a
    # version does not score a reading twice.
    metadata = materialization.metadata
    assert metadata["already_scored"].value == len(holdout)
    assert metadata["documents"].value == 0
    # The partition is the upload day: its row count is every predicted document of the day.
    day = DocumentService.from_settings(home_copy).day_counts(date.fromisoformat(today_partition()))
    assert materialization.metadata["dagster/row_count"].value == day["predicted"] >= len(holdout)


def test_a_manual_training_trains_on_todays_labels_even_with_none_new(
    home_copy: DocflowSettings, trained_home: TrainedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_aside_other_tests_documents(home_copy, trained_home)
    monkeypatch.setenv("DOCFLOW_HOME", str(home_copy.home))
    job = defs.resolve_job_def("train_model_job")
    with instance_for_test() as instance:
        partition = new_training_snapshot(instance)
        result = job.execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
    events = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    assert events["training_set"]["new_labels"].value == 0  # nothing new, trained all the same
    assert events["document_classifier"]["verdict"].value == "deploy"
    assert events["document_classifier"]["training_snapshot"].value == partition
    assert events["deployed_model"]["training_snapshot"].value == partition
    new_version = str(events["document_classifier"]["model_version"].value)
    assert registry(home_copy).version_for_alias(home_copy.model_alias) == new_version
    assert registry(home_copy).last_verdict() == (new_version, "passed", "every check passed")


def test_training_runs_are_never_retried() -> None:
    """A gate refusal fails the run on purpose: a retry would train the same snapshot again."""
    sensor = defs.resolve_sensor_def("training_snapshot_sensor")
    assert sensor.job_name == "train_model_job"
    assert defs.resolve_job_def("train_model_job").tags["dagster/max_retries"] == "0"


def test_docflow_train_prints_the_verdict_and_deploys(
    home_copy: DocflowSettings, trained_home: TrainedHome, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from docflow_assets.cli import main

    environment = {"DOCFLOW_HOME": str(home_copy.home), "DAGSTER_HOME": str(tmp_path / "dg")}
    result = CliRunner().invoke(main, ["train"], env=environment)
    assert result.exit_code == 0, result.output
    assert "beats_baseline" in result.output and "beats_majority_class" in result.output
    assert f"deployed as {home_copy.model_name}@{home_copy.model_alias}" in result.output
    served = registry(home_copy).version_for_alias(home_copy.model_alias)
    assert served != trained_home.model_version
    assert f"model version {served}" in result.output
