"""Retries without duplicates, key use, and the readiness probe's row.

- ``idempotency_keys``: one row per (tenant, ``Idempotency-Key`` header) of a POST, with the
  SHA-256 of its route and body and, once done, its answer (status, media type, redirect,
  body). The primary key makes a second request with the same key fail to insert, so two at
  once create one thing. ``sealcheck gc`` removes rows older than 24 h.
- ``api_keys.last_used_at``: when the key was last seen (refreshed at most hourly), shown by
  ``sealcheck keys list``; null until then.
- ``health_probe``: one row that ``/readyz`` rewrites after a storage error, to see that the
  database commits again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id"), primary_key=True),
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("media_type", sa.String(100), nullable=True),
        sa.Column("location", sa.String(2000), nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),  # naive UTC
    )
    op.create_table(
        "health_probe",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("written_at", sa.DateTime, nullable=False),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("last_used_at", sa.DateTime, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("last_used_at")
    op.drop_table("health_probe")
    op.drop_table("idempotency_keys")
