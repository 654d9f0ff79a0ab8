"""PostgreSQL for the SQL tests: the real server, a database of the test module's own.

The server is the one on 127.0.0.1:5432 (``TEST_POSTGRES_URL`` overrides it; ``make test``
starts it with scripts/ensure-postgres). Tests skip, saying why, only when no PostgreSQL
answers; each module creates its own database and drops it afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from sqlalchemy import URL, make_url

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def fresh_database(prefix: str) -> Iterator[URL]:
    """A new database named ``prefix_<random>``; yields its URL (the admin's credentials) and
    drops it on exit, connections still open included."""
    admin_url = make_url(ADMIN_URL)
    try:
        admin = psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(
            f"no PostgreSQL answers at {admin_url.render_as_string(hide_password=True)} "
            f"({' '.join(str(exc).split())}); start one with scripts/ensure-postgres"
        )
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield admin_url.set(database=name)
        finally:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
