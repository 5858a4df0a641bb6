"""The HTTP service: ``create_app(settings)`` builds the FastAPI app.

Start it with ``sealcheck serve`` (or ``make serve``). The lifespan handler migrates the
database, opens the file store and starts the pipeline pool; routes reach them through
:mod:`service.deps`. Every error answer is JSON ``{"detail": "..."}`` with one line that says
what is wrong and how to fix it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from service.db import make_engine, make_sessionmaker, migrate
from service.metrics import Metrics, MetricsMiddleware
from service.operations import Service
from service.routes import compare, goldens, health, inspections
from service.settings import Settings
from service.storage import BlobStore
from service.work import GoldenCache, PipelinePool

__all__ = ["create_app"]

log = logging.getLogger("sealcheck")

_DESCRIPTION = """\
Check production units against the sealed golden sample.

1. Create a key: `sealcheck keys create --tenant ACME` (prints the key once).
2. Seal a golden: `POST /v1/goldens` with its photos, spec, name and SKU.
3. Inspect units: `POST /v1/goldens/{id}/inspections` with the unit's photo.
4. Look at `overlay.png` and `defect_map.png` of the inspection.

Every `/v1` call needs `Authorization: Bearer KEY`. Ids of other tenants answer 404.
"""


def _validation_detail(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) + "; see /docs for the accepted values"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; `settings` default to the ``SEALCHECK_*`` environment variables."""
    settings = settings or Settings.from_env()
    metrics = Metrics()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(settings.database_url)
        await run_in_threadpool(migrate, engine)
        blobs = BlobStore(settings.data_dir)
        await run_in_threadpool(blobs.open)
        pool = PipelinePool(settings.workers, settings.queue_size, metrics)
        io = concurrent.futures.ThreadPoolExecutor(2 * settings.workers + 2,
                                                   thread_name_prefix="sealcheck-io")
        app.state.service = Service(
            settings=settings, engine=engine, sessions=make_sessionmaker(engine), blobs=blobs,
            pool=pool, goldens=GoldenCache(settings.golden_cache_size), metrics=metrics, io=io)
        try:
            yield
        finally:
            pool.shutdown()
            io.shutdown(wait=True)
            engine.dispose()

    app = FastAPI(title="sealcheck", version="1", description=_DESCRIPTION, lifespan=lifespan)
    for module in (goldens, inspections, compare, health):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        # A bug, not bad input (bad input raises HTTPException): log the traceback, answer
        # without it.
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({exc.__class__.__name__}); this is a "
                             "bug in sealcheck, please report it"}, status_code=500)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
