"""Fixtures every test module can use: the in-process command line (the CLI, batch and
bad-input tests call it), PostgreSQL schemas and the database backends of the service tests,
a key on the module's app, and the photos of the rescore tests."""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from service.cli import main
from testkit.batch import write_rescore_photos
from testkit.server import POSTGRES_URL
from testkit.service import BACKENDS, new_key


@pytest.fixture
def cli(capfd, monkeypatch):
    """Call ``main()`` in-process: returns (exit code, stdout, stderr) at the fd level.

    Every ``SEALCHECK_*`` variable of the calling environment is removed first, so the
    settings are the defaults unless a test sets them.
    """
    for name in list(os.environ):
        if name.startswith("SEALCHECK_"):
            monkeypatch.delenv(name)

    def call(*args: str | os.PathLike) -> tuple[int, str, str]:
        capfd.readouterr()  # drop anything printed before the call
        code = main([str(a) for a in args])
        out, err = capfd.readouterr()
        return code, out, err

    return call


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



@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def key(api) -> str:
    """A key for a new tenant on the module's ``api`` app."""
    return new_key(api.settings)


@pytest.fixture(scope="module")
def rescore_photos(tmp_path_factory) -> Path:
    """golden/unit pairs: identical content, a 40 mm hole, another product; a spec, a corrupt
    file (testkit.batch.ROWS lists a job over them)."""
    return write_rescore_photos(tmp_path_factory.mktemp("rescore_photos"))
