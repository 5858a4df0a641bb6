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
    "BLOB_COLUMNS",
    "ApiKey",
    "Base",
    "Golden",
    "GoldenImage",
    "HealthProbe",
    "IdempotentRequest",
    "Inspection",
    "InspectionImage",
    "InspectionReport",
    "Lot",
    "Tenant",
    "WebSession",
    "make_engine",
    "make_sessionmaker",
    "migrate",
    "new_id",
    "referenced_blobs",
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
    # Refreshed at most hourly (service.auth), so a request does not write on every call;
    # null for keys unused since revision 0005.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


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
    # The golden at the analysis size, PNG (the web pages' picture); null before revision 0003.
    picture_sha256: Mapped[str | None] = mapped_column(sa.String(64))


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
    # A lot's id joins the inspection to that lot (service.lots); any other text is a label.
    lot_id: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    verdict: Mapped[str] = mapped_column(sa.String(16))
    score: Mapped[float] = mapped_column(sa.Float)
    report: Mapped[dict] = mapped_column(sa.JSON)
    overlay_sha256: Mapped[str] = mapped_column(sa.String(64))
    defect_map_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The unit resampled onto the golden's picture, PNG; null when the unit was not registered
    # and for inspections stored before revision 0003.
    aligned_sha256: Mapped[str | None] = mapped_column(sa.String(64))


class InspectionImage(_StoredPhoto, Base):
    __tablename__ = "inspection_images"

    inspection_seq: Mapped[int] = mapped_column(sa.ForeignKey("inspections.seq"),
                                                primary_key=True)


class Lot(Base):
    """A production lot judged by AQL sampling: its plan is fixed when the lot is opened."""

    __tablename__ = "lots"
    __table_args__ = (sa.Index("ix_lots_tenant_seq", "tenant_id", "seq"),)

    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(sa.String(36), unique=True, default=new_id)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id"))
    golden_seq: Mapped[int] = mapped_column(sa.ForeignKey("goldens.seq"), index=True)
    reference: Mapped[str | None] = mapped_column(sa.String(200))
    lot_size: Mapped[int] = mapped_column(sa.Integer)
    level: Mapped[str] = mapped_column(sa.String(4))
    aql: Mapped[dict] = mapped_column(sa.JSON)  # class -> AQL, as asked
    plan: Mapped[dict] = mapped_column(sa.JSON)  # service.aql.LotPlan.as_dict(), as computed
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebSession(Base):
    """A browser signed in to the web pages (service.web.sessions).

    The cookie holds a random token; only its SHA-256 is stored, so a copy of the database
    cannot be used to sign in. Deleting the API key ends its sessions (ON DELETE CASCADE).
    """

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id"))
    api_key_id: Mapped[str] = mapped_column(sa.ForeignKey("api_keys.id", ondelete="CASCADE"),
                                            index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class InspectionReport(Base):
    """A later report of a stored inspection, from re-scoring (``sealcheck rescore --from-db``).

    The report given when the inspection was made stays in ``inspections.report`` (version 1);
    each re-scoring adds a row with the next version, so the audit trail shows which scoring
    (``scoring_version``: sealcheck, report schema, defect model) gave which verdict when. At
    most one row per inspection and scoring version, so a resumed or repeated run never adds a
    second.
    """

    __tablename__ = "inspection_reports"
    __table_args__ = (
        sa.UniqueConstraint("inspection_seq", "version"),
        sa.UniqueConstraint("inspection_seq", "scoring_version"),
    )

    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    inspection_seq: Mapped[int] = mapped_column(sa.ForeignKey("inspections.seq"), index=True)
    version: Mapped[int] = mapped_column(sa.Integer)  # 2, 3, ...: 1 is inspections.report
    scoring_version: Mapped[str] = mapped_column(sa.String(300))
    verdict: Mapped[str] = mapped_column(sa.String(16))
    score: Mapped[float] = mapped_column(sa.Float)
    report: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

class IdempotentRequest(Base):
    """A POST sent with an ``Idempotency-Key`` header, and its first answer (service.idempotency).

    The primary key (tenant, key) is what makes two requests with one key create one thing: the
    second insert fails while the first is in flight or done. ``status_code`` is null while the
    first request runs; then it and ``body`` hold the answer every retry gets back.
    """

    __tablename__ = "idempotency_keys"

    tenant_id: Mapped[str] = mapped_column(sa.ForeignKey("tenants.id"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))  # SHA-256 of route and body
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    media_type: Mapped[str | None] = mapped_column(sa.String(100))
    location: Mapped[str | None] = mapped_column(sa.String(2000))  # a web form's redirect
    body: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class HealthProbe(Base):
    """One row that /readyz rewrites after a storage error, to see that commits work again."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    written_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


# Every column that names a stored file (service.storage): the garbage collector keeps these,
# and the tests check that each one names a file that exists.
BLOB_COLUMNS = (
    (GoldenImage, "sha256"),
    (InspectionImage, "sha256"),
    (Inspection, "overlay_sha256"),
    (Inspection, "defect_map_sha256"),
    (Inspection, "aligned_sha256"),
    (Golden, "picture_sha256"),
)


def referenced_blobs(connection: sa.Connection) -> set[str]:
    """The SHA-256 names of every file a row refers to."""
    queries = [sa.select(getattr(model, column)).where(getattr(model, column).is_not(None))
               for model, column in BLOB_COLUMNS]
    return {row[0] for row in connection.execute(sa.union(*queries))}


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
