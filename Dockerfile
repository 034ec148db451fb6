# The CDS service image: uvicorn with several workers (docker/start.sh). Also runs the demo loader
# of docker-compose.yml (docker/load_fhir_server.py). It ships the tooling and the fixtures too, so
# the command line works inside it as documented (`cds-service evaluate`, `render`, `replay`,
# `knowledge diff`); tests/test_image.py installs this file set and runs it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY cds_service ./cds_service
COPY cds_tools ./cds_tools
COPY hooks ./hooks
RUN pip install .

COPY docker ./docker
COPY fixtures ./fixtures
RUN useradd --system --uid 10001 --home-dir /app cds && mkdir -p /app/var && chown cds /app/var

ENV CDS_HOOKS_DIR=/app/hooks \
    DATABASE_URL=sqlite:////app/var/cds-feedback.sqlite3 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    WEB_CONCURRENCY=4 \
    PORT=8080

USER cds
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=4).status != 200)"]
CMD ["/app/docker/start.sh"]
