"""Dagster wiring only: every computation lives in the domain packages."""

# Who answers for the assets in the Dagster UI.
OWNER = "team:docflow"
