"""MLflow models-from-code entry point: the registered version is a pyfunc without pickles.

``mlflow models serve -m models:/docflow-classifier@champion`` serves it; it accepts a frame
with a ``text`` column and returns the class and confidence for each row.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel, PythonModelContext


class DocflowPyfunc(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from docflow_assets.ml.classifier import DocumentClassifier

        self.classifier = DocumentClassifier.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input, params=None):
        # Untyped on purpose: MLflow reads type hints as a schema; the signature is logged instead.
        if isinstance(model_input, pd.DataFrame):
            texts = model_input["text"].astype(str).tolist()
        else:
            texts = [str(text) for text in model_input]
        scored = self.classifier.score_texts(texts)
        return pd.DataFrame(
            {
                "predicted_class": [item.predicted_class for item in scored],
                "confidence": [item.confidence for item in scored],
            }
        )


mlflow.models.set_model(DocflowPyfunc())
