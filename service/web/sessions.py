"""Signed-in browsers: server-side sessions behind an HttpOnly cookie, and CSRF tokens.

Signing in exchanges an API key for a session: 32 random bytes from the OS, sent back in an
HttpOnly, SameSite=Lax cookie (Secure when the page came over https) and stored only as their
SHA-256, with the key they were opened with and an expiry. Every page looks the session up
again, so signing out (the row is deleted), an expired session or a deleted key ends access at
once. As for API keys, a plain SHA-256 is enough: nobody can guess 256 random bits from a hash.

CSRF: SameSite=Lax already keeps the cookie off cross-site POSTs in current browsers; every
form also carries a token derived from the session's secret (HMAC-SHA256 of a fixed label),
which a page of another site cannot read. It is derived, not stored, so there is nothing more
to keep in step with the session row.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from fastapi import Request, Response
from sqlalchemy.orm import Session

from service.auth import hash_key
from service.db import ApiKey, Tenant, WebSession, utcnow

__all__ = [
    "COOKIE_NAME",
    "SESSION_LIFETIME",
    "Visitor",
    "csrf_ok",
    "end_session",
    "open_session",
    "set_session_cookie",
    "clear_session_cookie",
    "visitor_for",
]

COOKIE_NAME = "sealcheck_session"
# A working shift and some: the floor signs in once per shift, not once per inspection.
SESSION_LIFETIME = dt.timedelta(hours=12)


@dataclasses.dataclass(frozen=True)
class Visitor:
    """The signed-in browser: whose data it sees and the token its forms must carry."""

    tenant_id: str
    tenant_name: str
    csrf_token: str
    token_hash: str


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _csrf_for(token: str) -> str:
    return hmac.new(token.encode("utf-8"), b"sealcheck-csrf", hashlib.sha256).hexdigest()


def open_session(session: Session, api_key: str) -> str | None:
    """A new session for a valid API key: the cookie's token, or None for an unknown key."""
    key = session.scalar(sa.select(ApiKey).where(ApiKey.key_hash == hash_key(api_key.strip())))
    if key is None:
        return None
    now = utcnow()
    # Housekeeping on the rare write path, so expired rows do not pile up.
    session.execute(sa.delete(WebSession).where(WebSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(WebSession(token_hash=_token_hash(token), tenant_id=key.tenant_id,
                           api_key_id=key.id, created_at=now,
                           expires_at=now + SESSION_LIFETIME))
    session.commit()
    return token


def visitor_for(session: Session, request: Request) -> Visitor | None:
    """The signed-in visitor of a request, or None (no cookie, unknown or expired session)."""
    token = request.cookies.get(COOKIE_NAME)
    if not token or len(token) > 128:
        return None
    token_hash = _token_hash(token)
    row = session.execute(
        sa.select(WebSession.tenant_id, Tenant.name)
        .join(ApiKey, ApiKey.id == WebSession.api_key_id)
        .join(Tenant, Tenant.id == WebSession.tenant_id)
        .where(WebSession.token_hash == token_hash, WebSession.expires_at > utcnow())).first()
    if row is None:
        return None
    return Visitor(tenant_id=row[0], tenant_name=row[1], csrf_token=_csrf_for(token),
                   token_hash=token_hash)


def end_session(session: Session, visitor: Visitor) -> None:
    session.execute(sa.delete(WebSession).where(WebSession.token_hash == visitor.token_hash))
    session.commit()


def csrf_ok(visitor: Visitor, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(visitor.csrf_token, presented)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(COOKIE_NAME, token, max_age=int(SESSION_LIFETIME.total_seconds()),
                        path="/", httponly=True, samesite="lax", secure=_secure(request))


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax",
                           secure=_secure(request))
