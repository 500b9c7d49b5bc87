"""Production mode end to end on real servers on loopback: the local PostgreSQL (application,
Dagster and MLflow databases), SeaweedFS as S3, an MLflow tracking server, the Dagster code
location as a gRPC server with the webserver and the daemon, and the API under uvicorn.

Documents go in through the API only; the daemon's sensors launch the runs; the model is trained
through Dagster's GraphQL API and checked in MLflow's registry. The restart test stops the
daemon, the S3 server and the API mid-stream and checks that nothing is lost or left waiting."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient
from mlflow import MlflowClient

from docflow_assets.demo.render import render_document
from docflow_assets.ml.registry import Registry
from docflow_assets.services import postgres_database
from tests.servers import (
    SeaweedS3,
    ServerProcess,
    Uploader,
    production_stack,
    upload,
    wait_for,
)

pytestmark = pytest.mark.integration

CLASSES = ("invoice", "memo", "resume")
TRAIN_PER_CLASS = 6
FINAL = {"predicted", "failed"}
MODEL_NAME = "docflow-classifier"
RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    ... on Runs {
      results { runId status tags { key value } eventConnection { events { __typename } } }
    }
  }
}
"""


@dataclass
class Stack:
    api_url: str
    webserver_port: int
    mlflow_url: str
    seaweed: SeaweedS3
    daemon: ServerProcess
    api: ServerProcess
    processes: list[ServerProcess] = field(default_factory=list)

    @property
    def graphql(self) -> DagsterGraphQLClient:
        return DagsterGraphQLClient("127.0.0.1", port_number=self.webserver_port, timeout=60)

    def upload(self, data: bytes, filename: str, label: str | None = None) -> httpx.Response:
        return upload(self.api_url, data, filename, label)

    def documents(self) -> list[dict[str, object]]:
        response = httpx.get(f"{self.api_url}/documents", params={"page_size": 500}, timeout=30)
        response.raise_for_status()
        return list(response.json()["items"])

    def statuses(self, ids: list[int]) -> dict[int, str]:
        wanted = set(ids)
        return {int(d["id"]): str(d["status"]) for d in self.documents() if d["id"] in wanted}

    def wait_until_final(
        self, ids: list[int], timeout: float, final: set[str] = FINAL
    ) -> dict[int, str]:
        """Until every document is in a final state (OCR'd is final while no model is served)."""
        wait_for(
            lambda: self._all_in(ids, final),
            timeout,
            f"documents {ids} to be processed: {self.statuses(ids)}\n{self.logs()}",
            interval=3,
        )
        return self.statuses(ids)

    def _all_in(self, ids: list[int], final: set[str]) -> bool:
        statuses = self.statuses(ids)
        return len(statuses) == len(ids) and set(statuses.values()) <= final

    def runs(self, job: str) -> list[dict[str, Any]]:
        response = self.graphql._execute(RUNS_QUERY, {"job": job})
        return list(response["runsOrError"]["results"])

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.log_tail(15)}" for p in self.processes)


def document_bytes(label: str, index: int, seed: int) -> tuple[bytes, str]:
    data, extension, _ = render_document(label, index, seed)
    return data, f"{label}-{seed}-{index}.{extension}"


