"""A fault run under load on the production stack with Celery, all real and on loopback: a
PostgreSQL cluster of the run's own (application, Dagster and MLflow databases), SeaweedFS as
S3, a throw-away RabbitMQ virtual host, the MLflow server, the Dagster code server and daemon,
two `docflow worker` Celery workers and the API under uvicorn.

A first model is trained from labelled uploads. Then two clients upload a few hundred small
documents while a third labels every fourth one (enough new labels for the training sensor to
retrain mid-run), and on a schedule drawn from ``--seed`` one fault is set off in each slot of
the window: a worker killed with SIGKILL (its supervisor starts it again 5 s later), RabbitMQ
restarted (`rabbitmqctl stop_app; start_app`), PostgreSQL restarted (`pg_ctlcluster restart`),
the S3 server stopped for 20 s, and the API killed under the clients' load (started again 3 s
later). Nobody touches the daemon or the runs: afterwards every acknowledged upload must be
predicted exactly once, with one OCR row per page and its file in the bucket, every training
must have deployed or said why not, and no run may be left unfinished.

    .venv/bin/python -m benchmarks.chaos_run [--documents 200] [--window 300] [--seed 7]

Prints the counts (acknowledged, predicted, duplicated, lost, stuck, time to recover) and a
pass/fail summary; exits 1 when a check fails. About 20-25 minutes on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg2
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)
from mlflow import MlflowClient
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from docflow_assets import services
from docflow_assets.demo.render import render_document
from docflow_assets.ml.registry import GATE_REASON_TAG, GATE_TAG, Registry
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, OcrResult, Prediction
from tests.servers import (
    BIN,
    BUCKET,
    PostgresCluster,
    ProductionStack,
    SeaweedS3,
    ServerProcess,
    Uploader,
    production_stack,
    upload,
    wait_for,
)

CLASSES = ("invoice", "memo", "resume")
FIRST_MODEL_PER_CLASS = 6
LABEL_EVERY = 4
MODEL_NAME = "docflow-classifier"
WORKER_RESTART_SECONDS = 5.0
API_RESTART_SECONDS = 3.0
S3_OUTAGE_SECONDS = 20.0
# Drained: every document final and no run in flight for longer than the training sensor's
# interval (60 s), so a retrain it was about to ask for is not missed.
QUIET_SECONDS = 75.0
UNFINISHED_RUNS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
console = Console()


@dataclass
class FaultRecord:
    name: str
    at: float  # seconds after the load started
    restored: float = 0.0
    in_flight: str = ""  # the runs started when the fault struck
    resumed_after: float | None = None  # seconds from restored to the next document predicted


@dataclass
class Progress:
    """Predicted documents over time, sampled from the application database."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def resumed_after(self, restored: float) -> float | None:
        before = [count for at, count in self.samples if at <= restored]
        if not before:
            return None
        for at, count in self.samples:
            if at > restored and count > before[-1]:
                return at - restored
        return None


class Chaos:
    """Sets off the faults on the stack; each call returns once the fault is over."""

    def __init__(
        self,
        servers: ProductionStack,
        workers: list[ServerProcess],
        seaweed: SeaweedS3,
        cluster: PostgresCluster,
        rng: random.Random,
    ) -> None:
        self.servers = servers
        self.workers = workers
        self.seaweed = seaweed
        self.cluster = cluster
        self.rng = rng

    def actions(self) -> dict[str, Callable[[], None]]:
        return {
            "kill -9 a Celery worker": self.kill_worker,
            "restart RabbitMQ": self.restart_rabbitmq,
            "restart PostgreSQL": self.cluster.restart,
            f"stop S3 for {S3_OUTAGE_SECONDS:.0f} s": self.stop_s3,
            "kill -9 the API under load": self.kill_api,
        }

    def kill_worker(self) -> None:
        worker = self.rng.choice(self.workers)
        worker.kill()
        time.sleep(WORKER_RESTART_SECONDS)
        worker.start()

    def restart_rabbitmq(self) -> None:
        subprocess.run(["rabbitmqctl", "-q", "stop_app"], check=True)
        subprocess.run(["rabbitmqctl", "-q", "start_app"], check=True)

    def stop_s3(self) -> None:
        self.seaweed.stop()
        time.sleep(S3_OUTAGE_SECONDS)
        self.seaweed.start()

    def kill_api(self) -> None:
        self.servers.api.kill()
        time.sleep(API_RESTART_SECONDS)
        self.servers.api.start()


