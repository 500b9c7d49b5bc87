"""The deployed model in memory, swapped atomically when the registry alias moves."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from docflow_assets.ml.classifier import LoadedModel
from docflow_assets.ml.registry import Registry


@dataclass(frozen=True)
class ServedModel:
    model: LoadedModel
    loaded_since: datetime


class ModelHolder:
    def __init__(self, registry: Registry, alias: str) -> None:
        self.registry = registry
        self.alias = alias
        self._served: ServedModel | None = None
        self._reload_lock = threading.Lock()

    @property
    def served(self) -> ServedModel | None:
        return self._served

    def why_not_served(self) -> str:
        """What a client is told while no model is served: the gate's last refusal, if any."""
        verdict = self.registry.last_verdict()
        if verdict is None or verdict[1] != "refused":
            return (
                "no model is deployed yet: none has been trained (training_snapshot_sensor "
                "trains once labelled documents are processed; `docflow train` trains now)"
            )
        version, _, reason = verdict
        return (
            f"no model is deployed yet: version {version} was refused by the deployment gate "
            f"({reason})"
        )

    def refresh(self) -> bool:
        """Load the alias's version if it differs from the one served; True if it changed.

        Requests keep using the old model until the new one is fully loaded.
        """
        with self._reload_lock:
            version = self.registry.version_for_alias(self.alias)
            current = self._served
            if version is None or (current is not None and current.model.version == version):
                return False
            self._served = ServedModel(self.registry.load(version), datetime.now(UTC))
            return True
