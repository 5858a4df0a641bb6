"""Tenants and their API keys.

A key is 32 random bytes from the OS (``secrets``), shown once and stored only as its SHA-256.
A plain, fast hash is right here, unlike for passwords: with 256 bits of entropy nobody can
guess a key from its hash, so a slow salted hash (bcrypt, Argon2) would add no protection, only
cost on every request; and an unsalted hash can be looked up through a unique index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.db import ApiKey, Tenant, WebSession, utcnow

__all__ = ["KEY_PREFIX", "KeyInfo", "RevokedKey", "create_key", "hash_key", "list_keys",
           "revoke_key", "tenant_for_key"]

KEY_PREFIX = "sck_"  # makes a leaked key easy to recognise (secret scanners, logs)
# last_used_at is written at most this often per key: a request reads, it should rarely write.
LAST_USED_RESOLUTION = dt.timedelta(hours=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(session: Session, tenant_name: str) -> str:
    """Create a key for `tenant_name` (creating the tenant if new); return the key itself."""
    tenant = session.scalar(sa.select(Tenant).where(Tenant.name == tenant_name))
    if tenant is None:
        tenant = Tenant(name=tenant_name)
        session.add(tenant)
        session.flush()
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(tenant_id=tenant.id, key_hash=hash_key(key)))
    session.commit()
    return key


def tenant_for_key(session: Session, key: str) -> Tenant | None:
    """The tenant a presented key belongs to, or None for an unknown key.

    The database finds the row by the key's SHA-256, and its index compares hashes byte by
    byte; that timing can only reveal how much of a hash an attacker's guess shares, and a hash
    prefix says nothing about the key that produced it. The final comparison is still made in
    constant time (hmac.compare_digest), so no comparison of secret material exits early.
    """
    presented = hash_key(key)
    row = session.execute(
        sa.select(Tenant, ApiKey.key_hash, ApiKey.id, ApiKey.last_used_at)
        .join(ApiKey, ApiKey.tenant_id == Tenant.id).where(ApiKey.key_hash == presented)
    ).first()
    if row is None or not hmac.compare_digest(row[1].encode(), presented.encode()):
        return None
    now = utcnow()
    if row[3] is None or row[3] < now - LAST_USED_RESOLUTION:
        _note_use(session, row[2], now)
    return row[0]


def _note_use(session: Session, key_id: str, now: dt.datetime) -> None:
    # Best effort: a full disk or a busy database must not refuse a valid key.
    try:
        session.execute(sa.update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        session.commit()
    except sa.exc.SQLAlchemyError:
        session.rollback()


@dataclasses.dataclass(frozen=True)
class KeyInfo:
    """What may be shown of a key: never the key, which is not stored."""

    id: str
    tenant: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None


@dataclasses.dataclass(frozen=True)
class RevokedKey:
    id: str
    tenant: str
    sessions_ended: int


def list_keys(session: Session) -> list[KeyInfo]:
    """Every key, by tenant and then age."""
    rows = session.execute(
        sa.select(ApiKey.id, Tenant.name, ApiKey.created_at, ApiKey.last_used_at)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .order_by(Tenant.name, ApiKey.created_at, ApiKey.id))
    return [KeyInfo(*row) for row in rows]


def revoke_key(session: Session, key_id: str) -> RevokedKey | None:
    """Delete the key and end its web sessions (explicitly: a database opened without
    foreign-key enforcement, as SQLite is by default, would not cascade); None if unknown."""
    row = session.execute(sa.select(ApiKey.id, Tenant.name).join(
        Tenant, Tenant.id == ApiKey.tenant_id).where(ApiKey.id == key_id)).first()
    if row is None:
        return None
    ended = session.execute(sa.delete(WebSession).where(WebSession.api_key_id == key_id))
    session.execute(sa.delete(ApiKey).where(ApiKey.id == key_id))
    session.commit()
    return RevokedKey(row[0], row[1], ended.rowcount)