def schedule(names: list[str], window: float, rng: random.Random) -> list[tuple[float, str]]:
    """One fault per slot of the window, in a drawn order, each at a drawn point of its slot
    (its first 70%, so that a fault is over before the next one's slot)."""
    order = rng.sample(names, len(names))
    slot = window / len(order)
    return [
        (index * slot + rng.uniform(0.05, 0.7) * slot, name) for index, name in enumerate(order)
    ]


class Labeller(threading.Thread):
    """Labels every ``LABEL_EVERY``-th acknowledged upload with its class, as reviewers do,
    retrying through outages, until the uploaders are done and every label is set."""

    def __init__(self, api_url: str, uploaders: list[Uploader]) -> None:
        super().__init__(daemon=True)
        self.api_url = api_url
        self.uploaders = uploaders
        self.labelled: dict[int, str] = {}

    def run(self) -> None:
        while True:
            done = not any(uploader.is_alive() for uploader in self.uploaders)
            for uploader in self.uploaders:
                for position, document_id in enumerate(list(uploader.ids)):
                    if position % LABEL_EVERY or document_id in self.labelled:
                        continue
                    label = uploader.documents[position][1].split("-")[0]
                    if self._put(document_id, label):
                        self.labelled[document_id] = label
            if done:
                return
            time.sleep(2)

    def _put(self, document_id: int, label: str) -> bool:
        try:
            response = httpx.put(
                f"{self.api_url}/document/{document_id}/label", json={"label": label}, timeout=30
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def rendered(count: int, seed: int) -> list[tuple[bytes, str]]:
    documents = []
    for index in range(count):
        label = CLASSES[index % len(CLASSES)]
        data, extension, _ = render_document(label, index, seed)
        documents.append((data, f"{label}-{seed}-{index}.{extension}"))
    return documents


@contextmanager
def databases(cluster: PostgresCluster) -> Iterator[dict[str, str]]:
    admin = psycopg2.connect(f"{cluster.url}/postgres")
    admin.autocommit = True
    with admin.cursor() as cursor:
        for name in ("app", "dagster", "mlflow"):
            cursor.execute(f"CREATE DATABASE {name}")
    admin.close()
    yield {name: f"{cluster.url}/{name}" for name in ("app", "dagster", "mlflow")}


def predicted_count(database: str) -> int | None:
    try:
        with session_scope(database) as session:
            return int(
                session.scalar(select(func.count()).where(Document.status == "predicted")) or 0
            )
    except OperationalError:
        return None


def sample_progress(
    database: str, started: float, progress: Progress, stop: threading.Event
) -> None:
    while not stop.is_set():
        count = predicted_count(database)
        if count is not None:
            progress.samples.append((time.monotonic() - started, count))
        stop.wait(2)


def unfinished_runs(instance: DagsterInstance) -> list[str]:
    return [
        f"{run.job_name} {run.run_id[:8]} {run.status.value}"
        for run in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED_RUNS))
    ]


def quiet(check: Callable[[], bool], hold: float, timeout: float) -> float | None:
    """When ``check`` first held for ``hold`` seconds on end (monotonic time at its start),
    or None if it did not within ``timeout``."""
    deadline = time.monotonic() + timeout
    since: float | None = None
    while time.monotonic() < deadline:
        now = time.monotonic()
        if not check():
            since = None
        elif since is None:
            since = now
        elif now - since >= hold:
            return since
        time.sleep(3)
    return None


