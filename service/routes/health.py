"""Liveness, readiness and Prometheus metrics; none of them touch the pipeline pool."""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from service.deps import ServiceDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process answers")
async def healthz() -> dict:
    # async and dependency-free: answered on the event loop even when every thread is busy.
    return {"status": "ok"}


def _database_ok(service) -> str | None:
    try:
        with service.engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except Exception as exc:  # any failure means "not ready"; say which
        return f"database: {exc.__class__.__name__}"
    if not service.blobs.root.is_dir():
        return f"data directory {service.blobs.root} is missing"
    return None


@router.get("/readyz", summary="The database and data directory are reachable")
async def readyz(service: ServiceDep) -> JSONResponse:
    problem = await run_in_threadpool(_database_ok, service)
    if problem:
        return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
    return JSONResponse({"status": "ok", "pipeline_jobs": service.pool.jobs,
                         "workers": service.pool.workers})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
