"""Prometheus metrics of the API (request latency comes from Litestar's middleware)."""

from prometheus_client import Counter, Gauge, Histogram

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
