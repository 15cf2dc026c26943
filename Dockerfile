# The image of the whole service: the API, the Dagster code server and its run workers, the CLI (`triage db
# migrate`, `triage webhooks deliver --watch`, `triage worker`). docker-compose.yml builds it; the Helm chart's
# user code deployment, the Kubernetes manifests of deploy/ and the Celery workers run it (deploy/README.md).
#
#   docker build -t ticket-triage .
FROM python:3.13-slim

# Bytecode compiled at build time: every run worker and CLI call starts from it (about 1.5 s to load the code
# location instead of 15 s when each process recompiles from source).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home

WORKDIR /app
COPY . /app

# Extras: `scale` for TRIAGE_EXECUTOR=celery (dagster-celery and the Redis client, `triage worker`), `k8s` for
# TRIAGE_EXECUTOR=k8s (dagster-k8s's k8s_job_executor under the Helm chart's K8sRunLauncher). The project's
# dagster.yaml (storage in PostgreSQL, read from DB_* and DAGSTER_DB_NAME) is the instance of the compose stack
# and of `triage worker`; the Helm chart mounts its own at its DAGSTER_HOME (/opt/dagster/dagster_home), which
# is created here so that a non-root process may write beside it.
RUN pip install --no-cache-dir --compile -e '.[scale,k8s]' \
    && python -m compileall -q triage_pipeline api \
    && mkdir -p "$DAGSTER_HOME" /opt/dagster/dagster_home \
    && cp dagster.yaml "$DAGSTER_HOME/" \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin triage \
    && chown -R 10001 /opt/dagster

# A numeric user, so that Kubernetes' runAsNonRoot can check it.
USER 10001

EXPOSE 8000 3000 4266
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000"]
