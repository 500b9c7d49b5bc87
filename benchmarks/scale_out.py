"""Pages per second of the processing pipeline on this machine, in one run: plain
`xargs -P2 tesseract` on the pages (the baseline), then Docflow reading the same pages: as a
user runs it (the daemon's new-uploads sensor launching the runs), with runs launched directly
and their steps in process, and on one Celery worker and on two (RabbitMQ on loopback).

    .venv/bin/python benchmarks/scale_out.py [--documents 240] [--batch-size 200]
    .venv/bin/python benchmarks/scale_out.py --pages ../shared/data/office-scans-dev/images \
        --mode cascade --sensor-only

Each Docflow row starts from a fresh home and times upload (ingest) to every document
`ocr_done` (no model is deployed, so the predictions step has nothing to score). The sensor row
starts `dagster dev` (webserver, daemon, code server) before the clock, so its time includes the
sensor's interval, the run queue and the run processes' start. The other rows launch the
sensor's batches (`balanced_batches`, two in flight as the embedded run coordinator allows) as
`dagster job execute` processes. OCR mode `tesseract` (`--mode` for another); in process, one
OCR process per core; on
Celery, one OCR process per worker, so two workers share the two cores as two one-core machines
would not.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from docflow_assets import services
from docflow_assets.defs.sensors import balanced_batches, batch_run_config
from docflow_assets.demo.content import DOCUMENT_CLASSES
from docflow_assets.demo.render import render_document
from docflow_assets.ingest import ingest_folder
from docflow_assets.ml.registry import Registry
from docflow_assets.ocr.pages import iter_page_images, sniffed_content_type
from docflow_assets.settings import DocflowSettings
from docflow_assets.store.database import session_scope
from docflow_assets.store.models import Document, DocumentStatus, OcrResult
from docflow_assets.store.objects import open_object_store

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RUNS_IN_FLIGHT = 2
DAGSTER_PORT = 3471


def render_pages(folder: Path, count: int) -> list[Path]:
    """``count`` one-page documents as PNG, whatever format they were rendered in."""
    folder.mkdir(parents=True)
    paths = []
    for index in range(count):
        label = DOCUMENT_CLASSES[index % len(DOCUMENT_CLASSES)]
        data, _, _ = render_document(label, index, seed=5)
        [page] = list(iter_page_images(data, sniffed_content_type(data), dpi=200))
        buffer = io.BytesIO()
        page.save(buffer, format="PNG")
        path = folder / f"{label}-{index:04d}.png"
        path.write_bytes(buffer.getvalue())
        paths.append(path)
    return paths


def tesseract_seconds(pages: list[Path]) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["xargs", "-P2", "-I{}", "tesseract", "{}", "-", "--psm", "3"],
        input="\n".join(str(page) for page in pages),
        text=True,
        capture_output=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    return time.perf_counter() - started


OCR_MODE = "tesseract"
PAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff"}


def fresh_home(root: Path, env: dict[str, str]) -> DocflowSettings:
    """A new Docflow home and Dagster instance under ``root``, their tables made up front (as
    `docflow migrate` does) before processes race to make them."""
    home, dagster_home = root / "home", root / "dagster_home"
    dagster_home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    env.setdefault("DOCFLOW_OCR_MODE", OCR_MODE)
    env.update(
        DOCFLOW_HOME=str(home),
        DAGSTER_HOME=str(dagster_home),
        OMP_THREAD_LIMIT="1",
    )
    from dagster import DagsterInstance

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)
    settings = DocflowSettings(home=home)
    Registry.from_settings(settings).experiment_id()
    return settings


def ingest_pages(pages: Path, settings: DocflowSettings) -> list[int]:
    store = open_object_store(settings.resolved_object_store, settings.s3_endpoint_url)
    return [document.id for document in ingest_folder(pages, settings, store).added]


def wait_until_read(settings: DocflowSettings, ids: list[int], timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with session_scope(settings.resolved_database_url) as session:
            done = session.scalar(
                select(func.count()).where(Document.status == DocumentStatus.OCR_DONE)
            )
        if done == len(ids):
            return
        time.sleep(0.25)
    raise RuntimeError(f"{done} of {len(ids)} documents read in {timeout:.0f} s")


@dataclass(frozen=True)
class SensorRun:
    seconds: float
    first_page_after: float  # seconds from the first upload to the first page recorded
    busy_share: float  # of every core's time, from the first upload to the last page read


def cpu_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks, every core, since boot (``/proc/stat``)."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    busy = user + nice + system + irq + softirq
    return busy, busy + idle + iowait + steal


def sensor_run(pages: Path, root: Path, batch_size: int) -> SensorRun:
    """Upload to every document ``ocr_done`` with `dagster dev` running: the sensor batches
    the uploads (``DOCFLOW_BATCH_SIZE``), the daemon queues and launches the runs."""
    env = {**os.environ, "DOCFLOW_BATCH_SIZE": str(batch_size)}
    settings = fresh_home(root, env)
    run_dir = root / "run"
    services.start(services.dagster_service(DAGSTER_PORT, REPO / "workspace.yaml"), run_dir, env)
    try:
        # The clock starts once the daemon has ticked the sensor: a running deployment, not
        # one still starting up.
        while "Sensor new_uploads_sensor skipped" not in (run_dir / "dagster.log").read_text():
            time.sleep(0.5)
        started, uploaded_at, ticks = time.perf_counter(), time.time(), cpu_ticks()
        wait_until_read(settings, ingest_pages(pages, settings))
        seconds, (busy, total) = time.perf_counter() - started, cpu_ticks()
    finally:
        services.stop_all(run_dir)
    with session_scope(settings.resolved_database_url) as session:
        first_page = session.scalar(select(func.min(OcrResult.created_at)))
    assert first_page is not None
    return SensorRun(
        seconds,
        first_page.replace(tzinfo=UTC).timestamp() - uploaded_at,
        (busy - ticks[0]) / (total - ticks[1]),
    )


def docflow_seconds(pages: Path, root: Path, workers: int, batch_size: int, broker: str) -> float:
    """Upload to every document ``ocr_done``, runs launched directly, with ``workers`` Celery
    workers (0: in process)."""
    env = {
        **os.environ,
        "DOCFLOW_EXECUTOR": "celery" if workers else "in_process",
        "DOCFLOW_CELERY_BROKER": broker,
        "DOCFLOW_OCR_WORKERS": "1" if workers else "2",
    }
    settings = fresh_home(root, env)
    started_workers = [
        subprocess.Popen(
            [str(BIN / "docflow"), "worker", "--name", f"bench{n}"],
            env=env,
            stdout=(root / f"worker{n}.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        for n in range(workers)
    ]
    try:
        for n in range(workers):
            while " ready." not in (root / f"worker{n}.log").read_text(errors="replace"):
                time.sleep(0.5)
        started = time.perf_counter()
        ids = ingest_pages(pages, settings)
        batches = balanced_batches(ids, batch_size)
        partition = datetime.now(UTC).date().isoformat()
        running: list[subprocess.Popen[bytes]] = []
        for number, batch in enumerate(batches):
            while len(running) >= RUNS_IN_FLIGHT:
                running = [run for run in running if run.poll() is None]
                time.sleep(0.2)
            config = root / f"run{number}.json"
            config.write_text(json.dumps(batch_run_config(batch)))
            running.append(
                subprocess.Popen(
                    services.job_command(
                        "process_documents_job", config, {"dagster/partition": partition}
                    ),
                    env=env,
                    stdout=(root / f"run{number}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
            )
        for run in running:
            run.wait()
        wait_until_read(settings, ids, timeout=1)
        return time.perf_counter() - started
    finally:
        for worker in started_workers:
            worker.kill()
            worker.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=240)
    parser.add_argument(
        "--batch-size", type=int, default=DocflowSettings.model_fields["batch_size"].default
    )
    parser.add_argument(
        "--pages", type=Path, help="a folder of one-page images to read instead of rendering them"
    )
    parser.add_argument("--mode", default=OCR_MODE, help="DOCFLOW_OCR_MODE of the Docflow rows")
    parser.add_argument(
        "--sensor-only", action="store_true", help="the CLI and the sensor row, no Celery rows"
    )
    args = parser.parse_args()
    # Every Docflow row's environment starts from this one.
    os.environ["DOCFLOW_OCR_MODE"] = args.mode
    console = Console()
    root = Path(tempfile.mkdtemp(prefix="docflow-scale-"))
    if args.pages:
        pages_folder = args.pages
        pages = sorted(
            page for page in args.pages.iterdir() if page.suffix.lower() in PAGE_SUFFIXES
        )
    else:
        pages_folder = root / "pages"
        pages = render_pages(pages_folder, args.documents)
    with Image.open(pages[0]) as first:
        size = first.size
    console.print(f"{len(pages)} one-page documents of {size[0]}x{size[1]} px in {root}")
    baseline = tesseract_seconds(pages)
    rows = {"xargs -P2 tesseract --psm 3": baseline}
    sensor = sensor_run(pages_folder, root / "docflow-sensor", args.batch_size)
    rows["Docflow, sensor and daemon, steps in process"] = sensor.seconds
    if not args.sensor_only:
        with services.rabbitmq_vhost("docflow-bench") as broker:
            for workers, name in (
                (0, "in process"),
                (1, "1 Celery worker"),
                (2, "2 Celery workers"),
            ):
                rows[f"Docflow, runs launched, steps {name}"] = docflow_seconds(
                    pages_folder, root / f"docflow-{workers}", workers, args.batch_size, broker
                )
    table = Table(
        title=f"{len(pages)} pages, {os.cpu_count()} cores, OCR mode {args.mode}, "
        f"batches of {args.batch_size}"
    )
    for column in ("how", "seconds", "pages/s", "vs tesseract", "vs 1 worker"):
        table.add_column(column, justify="right")
    one_worker = rows.get("Docflow, runs launched, steps 1 Celery worker")
    for name, seconds in rows.items():
        table.add_row(
            name,
            f"{seconds:.1f}",
            f"{len(pages) / seconds:.2f}",
            f"{baseline / seconds:.2f}x",
            f"{one_worker / seconds:.2f}x" if one_worker else "-",
        )
    console.print(table)
    console.print(
        "Docflow rows: upload to every document ocr_done (ingest, runs, preprocessing, OCR, "
        "records); only the first row has the sensor and the run queue in the loop."
    )
    console.print(
        f"Orchestration beyond the bare tool, sensor included: "
        f"{(sensor.seconds - baseline) / len(pages) * 1000:.0f} ms per document. Sensor row: "
        f"the first page was recorded {sensor.first_page_after:.1f} s after the first upload; "
        f"from upload to the last page the machine's cores were busy {sensor.busy_share:.0%} "
        f"of the time (the rest is waiting: the sensor's tick, a run's start, the last pages)."
    )


if __name__ == "__main__":
    main()
