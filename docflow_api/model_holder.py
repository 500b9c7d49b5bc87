"""The deployed model in memory, swapped atomically when the registry alias moves."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from docflow_assets.ml.classifier import LoadedModel
from docflow_assets.ml.registry import Registry, TrainingSummary


@dataclass(frozen=True)
class ServedModel:
    model: LoadedModel
    loaded_since: datetime
    trained: TrainingSummary | None = None


@dataclass(frozen=True)
class ModelState:
    """What the front page and the review page say about the model: the one served (and how
    it was trained), and the gate's verdict on the newest version it judged."""

    served: ServedModel | None
    last_verdict: tuple[str, str, str] | None  # version, passed or refused, reason
    why_not_served: str | None

    @property
    def refused_since(self) -> tuple[str, str] | None:
        """(version, reason) when the newest judged version was refused after (or instead
        of) the one served."""
        if self.last_verdict is None or self.last_verdict[1] != "refused":
            return None
        version, _, reason = self.last_verdict
        if self.served is not None and int(self.served.model.version) >= int(version):
            return None
        return version, reason


class ModelHolder:
    def __init__(self, registry: Registry, alias: str) -> None:
        self.registry = registry
        self.alias = alias
        self._served: ServedModel | None = None
        self._reload_lock = threading.Lock()

    @property
    def served(self) -> ServedModel | None:
        return self._served

    def state(self) -> ModelState:
        verdict = self.registry.last_verdict()
        served = self._served
        return ModelState(
            served, verdict, None if served is not None else self._why_not_served(verdict)
        )

    def why_not_served(self) -> str:
        """What a client is told while no model is served: the gate's last refusal, if any."""
        return self._why_not_served(self.registry.last_verdict())

    def _why_not_served(self, verdict: tuple[str, str, str] | None) -> str:
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
            model = self.registry.load(version)
            trained = self.registry.training_summary(model.run_id) if model.run_id else None
            self._served = ServedModel(model, datetime.now(UTC), trained)
            return True
