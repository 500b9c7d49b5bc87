FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus \
    fonts-dejavu-core fonts-liberation fonts-freefont-ttf \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY docflow_assets ./docflow_assets
COPY docflow_api ./docflow_api
COPY workspace.yaml dagster.yaml ./
RUN pip install --no-cache-dir . && mkdir -p /data/dagster_home && cp dagster.yaml /data/dagster_home/
ENV OMP_THREAD_LIMIT=1
