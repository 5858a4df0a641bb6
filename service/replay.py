"""The ``Idempotency-Key`` header of the creating POSTs, for the API and the web pages.

:func:`answer_once` runs a request once per key and gives its first answer to every retry
(service.idempotency keeps the keys). The request runs in a task of its own, shielded from
the client going away: an answer the client never received is still stored, for its retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from service.errors import InFlight
from service.idempotency import (
    WAIT_SECONDS,
    StoredAnswer,
    claim,
    fingerprint,
    release,
    store_answer,
)
from service.operations import Service
from service.uploads import Form

__all__ = ["IdempotencyKeyHeader", "answer_once", "form_fingerprint", "json_fingerprint"]

IdempotencyKeyHeader = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
    description="Optional: a key you make per request (a UUID), sent again unchanged when "
    "you retry it. The same key and body within 24 h answer the first answer again (status "
    "and body) and create nothing new; the same key with another body answers 422; while the "
    "first is still running, a retry waits for its answer (409 with Retry-After after 60 s). "
    "A repeated answer carries `Idempotent-Replayed: true`. Printable ASCII, 1-255 "
    "characters.",
    examples=["5f0c7a52-3d4e-4a8e-9d59-0c6f1f3c2b7e"])]

_POLL_SECONDS = 0.2

log = logging.getLogger("sealcheck")


def form_fingerprint(request: Request, form: Form, ignore: frozenset[str] = frozenset()
                     ) -> str:
    """What a multipart request asks for: its path, fields (less `ignore`) and files."""
    fields = {name: value for name, value in form.fields.items() if name not in ignore}
    files = [(upload.field, upload.filename, upload.data)
             for uploads in form.files.values() for upload in uploads]
    return fingerprint(request.url.path, fields, files)


def json_fingerprint(request: Request, body: BaseModel) -> str:
    """What a JSON request asks for: its path and its body as validated."""
    return fingerprint(request.url.path, {"json": body.model_dump_json()}, [])


def _rendered(answer: Response | BaseModel, status_code: int) -> Response:
    if isinstance(answer, Response):
        return answer
    return JSONResponse(answer.model_dump(mode="json"), status_code=status_code)


def _replayed(stored: StoredAnswer) -> Response:
    headers = {"Idempotent-Replayed": "true"}
    if stored.location:
        headers["Location"] = stored.location
    return Response(stored.body, status_code=stored.status_code, media_type=stored.media_type,
                    headers=headers)


async def answer_once(service: Service, tenant_id: str, key: str | None,
                      request_print: Callable[[], str],
                      make: Callable[[], Awaitable[Response | BaseModel]], *,
                      status_code: int = 201) -> Response:
    """`make()`'s answer, or without running it the first answer to the same key and body.

    Without a key, `make()` simply runs. A model is answered as JSON with `status_code`.
    Only answers below 400 are kept: after a refusal nothing was created, so a retry runs.
    `request_print()` (e.g. :func:`form_fingerprint` with its arguments bound) is called only
    when a key is sent, and off the event loop: it hashes every uploaded byte.
    """
    if key is None:
        return _rendered(await make(), status_code)
    printed = await run_in_threadpool(request_print)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        try:
            stored = await run_in_threadpool(claim, service.sessions, tenant_id, key,
                                             printed)
            break
        except InFlight:  # the first request with this key is running: wait for its answer
            if loop.time() > deadline:
                raise
            await asyncio.sleep(_POLL_SECONDS)
    if stored is not None:
        return _replayed(stored)
    return await asyncio.shield(asyncio.ensure_future(
        _run_and_keep(service, tenant_id, key, make, status_code)))


async def _run_and_keep(service: Service, tenant_id: str, key: str,
                        make: Callable[[], Awaitable[Response | BaseModel]],
                        status_code: int) -> Response:
    try:
        response = _rendered(await make(), status_code)
    except BaseException:
        # Nothing was created. If the database is gone too, the claim stays until its lease
        # ends (service.idempotency.CLAIM_LEASE) and retries wait or get 409 meanwhile.
        with contextlib.suppress(Exception):
            await run_in_threadpool(release, service.sessions, tenant_id, key)
        raise
    if response.status_code >= 400:
        await run_in_threadpool(release, service.sessions, tenant_id, key)
        return response
    answer = StoredAnswer(response.status_code, response.media_type,
                          response.headers.get("location"), bytes(response.body).decode())
    try:
        await run_in_threadpool(store_answer, service.sessions, tenant_id, key, answer)
    except Exception as exc:
        # The record exists: this client gets its answer all the same. Its retries wait or
        # get 409 until the claim's lease ends (service.idempotency.CLAIM_LEASE).
        log.warning("the answer for Idempotency-Key %r was not kept: %s", key, exc)
    return response
