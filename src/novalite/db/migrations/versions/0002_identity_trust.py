"""identity trust: token revocation events, login lockout counters

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import novalite.db.base

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocation_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=True),
        sa.Column("role_id", sa.String(length=64), nullable=True),
        sa.Column("audit_id", sa.String(length=64), nullable=True),
        sa.Column("issued_before", novalite.db.base.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.Column("expires_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("failed_auth_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(sa.Column("failed_auth_at", novalite.db.base.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("failed_auth_at")
        batch_op.drop_column("failed_auth_count")
    op.drop_table("revocation_events")
