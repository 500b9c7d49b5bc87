#!/bin/sh
# One PostgreSQL server, three databases: Docflow's tables, Dagster's storage, MLflow's store.
set -eu
for database in dagster mlflow; do
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -c "CREATE DATABASE $database"
done
