"""The demo's run on the embedded default: render a corpus, start Dagster (webserver and daemon),
ingest, then follow what the sensors do (OCR runs, the training run, the deployed model's
scoring runs), and start the API. The CLI only shows its progress; this module knows the steps."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, MutableMapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster_graphql import DagsterGraphQLClient

from docflow_assets import services
from docflow_assets.defs.partitions import PARTITION_TAG, TRAINING_SNAPSHOTS
from docflow_assets.demo.render import render_corpus
from docflow_assets.document_service import DocumentService
from docflow_assets.document_service.intake import IngestedFolder
from docflow_assets.ingest import read_labels
from docflow_assets.ml.registry import Registry
from docflow_assets.ml.training_set import snapshot_partition_key
from docflow_assets.settings import DocflowSettings

REPO_ROOT = Path(__file__).resolve().parents[1]
# The training sensor looks every minute; a run it launches is queued soon after.
SENSOR_GRACE_SECONDS = 180
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


class DemoFailed(Exception):
    pass


@dataclass(frozen=True)
class DemoSummary:
    documents: int
    statuses: dict[str, int]
    predicted: int
    model_version: str | None
    metrics: dict[str, float]


class DemoProgress(Protocol):
    """What the demo tells its user; the CLI renders it (rules, progress bars, spinners)."""

    def step(self, title: str) -> None: ...

    def note(self, message: str) -> None: ...

    def counting(self, what: str, total: int) -> AbstractContextManager[Callable[[int], None]]: ...

    def waiting(self, what: str) -> AbstractContextManager[object]: ...


def prepare_dagster_home(environment: MutableMapping[str, str], home: Path) -> Path:
    """DAGSTER_HOME as ``environment`` sets it, else under the Docflow home, with the
    repository's instance configuration when it has none of its own."""
    dagster_home = Path(environment.setdefault("DAGSTER_HOME", str(home / "dagster_home")))
    dagster_home.mkdir(parents=True, exist_ok=True)
    instance_config = dagster_home / "dagster.yaml"
    if not instance_config.exists():
        instance_config.write_text((REPO_ROOT / "dagster.yaml").read_text())
    return dagster_home


def ingest_labelled_folder(
    settings: DocflowSettings, folder: Path, labels: Path | None
) -> IngestedFolder:
    return DocumentService.from_settings(settings).ingest_folder(
        folder, read_labels(labels) if labels else None, show_progress=True
    )


class DemoStack:
    def __init__(
        self,
        settings: DocflowSettings,
        progress: DemoProgress,
        dagster_port: int,
        api_port: int,
        timeout: float,
    ) -> None:
        self.settings = settings
        self.service = DocumentService.from_settings(settings)
        self.progress = progress
        self.dagster_port = dagster_port
        self.api_port = api_port
        self.timeout = timeout
        home = settings.resolved_home
        self.run_dir = home / "run"
        self.env = {**os.environ, "DOCFLOW_HOME": str(home), "OMP_THREAD_LIMIT": "1"}
        self.dagster_home = prepare_dagster_home(self.env, home)
        self.client = DagsterGraphQLClient("127.0.0.1", port_number=dagster_port)

    def run(self, per_class: int) -> DemoSummary:
        started = datetime.now(UTC)
        # MLflow's tables, before parallel runs race to make them.
        Registry.from_settings(self.settings).experiment_id()
        corpus = self.settings.resolved_home / "demo-corpus"
        self.progress.step("1. demo corpus")
        render_corpus(corpus, per_class, seed=0, show_progress=True)

        self.progress.step("2. Dagster (webserver + daemon with the new-uploads sensor)")
        services.start(
            services.dagster_service(self.dagster_port, REPO_ROOT / "workspace.yaml"),
            self.run_dir,
            self.env,
        )

        self.progress.step("3. ingest")
        report = ingest_labelled_folder(self.settings, corpus, corpus / "labels.csv")
        self.progress.note(f"{len(report.added)} added, {len(report.duplicates)} already there")
        ids = [document.id for document in report.added + report.duplicates]

        self.progress.step("4. sensor-launched OCR runs")
        self._wait_for_documents(ids)

        self.progress.step("5. training_snapshot_sensor: snapshot, train, register, deploy")
        self._wait_for_run(self._training_run(started))

        self.progress.step("6. model_scoring_sensor: the deployed model scores what waits")
        self._wait_for_documents(
            ids, "documents predicted by sensor runs", self.service.settled_count
        )

        self.progress.step("7. API")
        services.start(services.api_service(self.api_port), self.run_dir, self.env)
        outcome = self.service.outcome(ids)
        return DemoSummary(
            len(ids),
            outcome.statuses,
            outcome.with_predictions,
            outcome.latest_model_version,
            outcome.latest_model_metrics,
        )

    def _wait_for_documents(
        self,
        ids: list[int],
        what: str = "documents processed by sensor runs",
        count: Callable[[list[int]], int] | None = None,
    ) -> None:
        deadline = time.monotonic() + self.timeout
        with self.progress.counting(what, len(ids)) as update:
            while True:
                finished = (count or self.service.processed_count)(ids)
                update(finished)
                if finished >= len(ids):
                    return
                if time.monotonic() > deadline:
                    raise DemoFailed(f"timed out waiting for {what}")
                time.sleep(2)

    def _training_run(self, since: datetime) -> str:
        """The run training_snapshot_sensor launched for the demo's labels; on a home whose
        labels are already learned the sensor has nothing to do, so the demo asks for one."""
        with DagsterInstance.from_config(str(self.dagster_home)) as instance:
            launched = self._sensor_training_run(instance, since)
            if launched is not None:
                return launched
            partition = snapshot_partition_key(datetime.now(UTC))
            instance.add_dynamic_partitions(TRAINING_SNAPSHOTS, [partition])
        self.progress.note("the sensor found nothing new to learn; training by hand")
        return self.client.submit_job_execution("train_model_job", tags={PARTITION_TAG: partition})

    def _sensor_training_run(self, instance: DagsterInstance, since: datetime) -> str | None:
        deadline = time.monotonic() + SENSOR_GRACE_SECONDS
        with self.progress.waiting("waiting for training_snapshot_sensor"):
            while time.monotonic() < deadline:
                runs = instance.get_runs(
                    RunsFilter(job_name="train_model_job", created_after=since), limit=1
                )
                if runs:
                    return runs[0].run_id
                time.sleep(3)
        return None

    def _wait_for_run(self, run_id: str) -> None:
        deadline = time.monotonic() + self.timeout
        with self.progress.waiting(f"run {run_id}"):
            while (status := self.client.get_run_status(run_id)) not in FINISHED:
                if time.monotonic() > deadline:
                    raise DemoFailed(f"run {run_id} did not finish in {self.timeout:.0f}s")
                time.sleep(2)
        if status != DagsterRunStatus.SUCCESS:
            raise DemoFailed(f"run {run_id} ended {status.value}; see the Dagster UI")
        self.progress.note(f"run {run_id}: {status.value}")
