"""Commands on the model: train now, what is served, roll back."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import click
from rich.table import Table

from docflow_assets.cli.app import console, home_registry, main, settings_of_existing_home
from docflow_assets.settings import DocflowSettings


@main.command()
def train() -> None:
    """Snapshot the labels, train, deploy if the gate passes.

    Adds a training snapshot partition and runs train_model_job for it in this process against
    the home's Dagster instance, so the run, the partition and its checks show in the Dagster
    UI. Exit code 1 when the gate refused the model.
    """
    from dagster import DagsterInstance

    from docflow_assets.definitions import defs
    from docflow_assets.defs.partitions import TRAINING_SNAPSHOTS
    from docflow_assets.demo_run import prepare_dagster_home
    from docflow_assets.ml.training_set import snapshot_partition_key

    settings = DocflowSettings()
    dagster_home = prepare_dagster_home(os.environ, settings.resolved_home)
    partition = snapshot_partition_key(datetime.now(UTC))
    console.print(
        f"home {settings.resolved_home}, Dagster instance {dagster_home}, "
        f"training snapshot {partition}"
    )
    with DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(TRAINING_SNAPSHOTS, [partition])
        result = defs.resolve_job_def("train_model_job").execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
    trained = {
        event.asset_key.to_user_string(): event.step_materialization_data.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }
    table = Table(title=f"training snapshot {partition}")
    for column in ("check", "verdict", "why"):
        table.add_column(column)
    for check in result.get_asset_check_evaluations():
        reason = check.metadata.get("reason")
        figures = ", ".join(f"{name} {value.value}" for name, value in check.metadata.items())
        table.add_row(
            f"{check.asset_key.to_user_string()}: {check.check_name}",
            "[green]passed[/green]" if check.passed else "[red]refused[/red]",
            str(reason.value) if reason is not None else figures,
        )
    console.print(table)
    classifier = trained.get("document_classifier")
    if classifier is None:
        raise click.ClickException(f"run {result.run_id} trained no model (see the checks above)")
    console.print(f"model version {classifier['model_version'].value}")
    head = classifier["head"].value
    console.print(
        f"head {head}, cross-validated macro-F1 {classifier['test_macro_f1'].value:.3f} "
        f"(baseline {classifier['baseline_test_macro_f1'].value:.3f})"
    )
    if "deployed_model" not in trained:
        console.print(f"[red]not deployed[/red]: {settings.model_alias} stays where it was")
        raise SystemExit(1)
    console.print(f"deployed as {settings.model_name}@{settings.model_alias}")


@main.group()
def model() -> None:
    """The registered classifier: what is served, and rollback."""


@model.command("info")
def model_info() -> None:
    """Show which version the serving alias points at."""
    from docflow_assets.ml.registry import PREVIOUS_ALIAS_SUFFIX

    settings = settings_of_existing_home()
    registry = home_registry(settings)
    current = registry.version_for_alias(settings.model_alias)
    previous = registry.version_for_alias(settings.model_alias + PREVIOUS_ALIAS_SUFFIX)
    console.print(f"{settings.model_name}@{settings.model_alias}: version {current}")
    console.print(f"rollback target: version {previous}")
    verdict = registry.last_verdict()
    if verdict is not None:
        version, outcome, reason = verdict
        console.print(f"last gate verdict: version {version} {outcome} ({reason})")
    if current is None:
        console.print("[red]no model is served[/red]")
        raise SystemExit(1)


@model.command("rollback")
@click.option("--to", "to_version", help="Version to serve (default: the one served before).")
def model_rollback(to_version: str | None) -> None:
    """Serve the previous (or a given) version again."""
    settings = settings_of_existing_home()
    try:
        left, served = home_registry(settings).rollback(settings.model_alias, to_version)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    console.print(f"{settings.model_name}@{settings.model_alias}: version {left} -> {served}")
