"""Lots judged by AQL sampling (ISO 2859-1); inspections join one through ``lot_id``.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "lots",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("golden_seq", sa.Integer, sa.ForeignKey("goldens.seq"), nullable=False,
                  index=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("lot_size", sa.Integer, nullable=False),
        sa.Column("level", sa.String(4), nullable=False),
        sa.Column("aql", sa.JSON, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_lots_tenant_seq", "lots", ["tenant_id", "seq"])
    # A lot's progress reads its inspections by lot id on every GET and every new inspection.
    op.create_index("ix_inspections_lot_id", "inspections", ["lot_id"])


def downgrade() -> None:
    op.drop_index("ix_inspections_lot_id", "inspections")
    op.drop_table("lots")
