"""The ``docflow`` command line: one group, its commands in modules by what they work on."""

from docflow_assets.cli import model, reading, records, running
from docflow_assets.cli.app import main

__all__ = ["main", "model", "reading", "records", "running"]