def in_flight(instance: DagsterInstance) -> str:
    runs = instance.get_runs(filters=RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    jobs = [run.job_name.removesuffix("_job") for run in runs]
    return ", ".join(f"{jobs.count(job)} {job}" for job in sorted(set(jobs))) or "none"


def all_final(database: str, ids: list[int]) -> bool:
    try:
        with session_scope(database) as session:
            waiting = session.scalar(
                select(func.count()).where(
                    Document.id.in_(ids), Document.status.not_in(("predicted", "failed"))
                )
            )
    except OperationalError:
        return False
    return waiting == 0


@dataclass
class Outcome:
    acknowledged: int
    rows: int
    predicted: int
    failed: dict[int, str]
    duplicated_predictions: list[int]
    wrong_ocr_rows: list[int]
    missing_files: list[int]
    stuck_runs: list[str]
    trainings: list[str]
    verdicts: list[tuple[str, str, str]]  # (version, gate verdict, reason) of each version
    drained_in: float | None

    @property
    def lost(self) -> int:
        return self.acknowledged - self.rows + len(self.missing_files)

    def failures(self) -> list[str]:
        checks = {
            "every acknowledged upload has its row": self.rows == self.acknowledged,
            "every acknowledged upload is predicted": self.predicted == self.acknowledged,
            "no document predicted twice by one version": not self.duplicated_predictions,
            "one OCR row per page": not self.wrong_ocr_rows,
            "every original is in the bucket": not self.missing_files,
            "no run left unfinished": not self.stuck_runs,
            "every training deployed or said why not": len(self.verdicts) >= len(self.trainings)
            and all(" SUCCESS " in t or " FAILURE " in t for t in self.trainings),
            "the stack drained by itself": self.drained_in is not None,
        }
        return [name for name, held in checks.items() if not held]


def judge(
    database: str,
    ids: list[int],
    seaweed: SeaweedS3,
    instance: DagsterInstance,
    registry: Registry,
    drained_in: float | None,
) -> Outcome:
    with session_scope(database) as session:
        documents = session.execute(
            select(Document.id, Document.status, Document.status_reason, Document.pages).where(
                Document.id.in_(ids)
            )
        ).all()
        keys = dict(
            session.execute(
                select(Document.id, Document.storage_key).where(Document.id.in_(ids))
            ).all()
        )
        twice = session.execute(
            select(Prediction.document_id)
            .where(Prediction.document_id.in_(ids), Prediction.source == "batch")
            .group_by(Prediction.document_id, Prediction.model_version)
            .having(func.count() > 1)
        ).scalars()
        ocr_rows = dict(
            session.execute(
                select(OcrResult.document_id, func.count())
                .where(OcrResult.document_id.in_(ids))
                .group_by(OcrResult.document_id)
            ).all()
        )
        duplicated = sorted({int(i) for i in twice if i is not None})
    stored = set()
    paginator = seaweed.client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET, Prefix="stack/documents/"):
        stored |= {item["Key"] for item in page.get("Contents", [])}
    trainings = [
        f"{run.run_id[:8]} {run.status.value} ({run.tags.get('docflow/why', 'manual')})"
        for run in instance.get_runs(filters=RunsFilter(job_name="train_model_job"))
    ]
    return Outcome(
        acknowledged=len(ids),
        rows=len(documents),
        predicted=sum(status == "predicted" for _, status, _, _ in documents),
        failed={i: str(reason) for i, status, reason, _ in documents if status == "failed"},
        duplicated_predictions=duplicated,
        wrong_ocr_rows=[i for i, _, _, pages in documents if ocr_rows.get(i, 0) != pages],
        missing_files=[i for i, key in keys.items() if f"stack/{key}" not in stored],
        stuck_runs=unfinished_runs(instance),
        trainings=trainings,
        verdicts=gate_verdicts(registry),
        drained_in=drained_in,
    )


def gate_verdicts(registry: Registry) -> list[tuple[str, str, str]]:
    versions = registry.client.search_model_versions(f"name='{MODEL_NAME}'")
    return sorted(
        (str(v.version), v.tags.get(GATE_TAG, "not judged"), v.tags.get(GATE_REASON_TAG, ""))
        for v in versions
    )


