"""Load `POST /predict/text` on Docflow, on `mlflow models serve` of the same model, and on a
constant Litestar endpoint, at concurrency 1 and 32, and print ratios against both baselines;
then Docflow's /predict/text again while three clients keep sending large /predict/batch
requests (1,000 texts of 1,000 characters), and while two clients upload scanned pages to
`/upload-and-predict` back to back (online OCR on every API slot), beside its quiet p99.

    .venv/bin/python benchmarks/predict_text_load.py [--seconds 5]

It trains a model on rendered ground-truth text (no OCR), registers and deploys it in a
temporary Docflow home, starts the three servers on loopback, and runs the load generator as a
separate process for each measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from docflow_assets import services
from docflow_assets.demo.content import DOCUMENT_CLASSES, GENERATORS
from docflow_assets.demo.render import document_rng, render_document
from docflow_assets.ml.registry import Registry
from docflow_assets.ml.training import TrainingConfig, train_classifier
from docflow_assets.settings import DocflowSettings

HERE = Path(__file__).resolve().parent
TEXT = "INVOICE No INV-2231 Bill To: Northwind Traders Subtotal 120.00 Tax 12.00 Total Due 132.00"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def train_and_deploy(settings: DocflowSettings) -> str:
    texts, labels = [], []
    for label in DOCUMENT_CLASSES:
        for index in range(12):
            lines = GENERATORS[label](document_rng(0, label, index))
            texts.append("\n".join(text for _, text in lines))
            labels.append(label)
    result = train_classifier(texts, labels, TrainingConfig(max_epochs=20))
    registry = Registry.from_settings(settings)
    version = registry.log_training(result, "benchmark", {}).version
    registry.deploy(settings.model_alias, version)
    return version


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [==[%s]==]
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %%d, "rps": %%f, "p50_ms": %%f, "p99_ms": %%f, "errors": %%d}\\n',
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def load_with_wrk(url: str, body: dict, concurrency: int, seconds: float) -> dict[str, float]:
    """wrk (C, one thread) costs the shared cores far less than a Python load generator."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % json.dumps(body))
    output = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            script.name,
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    os.unlink(script.name)
    return json.loads(output.strip().splitlines()[-1])


