"""Commands that start and stop Docflow's processes: the demo, a worker, MLflow's UI."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import click
from rich.progress import Progress
from rich.table import Table

from docflow_assets.cli.app import console, main, settings_of_existing_home
from docflow_assets.settings import DocflowSettings


@main.command()
@click.option("--per-class", type=click.IntRange(3, 10_000), default=12, show_default=True)
@click.option("--dagster-port", type=int, default=3000, show_default=True)
@click.option("--api-port", type=int, default=8000, show_default=True)
@click.option("--timeout", type=float, default=1800, show_default=True)
def demo(per_class: int, dagster_port: int, api_port: int, timeout: float) -> None:
    """Run the whole pipeline on synthetic scans; leave the UIs up.

    Renders a labelled corpus, ingests it, lets the sensors OCR and train, deploys, scores, and
    starts the API; Dagster and the API keep running (`docflow stop`)."""
    from docflow_assets.demo_run import DemoFailed, DemoStack

    settings = DocflowSettings()
    stack = DemoStack(settings, ConsoleProgress(), dagster_port, api_port, timeout)
    try:
        summary = stack.run(per_class)
    except DemoFailed as error:
        raise click.ClickException(str(error)) from error
    table = Table(title=f"Docflow demo: model {settings.model_name} v{summary.model_version}")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("documents", str(summary.documents))
    for status, count in sorted(summary.statuses.items()):
        table.add_row(f"  status {status}", str(count))
    table.add_row("documents with predictions", str(summary.predicted))
    for name in ("accuracy", "macro_f1", "baseline_accuracy", "baseline_macro_f1"):
        if name in summary.metrics:
            table.add_row(f"cross-validated {name}", f"{summary.metrics[name]:.3f}")
    console.print(table)
    console.print(f"Dagster UI: http://127.0.0.1:{dagster_port}")
    console.print(f"API:        http://127.0.0.1:{api_port}  (docs: /schema)")
    console.print("Stop both with: make stop")


class ConsoleProgress:
    """The demo's progress on the terminal."""

    def step(self, title: str) -> None:
        console.rule(title)

    def note(self, message: str) -> None:
        console.print(message)

    @contextmanager
    def counting(self, what: str, total: int) -> Iterator[Callable[[int], None]]:
        with Progress(console=console) as progress:
            task = progress.add_task(what, total=total)
            yield lambda done: progress.update(task, completed=done)

    def waiting(self, what: str) -> AbstractContextManager[object]:
        return console.status(what)


@main.command()
@click.option("--name", default="docflow", show_default=True, help="Worker name (@host is added).")
def worker(name: str) -> None:
    """Run a Celery worker that executes pipeline steps.

    For DOCFLOW_EXECUTOR=celery.

    It takes one step at a time from DOCFLOW_CELERY_BROKER and acknowledges it only when done,
    so a worker killed mid-step gives the step back. OCR inside a step uses DOCFLOW_OCR_WORKERS
    processes. Start one per machine; every machine needs the same DOCFLOW_* and DAGSTER_HOME
    (PostgreSQL, S3 and MLflow server in production).
    """
    import sys

    settings = DocflowSettings()
    console.print(f"worker {name}: broker {settings.celery_broker}, home {settings.resolved_home}")
    command = [
        sys.executable,
        "-m",
        "celery",
        "--app",
        "docflow_assets.defs.celery_worker",
        "worker",
        # Steps run in the worker process itself: OCR starts its own process pool, which the
        # default prefork pool's daemonic children may not.
        "--pool",
        "solo",
        "--queues",
        "dagster",
        "--hostname",
        f"{name}@%h",
        "--loglevel",
        "INFO",
    ]
    # The worker takes this process's place: signals sent to it reach Celery itself.
    os.execv(sys.executable, command)


@main.command()
def stop() -> None:
    """Stop the processes that `docflow demo` started."""
    from docflow_assets import services

    stopped = services.stop_all(DocflowSettings().resolved_home / "run")
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@main.command("mlflow-ui")
@click.option("--port", default=5000, show_default=True)
def mlflow_ui(port: int) -> None:
    """Open the MLflow UI on the home's runs and models.

    Runs, metrics and model versions of the tracking store."""
    import sys

    settings = settings_of_existing_home()
    if settings.mlflow_tracking_uri:
        console.print(f"MLflow is a server here: open {settings.mlflow_tracking_uri}")
        return
    artifacts = settings.mlflow_artifact_location
    assert artifacts is not None  # embedded store: artefacts under the home
    console.print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C stops it)")
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        settings.resolved_mlflow_tracking_uri,
        "--default-artifact-root",
        artifacts,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    os.execv(sys.executable, command)
