"""The ``docflow`` command group, its console, and what several commands share."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click
from rich.console import Console

from docflow_assets.settings import DocflowSettings

if TYPE_CHECKING:
    pass

console = Console()


@click.group(context_settings={"max_content_width": 120})
def main() -> None:
    """Docflow: document OCR and classification."""


def home_registry(settings: DocflowSettings):
    from docflow_assets.ml.registry import Registry

    return Registry.from_settings(settings)


def settings_of_existing_home() -> DocflowSettings:
    """The settings, once their home is known to exist: a command that only reads must not
    create an empty home (and MLflow store) wherever it happens to run."""
    settings = DocflowSettings()
    home = settings.home.expanduser().resolve()
    if settings.mlflow_tracking_uri is None and not home.is_dir():
        raise click.ClickException(
            f"no Docflow home at {home}: run where `make demo` ran, or set DOCFLOW_HOME"
        )
    console.print(f"home {settings.resolved_home}", style="dim")
    return settings
