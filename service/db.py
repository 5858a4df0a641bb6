"""Database tables, the engine, and the Alembic migrations that create them.

Tables live here, apart from the API schemas (:mod:`service.schemas`). Public ids are random
UUIDs, so they reveal nothing about other tenants; an internal ``seq`` integer orders rows for
cursor pagination. Times are stored as naive UTC and handed back timezone-aware, because SQLite
has no timezone type and the two databases must behave alike.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

__all__ = [
    "ApiKey",
    "Base",
    "Golden",
    "GoldenImage",
    "Inspection",
    "InspectionImage",
    "Tenant",
    "make_engine",
    "migrate",
    "new_id",
    "utcnow",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_id() -> str:
    return str(uuid.uuid4())


class UTCDateTime(sa.types.TypeDecorator):
    """Aware datetimes in Python, naive UTC in the database (same on SQLite and PostgreSQL)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; sealcheck stores UTC, pass an aware one")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return None if value is None else value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    pass


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    # SHA-256 hex of the key; the key itself is never stored (see service.auth).
    key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Golden(Base):
    __tablename__ = "goldens"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "sku", "version"),)

    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id"), index=True)
    sku: Mapped[str] = mapped_column(sa.String(200))
    version: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(200))
    spec: Mapped[dict] = mapped_column(sa.JSON)
    sealed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class _StoredPhoto:
    """Columns of an uploaded photo, shared by golden and inspection photos."""

    position: Mapped[int] = mapped_column(sa.Integer, primary_key=True)  # 0 = primary view
    sha256: Mapped[str] = mapped_column(sa.String(64))
    format: Mapped[str] = mapped_column(sa.String(16))
    width: Mapped[int] = mapped_column(sa.Integer)
    height: Mapped[int] = mapped_column(sa.Integer)
    size_bytes: Mapped[int] = mapped_column(sa.Integer)
    filename: Mapped[str | None] = mapped_column(sa.String(255))


class GoldenImage(_StoredPhoto, Base):
    __tablename__ = "golden_images"

    golden_seq: Mapped[int] = mapped_column(sa.ForeignKey("goldens.seq"), primary_key=True)


class Inspection(Base):
    __tablename__ = "inspections"
    __table_args__ = (sa.Index("ix_inspections_tenant_seq", "tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id"))
    golden_seq: Mapped[int] = mapped_column(sa.ForeignKey("goldens.seq"), index=True)
    unit_label: Mapped[str | None] = mapped_column(sa.String(200))
    lot_id: Mapped[str | None] = mapped_column(sa.String(200))
    verdict: Mapped[str] = mapped_column(sa.String(16))
    score: Mapped[float] = mapped_column(sa.Float)
    report: Mapped[dict] = mapped_column(sa.JSON)
    overlay_sha256: Mapped[str] = mapped_column(sa.String(64))
    defect_map_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class InspectionImage(_StoredPhoto, Base):
    __tablename__ = "inspection_images"

    inspection_seq: Mapped[int] = mapped_column(sa.ForeignKey("inspections.seq"),
                                                primary_key=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers never block the writer. synchronous=FULL: a committed row survives a crash of
    # the machine too, not only of the process (NORMAL would be enough for kill -9 alone).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for SQLite (WAL mode, its directory created) or PostgreSQL (psycopg 3)."""
    if url.startswith("sqlite"):
        database = sa.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Sessions move between the event loop's thread pool and the pipeline workers.
        engine = sa.create_engine(url, connect_args={"check_same_thread": False})
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def make_sessionmaker(engine: Engine) -> sessionmaker:
    return sessionmaker(engine, expire_on_commit=False)


def migrate(engine: Engine) -> None:
    """Bring the database schema up to the newest Alembic revision (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