def uploaded_id(response: httpx.Response) -> int:
    assert response.status_code in (200, 201), response.text
    return int(response.json()["id"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, seaweed: SeaweedS3) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("stack")
    with (
        postgres_database("app") as app_db,
        postgres_database("dagster") as dagster_db,
        postgres_database("mlflow") as mlflow_db,
    ):
        servers = production_stack(
            folder,
            seaweed.endpoint,
            {"app": app_db, "dagster": dagster_db, "mlflow": mlflow_db},
            {
                "DOCFLOW_OCR_WORKERS": "1",
                "DOCFLOW_MODEL_POLL_SECONDS": "5",
                # The first labels train (and a new class would); later uploads are too few to.
                "DOCFLOW_RETRAIN_MIN_NEW_LABELS": "1000",
            },
        )
        started = time.monotonic()
        try:
            for process in servers.processes:
                process.start()
            print(f"stack up in {time.monotonic() - started:.0f}s")
            yield Stack(
                servers.api_url,
                servers.webserver_port,
                servers.mlflow_url,
                seaweed,
                servers.daemon,
                servers.api,
                servers.processes,
            )
        finally:
            for process in reversed(servers.processes):
                process.stop()


def test_uploads_are_processed_and_a_model_is_trained_registered_and_served(
    stack: Stack,
) -> None:
    started = time.monotonic()
    labelled = [
        uploaded_id(stack.upload(*document_bytes(label, index, seed=31), label=label))
        for label in CLASSES
        for index in range(TRAIN_PER_CLASS)
    ]
    no_model_yet = {"ocr_done", "failed"}
    assert set(stack.wait_until_final(labelled, 420, no_model_yet).values()) == {"ocr_done"}

    # Nobody asks for a model: the daemon's training sensor snapshots the processed labels as
    # a new partition and trains on it.
    wait_for(
        lambda: any(
            stack.graphql.get_run_status(str(run["runId"])) == DagsterRunStatus.SUCCESS
            for run in stack.runs("train_model_job")
        ),
        420,
        f"a training run launched by the sensor\n{stack.logs()}",
        interval=3,
    )
    trainings = stack.runs("train_model_job")
    sensor_tag = {"key": "dagster/sensor_name", "value": "training_snapshot_sensor"}
    assert all(sensor_tag in run["tags"] for run in trainings)

    # Both URIs: earlier tests in the process leave a global registry URI behind.
    registry = MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)
    champion = registry.get_model_version_by_alias(MODEL_NAME, "champion")
    assert champion.run_id is not None
    trained_by = registry.get_run(champion.run_id).data.tags["dagster_run_id"]
    # With MLflow as a server, the classifier's materialisation links the run in its UI.
    link = Registry(stack.mlflow_url, None, MODEL_NAME).run_url(champion.run_id)
    assert link is not None and link.startswith(stack.mlflow_url)
    assert link.endswith(f"/runs/{champion.run_id}") and "/#/experiments/" in link
    version_link = Registry(stack.mlflow_url, None, MODEL_NAME).version_url(champion.version)
    assert version_link == f"{stack.mlflow_url}/#/models/{MODEL_NAME}/versions/{champion.version}"
    assert trained_by in {str(run["runId"]) for run in trainings}
    # The labelled uploads were read before any model existed: nobody launches a job, and the
    # daemon's model_scoring_sensor has the deployed version score them.
    assert set(stack.wait_until_final(labelled, 300).values()) == {"predicted"}
    scoring = stack.runs("score_documents_job")
    assert scoring, "the deploy led to scoring runs"
    scoring_tag = {"key": "dagster/sensor_name", "value": "model_scoring_sensor"}
    assert all(scoring_tag in run["tags"] for run in scoring)
    assert stack.seaweed.keys("mlflow/"), "MLflow's artefacts are in the S3 bucket"
    assert stack.seaweed.keys("stack/training_sets/partitions/"), "the snapshot is in S3"

    reloaded = httpx.post(f"{stack.api_url}/model/reload", timeout=120)
    assert reloaded.status_code == 200, reloaded.text
    assert reloaded.json()["version"] == champion.version

    fresh = {
        uploaded_id(stack.upload(*document_bytes(label, 0, seed=32))): label for label in CLASSES
    }
    assert set(stack.wait_until_final(list(fresh), timeout=300).values()) == {"predicted"}
    for document_id, label in fresh.items():
        history = httpx.get(f"{stack.api_url}/prediction/history/{document_id}", timeout=30)
        (prediction,) = [p for p in history.json()["predictions"] if p["source"] == "batch"]
        assert prediction["model_version"] == champion.version
        assert prediction["predicted_class"] == label

    sensor_runs = [
        run
        for run in stack.runs("process_documents_job")
        if {"key": "dagster/sensor_name", "value": "new_uploads_sensor"} in run["tags"]
    ]
    assert sensor_runs, "the daemon's sensor launched the processing runs"
    for run in sensor_runs:
        assert stack.graphql.get_run_status(str(run["runId"])) == DagsterRunStatus.SUCCESS
    print(f"end to end in {time.monotonic() - started:.0f}s, {len(sensor_runs)} sensor runs")


