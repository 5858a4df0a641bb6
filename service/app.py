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
from fastapi_offline import FastAPIOffline
from sqlalchemy.exc import DataError, OperationalError
from starlette.concurrency import run_in_threadpool

from service.db import make_engine, make_sessionmaker, migrate
from service.errors import ServiceError
from service.http_errors import InternalErrorMiddleware, error_response
from service.limits import BodyLimitMiddleware
from service.metrics import Metrics, MetricsMiddleware
from service.operations import Service
from service.routes import compare, goldens, health, inspections, lots
from service.settings import Settings
from service.storage import BlobStore
from service.storage_guard import storage_unavailable
from service.web import install as install_web_pages
from service.work import GoldenCache, PipelinePool
from vision import defect_model

__all__ = ["create_app"]

log = logging.getLogger("sealcheck")

_DESCRIPTION = """\
Check production units against the sealed golden sample.

1. Create a key: `sealcheck keys create --tenant ACME` (prints the key once).
2. Seal a golden: `POST /v1/goldens` with its photos, spec, name and SKU.
3. Inspect units: `POST /v1/goldens/{id}/inspections` with the unit's photo.
4. Look at `overlay.png` and `defect_map.png` of the inspection.
5. Judge a shipment: `POST /v1/lots` gives its AQL plan (ISO 2859-1); inspections join it with
   `lot_id`; `GET /v1/lots/{id}` says accept, reject or pending.

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
        # The defect model's session is created once per process; here rather than in the
        # first inspection (~90 ms), and a bad SEALCHECK_DEFECT_MODEL stops the start.
        model_before = defect_model.configure(path=settings.defect_model,
                                              threads=settings.model_threads)
        await run_in_threadpool(defect_model.model_version)
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
            defect_model.configure(path=model_before.path, threads=model_before.threads)

    # /docs (Swagger UI) and /redoc from the script and CSS that fastapi-offline installs with
    # the package, at /static-offline-docs: a factory network without internet still has its
    # API docs. FastAPI's default loads them from a CDN.
    app = FastAPIOffline(title="sealcheck", version="1", description=_DESCRIPTION,
                         lifespan=lifespan)
    for module in (goldens, inspections, lots, compare, health):
        app.include_router(module.router)
    install_web_pages(app)  # the pages for QC staff at /, their files at /static

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc)}, status_code=422)

    @app.exception_handler(OSError)
    @app.exception_handler(OperationalError)
    async def _storage(request: Request, exc: Exception) -> JSONResponse:
        storage = storage_unavailable(exc)
        if storage is None:
            raise exc  # a bug, not an outage: InternalErrorMiddleware answers it
        # Disk full, read-only, database gone: 507/503, and /readyz not ready until it works.
        log.warning("storage failure on %s %s: %s", request.method, request.url.path, exc)
        request.app.state.service.storage.failed(storage)
        return error_response(storage)

    @app.exception_handler(DataError)
    async def _unstorable(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the client sent (PostgreSQL takes no NUL character in
        # text; numbers beyond a column's range): bad input, so 422, not a 500. Writes refuse
        # such text before any file is stored (service.routes._common, service.uploads).
        reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
        return JSONResponse({"detail": f"a value in the request cannot be stored or looked up "
                             f"({reason}); remove control characters such as NUL from text "
                             "and keep numbers in range"}, status_code=422)

    @app.exception_handler(ServiceError)
    async def _refused(request: Request, exc: ServiceError) -> JSONResponse:
        # A StorageUnavailable from the operations was already recorded for /readyz.
        # Operations and queries say what went wrong; service.http_errors says which status.
        return error_response(exc)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                            headers=exc.headers)

    # A bug, not bad input (bad input raises ServiceError or HTTPException): logged, answered
    # 500 without the traceback; inside the metrics, which count the 500.
    app.add_middleware(InternalErrorMiddleware)
    # Outside the routes and the 500s (an answer to a body left unread closes the connection),
    # inside the metrics: a body cut off at its cap is counted as a 413.
    app.add_middleware(BodyLimitMiddleware, settings=settings)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _document_error_answers(app)
    return app


def _document_error_answers(app: FastAPI) -> None:
    """Make the schema say what the 422 answers are: ``{"detail": "one line"}``.

    FastAPI documents its default validation error (a list of error objects), but
    `_validation` above answers one line of text, like every other error here; clients that
    generate code from the schema (and schemathesis) must see the real shape.
    """
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            components = schema.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in components:
                components["HTTPValidationError"] = {
                    "title": "HTTPValidationError", "type": "object", "required": ["detail"],
                    "properties": {"detail": {"type": "string", "title": "Detail",
                                              "description": "What is wrong and how to fix "
                                              "it, in one line."}}}
                components.pop("ValidationError", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
