"""files per user; outbox rows that carry a file, deduplicated per turn

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import memory.types

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("mime", sa.String(length=127), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("source_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", memory.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["source_message_id"], ["messages.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "source_message_id", "name", name="uq_file_source"),
    )
    op.create_index("ix_files_user", "files", ["user_id", "id"])
    # Plain columns and a unique index: both work on SQLite without rebuilding the table.
    op.add_column("outbox", sa.Column("file_id", sa.Integer(), nullable=True))
    op.add_column("outbox", sa.Column("dedupe_key", sa.String(length=128), nullable=True))
    op.create_index("uq_outbox_dedupe", "outbox", ["dedupe_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_outbox_dedupe", table_name="outbox")
    with op.batch_alter_table("outbox") as batch_op:
        batch_op.drop_column("dedupe_key")
        batch_op.drop_column("file_id")
    op.drop_index("ix_files_user", table_name="files")
    op.drop_table("files")
