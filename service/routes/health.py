"""Liveness, readiness and Prometheus metrics; none of them touch the pipeline pool."""

from __future__ import annotations

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


def _storage_problem(service) -> str | None:
    return service.storage.check(service.engine, service.blobs,
                                 room_bytes=service.settings.max_upload_bytes)


@router.get("/readyz", summary="The database and data directory can store a request",
            description="503 while the database is unreachable, the data directory cannot be "
            "written, or after a storage failure (disk full, read-only) until there is room "
            "for the largest upload and the database commits again.")
async def readyz(service: ServiceDep) -> JSONResponse:
    problem = await run_in_threadpool(_storage_problem, service)
    if problem:
        return JSONResponse({"status": "unavailable", "detail": problem}, status_code=503)
    return JSONResponse({"status": "ok", "pipeline_jobs": service.pool.jobs,
                         "workers": service.pool.workers})


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(service: ServiceDep) -> Response:
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
