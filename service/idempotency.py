"""Retries without duplicates: the ``Idempotency-Key`` of a POST, and its first answer.

A client that lost the answer to a POST (factory Wi-Fi, a timeout) sends it again with the same
``Idempotency-Key`` header. Per tenant and key, within :data:`KEY_LIFETIME`:

- the first request *claims* the key: a row is inserted with the SHA-256 of its route and body
  and no answer yet. The primary key (tenant, key) lets only one insert succeed, so two
  requests sent at once cannot both run;
- when it succeeds, its answer (status, body) is stored in the row, and every later request
  with the key and the same route and body gets that answer back, creating nothing;
- when it fails, the row is removed: nothing was created, so a retry runs afresh;
- a request whose key is claimed but not answered yet waits for the answer (up to
  :data:`WAIT_SECONDS`, then 409 with Retry-After); a claim older than :data:`CLAIM_LEASE` is
  taken over, as its request died with its process;
- the same key with another route or body is refused (422): a key names one request.

``sealcheck gc`` removes keys older than the lifetime (:func:`expire_keys`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from service.db import IdempotentRequest, utcnow
from service.errors import BadInput, InFlight

__all__ = ["CLAIM_LEASE", "KEY_LIFETIME", "WAIT_SECONDS", "StoredAnswer", "claim",
           "expire_keys", "fingerprint", "release", "store_answer"]

KEY_LIFETIME = dt.timedelta(hours=24)
CLAIM_LEASE = dt.timedelta(minutes=15)  # far above the longest inspection in the queue
WAIT_SECONDS = 60.0  # how long a duplicate waits for the first request's answer


@dataclasses.dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a request, given again to its retries."""

    status_code: int
    media_type: str | None
    location: str | None
    body: str


def fingerprint(route: str, fields: dict[str, str], files: Iterable[tuple[str, str | None,
                                                                          bytes]]) -> str:
    """SHA-256 of what a request asks for: its route, text fields, files (name, file name and
    bytes, in order). Not the raw body: a client's retry may pick another multipart boundary."""
    digest = hashlib.sha256()
    digest.update(json.dumps([route, sorted(fields.items())]).encode())
    for field, filename, data in files:
        digest.update(json.dumps([field, filename, hashlib.sha256(data).hexdigest()]).encode())
    return digest.hexdigest()


def _row(session, tenant_id: str, key: str) -> IdempotentRequest | None:
    return session.get(IdempotentRequest, (tenant_id, key), populate_existing=True)


def claim(sessions: sessionmaker, tenant_id: str, key: str, print_: str
          ) -> StoredAnswer | None:
    """Claim `key` for a request whose fingerprint is `print_`.

    Returns None when this request now holds the key (run it, then :func:`store_answer` or
    :func:`release`), or the first request's answer. Raises BadInput (422) when the key was
    used for another request, InFlight (409) while that request has not answered yet.
    """
    for _ in range(5):  # a row may expire or be released between the insert and the read
        now = utcnow()
        with sessions() as session:
            session.add(IdempotentRequest(tenant_id=tenant_id, key=key, fingerprint=print_,
                                          created_at=now))
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
            row = _row(session, tenant_id, key)
            if row is None:
                continue  # released meanwhile: claim it again
            if row.created_at < now - KEY_LIFETIME:
                session.execute(sa.delete(IdempotentRequest).where(
                    IdempotentRequest.tenant_id == tenant_id, IdempotentRequest.key == key,
                    IdempotentRequest.created_at == row.created_at))
                session.commit()
                continue
            if row.fingerprint != print_:
                raise BadInput(f"Idempotency-Key {key!r} was already used within 24 h for "
                               "another request (another route or body); send a new key "
                               "for a new request, the same body to retry")
            if row.status_code is not None:
                return StoredAnswer(row.status_code, row.media_type, row.location, row.body)
            if row.created_at < now - CLAIM_LEASE:
                taken = session.execute(sa.update(IdempotentRequest).where(
                    IdempotentRequest.tenant_id == tenant_id, IdempotentRequest.key == key,
                    IdempotentRequest.status_code.is_(None),
                    IdempotentRequest.created_at == row.created_at).values(created_at=now))
                session.commit()
                if taken.rowcount == 1:
                    return None
                continue
            raise InFlight(f"a request with Idempotency-Key {key!r} is still running; retry "
                           "after a few seconds to get its answer", retry_after=5)
    raise InFlight(f"Idempotency-Key {key!r} is being claimed by several requests at once; "
                   "retry after a few seconds", retry_after=5)


def store_answer(sessions: sessionmaker, tenant_id: str, key: str, answer: StoredAnswer) -> None:
    """Keep the answer of the request that holds `key`, for its retries."""
    with sessions() as session:
        session.execute(sa.update(IdempotentRequest).where(
            IdempotentRequest.tenant_id == tenant_id, IdempotentRequest.key == key).values(
            status_code=answer.status_code, media_type=answer.media_type,
            location=answer.location, body=answer.body))
        session.commit()


def release(sessions: sessionmaker, tenant_id: str, key: str) -> None:
    """Give the key up: its request failed and created nothing, so a retry may run."""
    with sessions() as session:
        session.execute(sa.delete(IdempotentRequest).where(
            IdempotentRequest.tenant_id == tenant_id, IdempotentRequest.key == key,
            IdempotentRequest.status_code.is_(None)))
        session.commit()


def expire_keys(engine: sa.Engine, older_than: dt.timedelta = KEY_LIFETIME) -> int:
    """Delete keys claimed more than `older_than` ago; return how many."""
    with engine.begin() as connection:
        return connection.execute(sa.delete(IdempotentRequest).where(
            IdempotentRequest.created_at < utcnow() - older_than)).rowcount