def retries(instance: DagsterInstance) -> tuple[int, int, int]:
    """Steps retried, runs retried by the daemon, and runs failed, over the whole run."""
    runs = instance.get_runs()
    step_retries = sum(
        len(
            instance.get_records_for_run(
                run.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY, limit=10_000
            ).records
        )
        for run in runs
    )
    run_retries = sum("dagster/retry_number" in run.tags for run in runs)
    failed = sum(run.status == DagsterRunStatus.FAILURE for run in runs)
    return step_retries, run_retries, failed


def first_model(servers: ProductionStack, database: str, timeout: float) -> None:
    labelled = []
    for label in CLASSES:
        for index in range(FIRST_MODEL_PER_CLASS):
            data, extension, _ = render_document(label, index, 1)
            response = upload(servers.api_url, data, f"{label}-first-{index}.{extension}", label)
            response.raise_for_status()
            labelled.append(int(response.json()["id"]))
    registry = MlflowClient(tracking_uri=servers.mlflow_url, registry_uri=servers.mlflow_url)

    def deployed() -> bool:
        try:
            registry.get_model_version_by_alias(MODEL_NAME, "champion")
        except Exception:
            return False
        return all_final(database, labelled)

    wait_for(deployed, timeout, "the first model to be deployed and score its labels", 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=200)
    parser.add_argument("--window", type=float, default=300.0, help="seconds of load and faults")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drain-timeout", type=float, default=900.0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    documents = rendered(args.documents, seed=args.seed)
    folder = Path(tempfile.mkdtemp(prefix="docflow-chaos-"))
    console.print(f"{len(documents)} documents rendered; logs in {folder}")
    with ExitStack() as resources:
        cluster = resources.enter_context(PostgresCluster())
        urls = resources.enter_context(databases(cluster))
        broker = resources.enter_context(services.rabbitmq_vhost("docflow-chaos"))
        seaweed = SeaweedS3(folder / "s3", folder)
        seaweed.start()
        resources.callback(seaweed.stop)
        servers = production_stack(
            folder,
            seaweed.endpoint,
            urls,
            {
                "DOCFLOW_EXECUTOR": "celery",
                "DOCFLOW_CELERY_BROKER": broker,
                "DOCFLOW_OCR_MODE": "tesseract",
                "DOCFLOW_OCR_WORKERS": "1",
                "DOCFLOW_MODEL_POLL_SECONDS": "5",
                "DOCFLOW_RETRAIN_MIN_NEW_LABELS": str(max(10, args.documents // LABEL_EVERY // 4)),
                "DOCFLOW_RETRAIN_MAX_HOLD_MINUTES": "1",
            },
        )
        workers = [
            ServerProcess(
                name, [str(BIN / "docflow"), "worker", "--name", name], servers.env, folder
            )
            for name in ("first", "second")
        ]
        # No webserver: the run reads Dagster's storage itself.
        processes = [servers.mlflow, servers.code_server, servers.daemon, servers.api, *workers]
        for process in processes:
            process.start()
            resources.callback(process.stop)
        os.environ.update(servers.env)
        instance = resources.enter_context(DagsterInstance.get())
        started = time.monotonic()
        first_model(servers, urls["app"], timeout=900)
        console.print(f"stack up and first model served in {time.monotonic() - started:.0f}s")

        chaos = Chaos(servers, workers, seaweed, cluster, rng)
        actions = chaos.actions()
        plan = schedule(list(actions), args.window, rng)
        half = len(documents) // 2
        pause = 2 * args.window / len(documents)
        uploaders = [
            Uploader(servers.api_url, documents[:half], pause),
            Uploader(servers.api_url, documents[half:], pause),
        ]
        labeller = Labeller(servers.api_url, uploaders)
        progress, stop_sampling = Progress(), threading.Event()
        load_started = time.monotonic()
        sampler = threading.Thread(
            target=sample_progress,
            args=(urls["app"], load_started, progress, stop_sampling),
            daemon=True,
        )
        for thread in (*uploaders, labeller, sampler):
            thread.start()
        faults = []
        for at, name in plan:
            time.sleep(max(0.0, at - (time.monotonic() - load_started)))
            record = FaultRecord(
                name, time.monotonic() - load_started, in_flight=in_flight(instance)
            )
            console.print(f"{record.at:6.0f}s  {name}")
            actions[name]()
            record.restored = time.monotonic() - load_started
            faults.append(record)
        for uploader in uploaders:
            uploader.join(timeout=args.window + 600)
        labeller.join(timeout=300)
        ids = sorted({i for uploader in uploaders for i in uploader.ids})
        last_restored = faults[-1].restored + load_started
        drained = quiet(
            lambda: all_final(urls["app"], ids) and not unfinished_runs(instance),
            QUIET_SECONDS,
            args.drain_timeout,
        )
        drained_in = None if drained is None else drained - last_restored
        stop_sampling.set()
        for record in faults:
            record.resumed_after = progress.resumed_after(record.restored)
        outcome = judge(
            urls["app"],
            ids,
            seaweed,
            instance,
            Registry(servers.mlflow_url, None, MODEL_NAME),
            drained_in,
        )
        report(outcome, faults, uploaders, labeller, retries(instance), processes)
        return 1 if outcome.failures() else 0


def report(
    outcome: Outcome,
    faults: list[FaultRecord],
    uploaders: list[Uploader],
    labeller: Labeller,
    retried: tuple[int, int, int],
    processes: list[ServerProcess],
) -> None:
    table = Table(title="faults (seconds from the start of the load)")
    for column in ("fault", "at", "over at", "next prediction after", "runs in flight"):
        table.add_column(column)
    for record in faults:
        resumed = "-" if record.resumed_after is None else f"{record.resumed_after:.0f}"
        table.add_row(
            record.name, f"{record.at:.0f}", f"{record.restored:.0f}", resumed, record.in_flight
        )
    console.print(table)
    counts = Table(title="after the run")
    counts.add_column("count")
    counts.add_column("value")
    step_retries, run_retries, runs_failed = retried
    rows = {
        "acknowledged uploads": outcome.acknowledged,
        "predicted": outcome.predicted,
        "failed (with reasons)": len(outcome.failed),
        "duplicated (two batch predictions by one version)": len(outcome.duplicated_predictions),
        "OCR rows not one per page": len(outcome.wrong_ocr_rows),
        "lost (no row, or no file in the bucket)": outcome.lost,
        "stuck runs": len(outcome.stuck_runs),
        "labels set": len(labeller.labelled),
        "upload retries (connection errors / 503s)": (
            f"{sum(u.connection_errors for u in uploaders)} / "
            f"{sum(len(u.refusals) for u in uploaders)}"
        ),
        "unexpected answers to uploads": sum(len(u.unexpected) for u in uploaders),
        "steps retried / runs retried / runs failed": (
            f"{step_retries} / {run_retries} / {runs_failed}"
        ),
        "time to drain after the last fault (s)": (
            "did not drain" if outcome.drained_in is None else f"{outcome.drained_in:.0f}"
        ),
        "trainings": ", ".join(outcome.trainings),
        "versions: gate verdict": "; ".join(
            f"{version}: {verdict} ({reason})" for version, verdict, reason in outcome.verdicts
        ),
        "processes down at the end": ", ".join(
            p.name for p in processes if p.process is None or p.process.poll() is not None
        )
        or "none",
    }
    for name, value in rows.items():
        counts.add_row(name, str(value))
    console.print(counts)
    for document_id, reason in list(outcome.failed.items())[:10]:
        console.print(f"failed {document_id}: {reason}")
    for line in outcome.stuck_runs + [u for up in uploaders for u in up.unexpected][:10]:
        console.print(line)
    failures = outcome.failures()
    console.print("PASS" if not failures else f"FAIL: {'; '.join(failures)}")


if __name__ == "__main__":
    sys.exit(main())
