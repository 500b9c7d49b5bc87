# MLflow tracking server: backend store in PostgreSQL, artefacts proxied to S3 (MinIO).
FROM python:3.11-slim-bookworm
RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg2-binary==2.9.13" "boto3==1.44.8" \
 && useradd --create-home mlflow && mkdir /prometheus && chown mlflow /prometheus
USER mlflow
EXPOSE 5000
