"""Processing runs on Celery workers for real: RabbitMQ on loopback (a throw-away virtual host),
two `docflow worker` processes, and runs launched as `dagster job execute` processes, each the
run worker that hands its steps to the broker. A worker killed mid-step gives its step back."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from dagster import DagsterEventType, DagsterInstance
from sqlalchemy import func, select

from docflow_assets import services
from docflow_assets.defs.partitions import TRAINING_SNAPSHOTS
from docflow_assets.defs.sensors import batch_run_config
from docflow_assets.demo.render import render_document
from docflow_assets.ingest import ingest
from docflow_assets.ml.registry import Registry
from docflow_assets.ml.training_set import snapshot_partition_key
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, OcrResult
from docflow_assets.store.objects import open_object_store
from tests.servers import BIN, ServerProcess, wait_for

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[1]


@dataclass
class CeleryStack:
    settings: DocflowSettings
    env: dict[str, str]
    dagster_home: Path
    workers: dict[str, ServerProcess]
    folder: Path

    def launch(self, document_ids: list[int]) -> subprocess.Popen[bytes]:
        """A processing run of these documents, its run worker a process of its own."""
        config = self.folder / f"run-{document_ids[0]}.json"
        config.write_text(json.dumps(batch_run_config(document_ids)))
        partition = datetime.now(UTC).date().isoformat()
        return subprocess.Popen(
            services.job_command("process_documents_job", config, {"dagster/partition": partition}),
            env=self.env,
            stdout=(self.folder / f"run-{document_ids[0]}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )

    def train(self) -> subprocess.Popen[bytes]:
        """A training run of a new snapshot partition, as training_snapshot_sensor launches."""
        with DagsterInstance.from_config(str(self.dagster_home)) as instance:
            partition = snapshot_partition_key(datetime.now(UTC))
            instance.add_dynamic_partitions(TRAINING_SNAPSHOTS, [partition])
        config = self.folder / "train.json"
        config.write_text("{}")
        return subprocess.Popen(
            services.job_command("train_model_job", config, {"dagster/partition": partition}),
            env=self.env,
            stdout=(self.folder / "train.log").open("wb"),
            stderr=subprocess.STDOUT,
        )

    def steps_by_worker(self, step: str) -> list[str]:
        """The Celery worker of each execution of ``step``, in order, run after run."""
        with DagsterInstance.from_config(str(self.dagster_home)) as instance:
            entries = [
                entry
                for run in reversed(instance.get_runs())  # oldest first
                for entry in instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            ]
        workers = []
        for entry in entries:
            data = entry.dagster_event.engine_event_data if entry.dagster_event else None
            metadata = data.metadata if data else {}
            if "Celery worker" in metadata and metadata["step_keys"].value == step:
                workers.append(str(metadata["Celery worker"].value))
        return workers


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[CeleryStack]:
    assert shutil.which("rabbitmqctl"), "RabbitMQ (.ci/run starts it) is the broker"
    with services.rabbitmq_vhost("docflow-test") as broker:
        yield from _stack(tmp_path, broker)


def _stack(tmp_path: Path, broker: str) -> Iterator[CeleryStack]:
    home, dagster_home = tmp_path / "home", tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    # The instance's SQLite storage made once, as `dagster dev` or the daemon would make it:
    # run workers and Celery workers starting together must not race to create its tables.
    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)
    settings = DocflowSettings(home=home)
    Registry.from_settings(settings).experiment_id()  # MLflow's tables, likewise (docflow migrate)
    env = {
        **os.environ,
        "DOCFLOW_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "DOCFLOW_EXECUTOR": "celery",
        "DOCFLOW_CELERY_BROKER": broker,
        "DOCFLOW_OCR_MODE": "tesseract",
        "DOCFLOW_OCR_WORKERS": "1",
        "OMP_THREAD_LIMIT": "1",
    }
    workers = {}
    try:
        for name in ("first", "second"):
            worker = ServerProcess(
                name, [str(BIN / "docflow"), "worker", "--name", name], env, tmp_path
            )
            worker.start()
            workers[name] = worker
        for worker in workers.values():
            wait_for(partial(is_ready, worker), 120, f"worker {worker.name} to be ready")
        yield CeleryStack(settings, env, dagster_home, workers, tmp_path)
    finally:
        for worker in workers.values():
            worker.kill()


def is_ready(worker: ServerProcess) -> bool:
    return " ready." in worker.log_path.read_text(errors="replace")


def upload(
    settings: DocflowSettings, count: int, seed: int, label: str = "letter", labelled: bool = False
) -> list[int]:
    store = open_object_store(settings.resolved_object_store, settings.s3_endpoint_url)
    ids = []
    for index in range(count):
        data, extension, _ = render_document(label, index, seed)
        source = (settings.resolved_home / f"upload.{extension}").open("wb+")
        with source:
            source.write(data)
            source.seek(0)
            stored = ingest(
                source, f"{label}-{index}.{extension}", settings, store, label if labelled else None
            )
            ids.append(stored.document.id)
    return ids


def ocr_rows(settings: DocflowSettings, ids: list[int]) -> dict[int, int]:
    with session_scope(settings.resolved_database_url) as session:
        rows = session.execute(
            select(OcrResult.document_id, func.count())
            .where(OcrResult.document_id.in_(ids))
            .group_by(OcrResult.document_id)
        )
        return {document_id: count for document_id, count in rows}


def statuses(settings: DocflowSettings, ids: list[int]) -> set[str]:
    with session_scope(settings.resolved_database_url) as session:
        return set(session.scalars(select(Document.status).where(Document.id.in_(ids))))


def test_runs_share_two_workers_and_a_killed_worker_loses_nothing(stack: CeleryStack) -> None:
    settings = stack.settings
    first, second = upload(settings, 4, seed=1), upload(settings, 4, seed=2)
    runs = {batch[0]: stack.launch(batch) for batch in (first, second)}
    for first_id, run in runs.items():
        assert run.wait(timeout=600) == 0, (stack.folder / f"run-{first_id}.log").read_text()
    assert statuses(settings, first + second) == {"ocr_done"}
    # Two runs in flight, one step at a time per worker: their OCR steps ran on both.
    ocr_workers = stack.steps_by_worker("ocr_text")
    assert len(ocr_workers) == 2 and len(set(ocr_workers)) == 2, ocr_workers

    # A worker killed in the middle of an OCR step: the broker gives the step to the other.
    doomed_batch = upload(settings, 6, seed=3)
    run = stack.launch(doomed_batch)
    wait_for(lambda: len(stack.steps_by_worker("ocr_text")) == 3, 300, "the OCR step to start")
    taken_by = stack.steps_by_worker("ocr_text")[-1].split("@")[0]
    stack.workers[taken_by].stop(signal.SIGKILL)
    assert run.wait(timeout=600) == 0, (stack.folder / f"run-{doomed_batch[0]}.log").read_text()
    redone_by = stack.steps_by_worker("ocr_text")[-1].split("@")[0]
    assert redone_by != taken_by
    assert statuses(settings, doomed_batch) == {"ocr_done"}
    # Read again from the start, recorded once: one OCR row per page, none lost, none twice.
    assert ocr_rows(settings, doomed_batch) == dict.fromkeys(doomed_batch, 1)
    assert ocr_rows(settings, first + second) == dict.fromkeys(first + second, 1)


def test_a_training_run_trains_and_registers_on_a_worker(stack: CeleryStack) -> None:
    settings = stack.settings
    labelled = [
        document_id
        for label in ("letter", "invoice", "memo")
        for document_id in upload(settings, 4, seed=5, label=label, labelled=True)
    ]
    read = stack.launch(labelled)
    assert read.wait(timeout=600) == 0, (stack.folder / f"run-{labelled[0]}.log").read_text()

    training = stack.train()
    assert training.wait(timeout=600) == 0, (stack.folder / "train.log").read_text()
    for step in ("training_set", "document_classifier", "deployed_model"):
        assert len(stack.steps_by_worker(step)) == 1, step
    registry = Registry.from_settings(settings)
    [version] = registry.client.search_model_versions(f"name='{settings.model_name}'")
    assert registry.version_for_alias(settings.model_alias) == str(version.version)  # deployed
    run = registry.client.get_run(str(version.run_id))
    assert run.info.status == "FINISHED"  # dagster-mlflow's run, opened and ended in a worker
    assert "macro_f1" in " ".join(run.data.metrics)
