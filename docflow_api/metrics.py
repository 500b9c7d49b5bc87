"""Prometheus metrics: the API's own (request latency comes from Litestar's middleware), and
the pipeline's, read from the database at scrape time."""

from collections.abc import Callable, Iterator, Mapping

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError

from docflow_assets.document_service import PipelineState

UPLOADS = Counter("docflow_uploads_total", "Uploads by outcome.", ["outcome"])
OCR_SECONDS = Histogram(
    "docflow_ocr_seconds",
    "Seconds of online OCR per document.",
    buckets=(0.5, 1, 2, 5, 10, 30, 60, 120),
)
OCR_CONFIDENCE = Histogram(
    "docflow_ocr_confidence",
    "Mean word confidence of online OCR pages.",
    buckets=(0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
PREDICTIONS = Counter("docflow_predictions_total", "Predictions by class.", ["predicted_class"])
PREDICTION_CONFIDENCE = Histogram(
    "docflow_prediction_confidence",
    "Confidence of predictions.",
    buckets=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0),
)
MODEL_INFO = Gauge(
    "docflow_model_info", "The model version served (1 for the current one).", ["name", "version"]
)


class PipelineCollector(Collector):
    """The pipeline's state as gauges, read from the database on each scrape: every API replica
    reports the same values, so dashboards take ``max`` across instances, not ``sum``."""

    def __init__(self, state: Callable[[], PipelineState]) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "docflow_pipeline_state_up",
            "1 if the pipeline's state could be read from the database.",
        )
        try:
            state = self._state()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _labelled(
            GaugeMetricFamily,
            "docflow_documents",
            "Documents by status.",
            "status",
            state.documents_by_status,
        )
        yield GaugeMetricFamily(
            "docflow_backlog_oldest_upload_seconds",
            "Age of the oldest upload not yet read (0: nothing waits).",
            value=state.oldest_waiting_seconds,
        )
        yield _labelled(
            CounterMetricFamily,
            "docflow_pages_read",
            "Pages whose OCR text is stored, by engine (pipeline and online reads).",
            "engine",
            state.pages_read_by_engine,
        )
        yield _labelled(
            GaugeMetricFamily,
            "docflow_documents_failed",
            "Failed documents by kind of failure.",
            "reason",
            state.failures_by_kind,
        )
        gate = GaugeMetricFamily(
            "docflow_model_gate_passed",
            "1 if the model version the deployment gate judged last passed it, else 0.",
            labels=["version"],
        )
        if state.last_gate_verdict is not None:
            version, passed = state.last_gate_verdict
            gate.add_metric([version], 1 if passed else 0)
        yield gate


def _labelled(
    family: type[GaugeMetricFamily] | type[CounterMetricFamily],
    name: str,
    documentation: str,
    label: str,
    values: Mapping[str, float],
) -> Metric:
    """One sample per entry of ``values``, the key as ``label``."""
    metric = family(name, documentation, labels=[label])
    for key, value in values.items():
        metric.add_metric([key], value)
    return metric
