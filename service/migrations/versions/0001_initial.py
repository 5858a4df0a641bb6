"""Tenants, API keys, sealed goldens, inspections and their images.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written out rather than imported from service.db, so this revision stays what it was when
# later revisions change the models. Times are naive UTC (service.db.UTCDateTime).


def _image_columns() -> list[sa.Column]:
    return [
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("size_bytes", sa.Integer, nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id"), nullable=False,
                  index=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "goldens",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id"), nullable=False,
                  index=True),
        sa.Column("sku", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("sealed_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("tenant_id", "sku", "version"),
    )
    op.create_table(
        "golden_images",
        sa.Column("golden_seq", sa.Integer, sa.ForeignKey("goldens.seq"), primary_key=True),
        *_image_columns(),
    )
    op.create_table(
        "inspections",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("tenant_id", sa.String(36), sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("golden_seq", sa.Integer, sa.ForeignKey("goldens.seq"), nullable=False,
                  index=True),
        sa.Column("unit_label", sa.String(200), nullable=True),
        sa.Column("lot_id", sa.String(200), nullable=True),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("overlay_sha256", sa.String(64), nullable=False),
        sa.Column("defect_map_sha256", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_inspections_tenant_seq", "inspections", ["tenant_id", "seq"])
    op.create_table(
        "inspection_images",
        sa.Column("inspection_seq", sa.Integer, sa.ForeignKey("inspections.seq"),
                  primary_key=True),
        *_image_columns(),
    )


def downgrade() -> None:
    for table in ("inspection_images", "inspections", "golden_images", "goldens", "api_keys",
                  "tenants"):
        op.drop_table(table)
