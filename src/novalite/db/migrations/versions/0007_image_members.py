"""image members: the projects a shared image is offered to, and their answer

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import novalite.db.base

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_members",
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("member", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("image_id", "member"),
    )
    with op.batch_alter_table("image_members") as batch_op:
        batch_op.create_index("ix_image_members_member_status", ["member", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("image_members") as batch_op:
        batch_op.drop_index("ix_image_members_member_status")
    op.drop_table("image_members")
