"""Fixtures and helpers for the HTTP service tests (test_api*.py, test_service*.py).

Both databases are real: SQLite in a temporary directory, and PostgreSQL at 127.0.0.1:5432
(trust auth, user postgres, database ``test``; ``SEALCHECK_TEST_POSTGRES_URL`` overrides),
where every app under test gets a schema of its own, named after the process and a random
suffix and dropped at the end of the session, so that runs never see each other's rows.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from service.app import create_app
from service.auth import create_key
from service.db import make_engine, make_sessionmaker, migrate
from service.settings import Settings

POSTGRES_URL = os.environ.get("SEALCHECK_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
TABLES = ("tenants", "api_keys", "goldens", "golden_images", "inspections", "inspection_images",
          "lots", "web_sessions")
REPO = Path(__file__).resolve().parents[1]
SEALCHECK = str(Path(sys.executable).with_name("sealcheck"))


@pytest.fixture(scope="session")
def postgres_schema_url() -> Iterator[Callable[[], str]]:
    """A factory of database URLs, each with a fresh schema as search_path; all are dropped at
    the end of the session."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    schemas: list[str] = []

    def new_schema_url() -> str:
        schema = f"sealcheck_test_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            with admin.connect() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        except sa.exc.OperationalError as exc:
            pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL} ({exc.orig}); the "
                        "service tests need it (SEALCHECK_TEST_POSTGRES_URL names another)")
        schemas.append(schema)
        options = urllib.parse.quote(f"-csearch_path={schema}")
        separator = "&" if "?" in POSTGRES_URL else "?"
        return f"{POSTGRES_URL}{separator}options={options}"

    try:
        yield new_schema_url
    finally:
        with admin.connect() as connection:
            for schema in schemas:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


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
# Photos

TEST_CAMERA_SIZE = (1000, 750)  # small photos keep the suite fast


@functools.cache
def photo_pair(defect: str | None = None) -> tuple[bytes, bytes, list[int]]:
    """JPEG bytes of (golden, unit) and the product ROI: identical content, or one defect."""
    from tests.helpers.scenes import Camera, make_pair

    camera = Camera(width=TEST_CAMERA_SIZE[0], height=TEST_CAMERA_SIZE[1])
    defects = ((defect, 12.0),) if defect else ()
    pair = make_pair("astronaut", golden_camera=camera, defects=defects, seed=1)
    return jpeg(pair.golden), jpeg(pair.unit), [int(v) for v in pair.roi]


def jpeg(rgb, quality: int = 92) -> bytes:
    ok, buffer = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# A real server

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
