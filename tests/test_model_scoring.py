"""A deployed model reaches every document: model_scoring_sensor against a real (temporary,
SQLite-backed) Dagster instance, the asset graph's edges from the model to the predictions,
and the re-score policy on a second deploy."""

from __future__ import annotations

import pytest
from dagster import (
    AssetKey,
    AssetsDefinition,
    DagsterInstance,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
    instance_for_test,
    materialize,
)
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver
from sqlalchemy import select

from docflow_assets.definitions import defs
from docflow_assets.defs.documents import predictions, tfidf_features
from docflow_assets.defs.resources import DocflowResource, mlflow_tracking_resource
from docflow_assets.defs.sensors import (
    SCORING_PRIORITY,
    SCORING_RUNS_IN_FLIGHT,
    model_scoring_sensor,
)
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, Prediction
from tests.conftest import TrainedHome, today_partition, train_model
from tests.helpers import set_aside_other_tests_documents


def tick(instance: DagsterInstance, settings: DocflowSettings) -> SensorResult | SkipReason:
    context = build_sensor_context(
        instance=instance, resources={"docflow": DocflowResource(home=str(settings.home))}
    )
    result = model_scoring_sensor(context)
    assert isinstance(result, SensorResult | SkipReason)
    return result


def requested(result: SensorResult | SkipReason) -> list[int]:
    assert isinstance(result, SensorResult), result
    requests: list[RunRequest] = list(result.run_requests or [])
    return sorted(
        document_id
        for request in requests
        for document_id in request.run_config["ops"]["predictions"]["config"]["document_ids"]
    )


def run_requests(
    instance: DagsterInstance, settings: DocflowSettings, result: SensorResult | SkipReason
) -> None:
    """What the daemon does with the sensor's requests: each one a run of the scoring job."""
    assert isinstance(result, SensorResult)
    for request in result.run_requests or []:
        assert isinstance(request, RunRequest)
        assert set(request.run_config["ops"]) == {"tfidf_features", "predictions"}
        outcome = materialize(
            [tfidf_features, predictions],
            instance=instance,
            resources={"docflow": DocflowResource(home=str(settings.home))},
            partition_key=request.partition_key,
            run_config=request.run_config,
            tags=request.tags,
        )
        assert outcome.success


def versions_by_document(settings: DocflowSettings) -> dict[int, list[str]]:
    with session_scope(settings.resolved_database_url) as session:
        found: dict[int, list[str]] = {}
        for row in session.scalars(select(Prediction).order_by(Prediction.id)):
            assert row.document_id is not None
            found.setdefault(row.document_id, []).append(row.model_version)
        return found


def deploy_new_version(instance: DagsterInstance, settings: DocflowSettings) -> str:
    docflow = DocflowResource(home=str(settings.home))
    result = train_model(instance, {"docflow": docflow, "mlflow": mlflow_tracking_resource})
    [deployed] = [
        event.step_materialization_data.materialization
        for event in result.get_asset_materialization_events()
        if event.asset_key == AssetKey("deployed_model")
    ]
    return str(deployed.metadata["model_version"].value)


def stale(instance: DagsterInstance, key: str, partition: str) -> StaleStatus:
    """What the Dagster UI shows for the partition (the same resolver, from Dagster's own test
    helpers)."""
    assets = [asset for asset in defs.assets or [] if isinstance(asset, AssetsDefinition)]
    return get_stale_status_resolver(instance, assets).get_status(AssetKey(key), partition)


def test_the_graph_has_edges_from_the_deployed_model_to_what_it_makes() -> None:
    graph = defs.resolve_asset_graph()
    for key in ("tfidf_features", "predictions"):
        assert AssetKey("deployed_model") in graph.get(AssetKey(key)).parent_keys
    assert {s.name for s in defs.sensors or []} >= {"model_scoring_sensor"}


def unlabelled_documents(settings: DocflowSettings, ids: list[int]) -> list[int]:
    with session_scope(settings.resolved_database_url) as session:
        query = select(Document.id).where(Document.id.in_(ids), Document.label.is_(None))
        return sorted(session.scalars(query))


def test_a_deploy_scores_what_waits_and_rescores_the_unconfirmed(
    home_copy: DocflowSettings, trained_home: TrainedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = home_copy
    set_aside_other_tests_documents(settings, trained_home)
    own = sorted([*trained_home.training_ids, *trained_home.holdout])
    before = versions_by_document(settings)
    # The training documents were read before any model existed: nothing scored them since
    # (other tests of the shared home may have predicted a few by hand).
    waiting = sorted(i for i in trained_home.training_ids if i not in before)
    assert waiting
    with instance_for_test() as instance:
        first = tick(instance, settings)
        assert requested(first) == waiting
        assert isinstance(first, SensorResult)
        for request in first.run_requests or []:
            assert isinstance(request, RunRequest)
            assert request.tags["dagster/priority"] == SCORING_PRIORITY
            assert request.partition_key == today_partition()
        run_requests(instance, settings, first)
        scored = versions_by_document(settings)
        assert all(scored[i] == [trained_home.model_version] for i in waiting)
        with session_scope(settings.resolved_database_url) as session:
            statuses = set(session.scalars(select(Document.status).where(Document.id.in_(own))))
        assert statuses == {DocumentStatus.PREDICTED}
        assert "every document has version" in str(tick(instance, settings))

        second = deploy_new_version(instance, settings)
        assert second != trained_home.model_version
        # The UI marks the day's predictions stale: the model they came from has moved.
        assert stale(instance, "predictions", today_partition()) == StaleStatus.STALE
        unconfirmed = unlabelled_documents(settings, own)
        assert unconfirmed and len(unconfirmed) < len(own)
        rescore = tick(instance, settings)  # unconfirmed, the default: no label, no decision
        assert requested(rescore) == unconfirmed
        run_requests(instance, settings, rescore)
        after = versions_by_document(settings)
        for document_id in own:
            if document_id in unconfirmed:  # a new prediction; the history keeps the old ones
                assert after[document_id] == [*scored[document_id], second]
            else:  # reviewed documents keep their answers
                assert after[document_id] == scored[document_id]
        assert stale(instance, "predictions", today_partition()) == StaleStatus.FRESH
        assert isinstance(tick(instance, settings), SkipReason)

        monkeypatch.setenv("DOCFLOW_RESCORE_ON_DEPLOY", "none")
        assert isinstance(tick(instance, settings), SkipReason)
        monkeypatch.setenv("DOCFLOW_RESCORE_ON_DEPLOY", "all")
        assert requested(tick(instance, settings)) == sorted(set(own) - set(unconfirmed))


def test_scoring_runs_are_bounded_and_wait_for_documents_in_flight(
    home_copy: DocflowSettings, trained_home: TrainedHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large backlog becomes at most SCORING_RUNS_IN_FLIGHT runs a tick, of
    DOCFLOW_BATCH_SIZE documents each; the rest wait for the next tick."""
    monkeypatch.setenv("DOCFLOW_BATCH_SIZE", "3")
    set_aside_other_tests_documents(home_copy, trained_home)
    labelled = sorted(trained_home.training_ids)
    assert len(labelled) > 3 * SCORING_RUNS_IN_FLIGHT
    with instance_for_test() as instance:
        result = tick(instance, home_copy)
        assert isinstance(result, SensorResult)
        batches = list(result.run_requests or [])
        assert len(batches) == SCORING_RUNS_IN_FLIGHT
        assert len(requested(result)) == 3 * SCORING_RUNS_IN_FLIGHT
        assert set(requested(result)) < set(labelled)