def test_stopping_the_daemon_the_s3_server_and_the_api_mid_stream_loses_nothing(
    stack: Stack,
) -> None:
    before = len(stack.documents())
    batch = [document_bytes(label, index, seed=41) for label in CLASSES for index in range(2)]

    # The daemon dies while a sensor-launched run is working on the first uploads.
    first = [uploaded_id(stack.upload(*document)) for document in batch[:2]]
    wait_for(
        lambda: any(s != "uploaded" for s in stack.statuses(first).values()),
        180,
        "a processing run to start",
    )
    stack.daemon.kill()
    second = [uploaded_id(stack.upload(*document)) for document in batch[2:4]]
    time.sleep(5)
    stack.daemon.start()

    # The S3 server goes away while the restarted daemon's run for the second pair is working;
    # uploads meanwhile get a 503 naming the store and leave nothing behind.
    second_batch = {"key": "docflow/documents", "value": f"{second[0]}-{second[-1]}"}
    wait_for(
        lambda: any(
            run["status"] in ("STARTING", "STARTED") and second_batch in run["tags"]
            for run in stack.runs("process_documents_job")
        ),
        180,
        "the restarted daemon to launch the second pair's run",
        interval=0.5,
    )
    stack.seaweed.stop()
    refused = stack.upload(*batch[4])
    assert refused.status_code == 503
    assert "object store" in refused.json()["detail"]
    time.sleep(10)
    stack.seaweed.start()

    # The API is killed between uploads of a client that retries what was not acknowledged.
    uploader = Uploader(stack.api_url, [*batch[4:], document_bytes("memo", 5, seed=42)])
    uploader.start()
    wait_for(lambda: len(uploader.ids) >= 1, 120, "the first upload of the stream")
    stack.api.kill()
    time.sleep(3)
    stack.api.start()
    uploader.join(timeout=180)
    assert not uploader.is_alive()
    assert not uploader.unexpected, uploader.unexpected

    ids = first + second + uploader.ids
    statuses = stack.wait_until_final(ids, timeout=600)
    documents = stack.documents()
    assert len(documents) == before + len(ids), "one row per acknowledged upload, no duplicate"
    hashes = [str(d["sha256"]) for d in documents]
    assert len(set(hashes)) == len(hashes)
    sent = {hashlib.sha256(data).hexdigest() for data, _ in batch}
    assert sent <= set(hashes), "every file the client sent is stored"
    stored = set(stack.seaweed.keys("stack/documents/"))
    for document in documents:
        assert f"stack/{document['storage_key']}" in stored
    failed = {i: s for i, s in statuses.items() if s == "failed"}
    runs = stack.runs("process_documents_job")
    step_retries = sum(
        event["__typename"] == "ExecutionStepUpForRetryEvent"
        for run in runs
        for event in run["eventConnection"]["events"]
    )
    run_retries = sum(
        any(tag["key"] == "dagster/retry_number" for tag in run["tags"]) for run in runs
    )
    print(
        f"restart test: {len(ids)} documents, statuses {statuses}, failed {failed}, "
        f"api connection errors {uploader.connection_errors}, 503s {len(uploader.refusals)}, "
        f"runs {[run['status'] for run in runs]}, after the S3 outage: steps retried "
        f"{step_retries}, runs retried {run_retries}"
    )
    assert step_retries + run_retries >= 1, "the S3 outage hit the run, which rode it out"
    assert not failed, [httpx.get(f"{stack.api_url}/document/{i}").json() for i in failed]
    # A model is served (the earlier test deployed one): every acknowledged upload ends
    # predicted through the daemon alone.
    assert set(statuses.values()) == {"predicted"}, statuses
