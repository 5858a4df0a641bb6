"""Web page sessions; the pictures the report page shows beside the overlay.

- ``web_sessions``: one row per signed-in browser. The cookie holds a random token; only its
  SHA-256 is stored (as for API keys), with the key it was opened with and an expiry.
- ``goldens.picture_sha256``: the golden at the analysis size (long side 1024 px), PNG.
- ``inspections.aligned_sha256``: the unit resampled onto that picture, PNG; null when the unit
  was not registered. Both are null for rows written before this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id"), nullable=False),
        # A key removed later takes its sessions with it.
        sa.Column("api_key_id", sa.String(36), sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
    )
    with op.batch_alter_table("goldens") as batch:
        batch.add_column(sa.Column("picture_sha256", sa.String(64), nullable=True))
    with op.batch_alter_table("inspections") as batch:
        batch.add_column(sa.Column("aligned_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("inspections") as batch:
        batch.drop_column("aligned_sha256")
    with op.batch_alter_table("goldens") as batch:
        batch.drop_column("picture_sha256")
    op.drop_table("web_sessions")
