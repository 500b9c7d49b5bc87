"""Dagster wiring only: every computation lives in the domain packages."""
