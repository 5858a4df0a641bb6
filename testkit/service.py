"""Helpers for the HTTP service tests: apps on either database, keys, rows and files stored.

Both databases are real: SQLite in a temporary directory, and PostgreSQL at 127.0.0.1:5432
(trust auth, user postgres, database ``test``; ``SEALCHECK_TEST_POSTGRES_URL`` overrides),
where every app under test gets a schema of its own from the ``postgres_schema_url`` fixture
(tests/conftest.py), dropped at the end of the session, so that runs never see each other's rows.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key
from service.db import make_engine, make_sessionmaker, migrate
from service.settings import Settings
from testkit.server import SEALCHECK

BACKENDS = ("sqlite", "postgresql")
TABLES = ("tenants", "api_keys", "goldens", "golden_images", "inspections", "inspection_images",
          "lots", "web_sessions")
REPO = Path(__file__).resolve().parents[1]


def database_url(backend: str, data_dir: Path, request: pytest.FixtureRequest) -> str:
    """A fresh, empty database for one data directory: SQLite inside it, or a new schema."""
    if backend == "sqlite":
        return f"sqlite:///{data_dir / 'sealcheck.db'}"
    return request.getfixturevalue("postgres_schema_url")()


def settings_for(backend: str, data_dir: Path, request: pytest.FixtureRequest,
                 **overrides) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url(backend, data_dir, request),
                    **overrides)


@contextlib.contextmanager
def running_app(backend: str, name: str, request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory, **overrides) -> Iterator[TestClient]:
    """The app (lifespan included) on a fresh data directory named `name`-`backend`, with
    its settings at ``client.settings``; `overrides` go to :class:`Settings`."""
    data_dir = tmp_path_factory.mktemp(f"{name}-{backend}")
    settings = settings_for(backend, data_dir, request, **overrides)
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


def new_key(settings: Settings, tenant: str | None = None) -> str:
    """A key for a new tenant (unique name, so tests sharing a schema never share a tenant)."""
    engine = make_engine(settings.database_url)
    try:
        migrate(engine)
        with make_sessionmaker(engine)() as session:
            return create_key(session, tenant or f"tenant-{secrets.token_hex(6)}")
    finally:
        engine.dispose()


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def row_counts(settings: Settings) -> dict[str, int]:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return {t: connection.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in TABLES}
    finally:
        engine.dispose()


def database_scalar(settings: Settings, statement):
    """One value read from the app's database (a count, say), on a connection of its own."""
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            return connection.scalar(statement)
    finally:
        engine.dispose()


def file_count(data_dir: Path) -> int:
    return sum(1 for p in (data_dir / "blobs").rglob("*") if p.is_file()) \
        if (data_dir / "blobs").exists() else 0


def dangling_files(settings: Settings) -> list[str]:
    """Every file a row names that is not in the store (must always be empty)."""
    from service.db import referenced_blobs
    from service.storage import BlobStore

    blobs = BlobStore(settings.data_dir)
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as connection:
            names = referenced_blobs(connection)
    finally:
        engine.dispose()
    return sorted(n for n in names if not blobs.exists(n))


# --------------------------------------------------------------------------------------------
# A real server

def server_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(SEALCHECK_DATABASE_URL=settings.database_url,
               SEALCHECK_DATA_DIR=str(settings.data_dir), SEALCHECK_WORKERS="2")
    return env


def start_server(settings: Settings, port: int, log: Path) -> subprocess.Popen:
    """`sealcheck serve` in a subprocess; returns once /readyz answers 200."""
    with open(log, "ab") as out:
        process = subprocess.Popen([SEALCHECK, "serve", "--port", str(port)],
                                   env=server_env(settings), stdout=out,
                                   stderr=subprocess.STDOUT, cwd=settings.data_dir)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n"
                                 + log.read_text()[-3000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not become ready in 60 s:\n" + log.read_text()[-3000:])

