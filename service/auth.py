"""Tenants and their API keys.

A key is 32 random bytes from the OS (``secrets``), shown once and stored only as its SHA-256.
A plain, fast hash is right here, unlike for passwords: with 256 bits of entropy nobody can
guess a key from its hash, so a slow salted hash (bcrypt, Argon2) would add no protection, only
cost on every request; and an unsalted hash can be looked up through a unique index.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from service.db import ApiKey, Tenant

__all__ = ["KEY_PREFIX", "create_key", "hash_key", "tenant_for_key"]

KEY_PREFIX = "sck_"  # makes a leaked key easy to recognise (secret scanners, logs)


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
        sa.select(Tenant, ApiKey.key_hash).join(ApiKey, ApiKey.tenant_id == Tenant.id)
        .where(ApiKey.key_hash == presented)
    ).first()
    if row is None or not hmac.compare_digest(row[1].encode(), presented.encode()):
        return None
    return row[0]