def load(url: str, body: dict, concurrency: int, seconds: float) -> dict[str, float]:
    if shutil.which("wrk"):
        return load_with_wrk(url, body, concurrency, seconds)
    output = subprocess.run(
        [
            sys.executable,
            str(HERE / "loadgen.py"),
            url,
            json.dumps(body),
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


BATCH_CLIENTS = 3
BATCH = {"texts": [(TEXT + " ") * 11] * 1000}


def under_batch_load(base: str, seconds: float) -> tuple[dict[str, float], int]:
    """/predict/text at concurrency 1 while BATCH_CLIENTS clients post batches back to back."""
    stop = threading.Event()
    batches = []

    def send_batches() -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            while not stop.is_set():
                batches.append(client.post("/predict/batch", json=BATCH).status_code)

    clients = [threading.Thread(target=send_batches) for _ in range(BATCH_CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(1)  # the batches are in flight before the measurement starts
    try:
        return load(f"{base}/predict/text", {"text": TEXT}, 1, seconds), len(batches)
    finally:
        stop.set()
        for client in clients:
            client.join()


OCR_CLIENTS = 2


def under_ocr_load(base: str, seconds: float) -> tuple[dict[str, float], list[int]]:
    """/predict/text at concurrency 1 while OCR_CLIENTS clients upload pages that each need
    online OCR (rendered before the clock starts, all different, so none is a duplicate)."""
    pages = [
        render_document(label, index, seed=11) for index in range(12) for label in DOCUMENT_CLASSES
    ]
    stop = threading.Event()
    statuses: list[int] = []

    def upload_pages(first: int) -> None:
        with httpx.Client(base_url=base, timeout=120) as client:
            for data, extension, _ in pages[first::OCR_CLIENTS]:
                if stop.is_set():
                    return
                upload = {"file": (f"page.{extension}", data)}
                statuses.append(client.post("/upload-and-predict", files=upload).status_code)

    clients = [threading.Thread(target=upload_pages, args=(i,)) for i in range(OCR_CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(1)
    try:
        return load(f"{base}/predict/text", {"text": TEXT}, 1, seconds), statuses
    finally:
        stop.set()
        for client in clients:
            client.join()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args()
    console = Console()
    home = Path(tempfile.mkdtemp(prefix="docflow-bench-"))
    settings = DocflowSettings(home=home)
    version = train_and_deploy(settings)
    bin_dir = Path(sys.executable).parent
    # mlflow models serve starts `uvicorn` by name: the virtualenv's bin must be on PATH.
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DOCFLOW_HOME": str(home),
        "MLFLOW_TRACKING_URI": settings.resolved_mlflow_tracking_uri,
    }
    ports = {name: free_port() for name in ("docflow", "mlflow", "constant")}
    servers = {
        "docflow": services.api_service(ports["docflow"]).command,
        "mlflow": [
            str(bin_dir / "mlflow"),
            "models",
            "serve",
            "-m",
            f"models:/{settings.model_name}@{settings.model_alias}",
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(ports["mlflow"]),
        ],
        "constant": [
            sys.executable,
            "-m",
            "uvicorn",
            "constant_app:app",
            "--app-dir",
            str(HERE),
            "--host",
            "127.0.0.1",
            "--port",
            str(ports["constant"]),
            "--log-level",
            "warning",
        ],
    }
    ready = {"docflow": "/health", "mlflow": "/ping", "constant": "/schema"}
    # Row name -> (server, path, body): the constant app serves two rows.
    targets: dict[str, tuple[str, str, dict[str, object]]] = {
        "docflow": ("docflow", "/predict/text", {"text": TEXT}),
        "mlflow": ("mlflow", "/invocations", {"dataframe_records": [{"text": TEXT}]}),
        "constant": ("constant", "/predict/text", {"text": TEXT}),
        "constant via thread": ("constant", "/predict/text-via-thread", {"text": TEXT}),
    }
    run_dir = home / "run"
    results: dict[tuple[str, int], dict[str, float]] = {}
    try:
        for name, command in servers.items():
            ready_url = f"http://127.0.0.1:{ports[name]}{ready[name]}"
            services.start(services.Service(name, ports[name], command, ready_url), run_dir, env)
        for concurrency in (1, 32):
            for name, (server, path, body) in targets.items():
                results[name, concurrency] = load(
                    f"http://127.0.0.1:{ports[server]}{path}", body, concurrency, args.seconds
                )
        loaded, batches = under_batch_load(f"http://127.0.0.1:{ports['docflow']}", args.seconds)
        ocr_loaded, uploads = under_ocr_load(f"http://127.0.0.1:{ports['docflow']}", args.seconds)
    finally:
        services.stop_all(run_dir)
    generator = "wrk" if shutil.which("wrk") else "benchmarks/loadgen.py (httpx)"
    table = Table(
        title=f"POST /predict/text, model v{version}, {args.seconds:.0f} s per cell, "
        f"{os.cpu_count()} cores, load from {generator}"
    )
    for column in (
        "server",
        "concurrency",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "vs mlflow serve",
        "vs constant",
    ):
        table.add_column(column, justify="right")
    for (name, concurrency), cell in results.items():
        mlflow_rps = results["mlflow", concurrency]["rps"]
        constant_rps = results["constant", concurrency]["rps"]
        table.add_row(
            name,
            str(concurrency),
            f"{cell['rps']:.0f}",
            f"{cell['p50_ms']:.1f}",
            f"{cell['p99_ms']:.1f}",
            str(int(cell["errors"])),
            f"{cell['rps'] / mlflow_rps:.2f}x",
            f"{cell['rps'] / constant_rps:.2f}x",
        )
    console.print(table)
    quiet = results["docflow", 1]
    console.print(
        f"/predict/text at concurrency 1 while {BATCH_CLIENTS} clients send 1,000 x 1,000-"
        f"character batches ({batches} batches answered): p50 {loaded['p50_ms']:.1f} ms, "
        f"p99 {loaded['p99_ms']:.1f} ms (quiet: p99 {quiet['p99_ms']:.1f} ms, "
        f"{loaded['p99_ms'] / quiet['p99_ms']:.1f}x), {loaded['rps']:.0f} req/s, "
        f"{int(loaded['errors'])} errors"
    )
    console.print(
        f"/predict/text at concurrency 1 while {OCR_CLIENTS} clients upload pages for online "
        f"OCR ({len(uploads)} answered, statuses {dict(Counter(uploads))}): "
        f"p50 {ocr_loaded['p50_ms']:.1f} ms, p99 {ocr_loaded['p99_ms']:.1f} ms "
        f"({ocr_loaded['p99_ms'] / quiet['p99_ms']:.1f}x quiet), {ocr_loaded['rps']:.0f} req/s, "
        f"{int(ocr_loaded['errors'])} errors"
    )


if __name__ == "__main__":
    main()
