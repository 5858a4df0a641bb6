"""Report versions: later reports of a stored inspection, from `sealcheck rescore --from-db`.

- ``inspection_reports``: one row per re-scoring of an inspection, with the next version number
  (the inspection's own report is version 1 and stays in ``inspections.report``), the
  ``scoring_version`` that produced it (sealcheck, report schema, defect model), its verdict,
  score, full report and time. Unique per (inspection, version) and per (inspection, scoring
  version): a resumed or repeated run cannot add a second row for the same scoring.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inspection_reports",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("inspection_seq", sa.Integer, sa.ForeignKey("inspections.seq"),
                  nullable=False, index=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("scoring_version", sa.String(300), nullable=False),
        sa.Column("verdict", sa.String(16), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),  # naive UTC (service.db)
        sa.UniqueConstraint("inspection_seq", "version"),
        sa.UniqueConstraint("inspection_seq", "scoring_version"),
    )


def downgrade() -> None:
    op.drop_table("inspection_reports")
