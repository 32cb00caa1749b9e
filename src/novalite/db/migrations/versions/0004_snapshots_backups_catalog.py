"""volume snapshots and backups, volumes.snapshot_id, Keystone catalog services and endpoints

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import novalite.db.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "volume_snapshots",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("snapshot_metadata", sa.JSON(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("created_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("volume_snapshots") as batch_op:
        batch_op.create_index("ix_volume_snapshots_project_created", ["project_id", "created_at"])
        batch_op.create_index("ix_volume_snapshots_volume", ["volume_id"])
    op.create_table(
        "volume_backups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=255), nullable=True),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=64), nullable=False),
        sa.Column("volume_id", sa.String(length=36), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=True),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("container", sa.String(length=255), nullable=True),
        sa.Column("availability_zone", sa.String(length=255), nullable=False),
        sa.Column("fail_reason", sa.String(length=255), nullable=True),
        sa.Column("backup_metadata", sa.JSON(), nullable=False),
        sa.Column("location", sa.Text(), nullable=True),
        sa.Column("restore_volume_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.Column("updated_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.Column("data_timestamp", novalite.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("volume_backups") as batch_op:
        batch_op.create_index("ix_volume_backups_project_created", ["project_id", "created_at"])
    with op.batch_alter_table("volumes") as batch_op:
        batch_op.add_column(sa.Column("snapshot_id", sa.String(length=36), nullable=True))
    op.create_table(
        "catalog_services",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "catalog_endpoints",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=64), nullable=False),
        sa.Column("interface", sa.String(length=8), nullable=False),
        sa.Column("region_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("builtin_suffix", sa.String(length=255), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", novalite.db.base.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["catalog_services.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("catalog_endpoints") as batch_op:
        batch_op.create_index("ix_catalog_endpoints_service_id", ["service_id"])


def downgrade() -> None:
    op.drop_table("catalog_endpoints")
    op.drop_table("catalog_services")
    with op.batch_alter_table("volumes") as batch_op:
        batch_op.drop_column("snapshot_id")
    op.drop_table("volume_backups")
    op.drop_table("volume_snapshots")
