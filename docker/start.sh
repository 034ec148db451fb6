#!/bin/sh
# Container entry point: several uvicorn workers (WEB_CONCURRENCY) sharing one Prometheus
# multiprocess directory, emptied at each start as prometheus-client requires. The app migrates the
# store (alembic upgrade head, serialised by an advisory lock) when each worker starts.
set -eu
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    rm -rf "$PROMETHEUS_MULTIPROC_DIR"
    mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi
exec uvicorn cds_service.asgi:app \
    --host 0.0.0.0 --port "${PORT:-8080}" \
    --workers "${WEB_CONCURRENCY:-4}" \
    --no-access-log --proxy-headers
