# Docflow's image: the code location (gRPC server), the Dagster webserver and daemon, the API.
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends tesseract-ocr tesseract-ocr-eng tesseract-ocr-rus \
    fonts-dejavu-core fonts-liberation fonts-freefont-ttf \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The CPU build of torch: the default wheel would pull several GB of CUDA libraries.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu \
    "torch==2.14.1" "torchvision==0.29.1"
COPY pyproject.toml README.md ./
COPY docflow_assets ./docflow_assets
COPY docflow_api ./docflow_api
COPY workspace.yaml ./
COPY deploy/workspace.yaml deploy/dagster.prod.yaml ./deploy/
RUN pip install --no-cache-dir . \
 && useradd --create-home docflow \
 && mkdir -p /opt/dagster/home /data \
 && cp deploy/dagster.prod.yaml /opt/dagster/home/dagster.yaml \
 && chown -R docflow /opt/dagster /data
USER docflow
ENV OMP_THREAD_LIMIT=1 DAGSTER_HOME=/opt/dagster/home DOCFLOW_HOME=/data
EXPOSE 3000 4000 8000
