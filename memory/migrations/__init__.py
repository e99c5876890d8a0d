"""Alembic environment for Dadang's schema; revisions are append-only."""
