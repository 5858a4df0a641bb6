"""Service settings, read once from ``SEALCHECK_*`` environment variables.

Every setting has an embedded default, so ``make serve`` works with no configuration: the
database is SQLite under ``./data/`` and the photos go beside it. Values that make no sense are
refused when the settings are read (at start-up), with a message that names the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["Settings", "SettingsError"]

_MB = 1024 * 1024
# vision.decode.MIN_SIDE squared: the smallest photo accepted at all. Not imported, so that
# `sealcheck keys create` does not load OpenCV (tests/test_service_uvicorn.py checks they agree).
_MIN_PIXELS = 16 * 16


class SettingsError(ValueError):
    """A ``SEALCHECK_*`` variable holds a value the service cannot use; one-line message."""


def _default_workers() -> int:
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything the HTTP service and ``sealcheck keys`` need to know about their environment."""

    data_dir: Path = Path("data")
    database_url: str = ""  # empty: SQLite file ``sealcheck.db`` inside data_dir
    max_upload_bytes: int = 25 * _MB  # per uploaded file, enforced while the body streams in
    max_pixels: int = 80_000_000  # per photo, checked from the header before decoding
    workers: int = dataclasses.field(default_factory=_default_workers)  # pipeline threads
    queue_size: int | None = None  # requests that may wait for a worker; None: twice the workers
    golden_cache_size: int = 8  # prepared goldens kept in memory (~60 MB each at 12 MP)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite:///{(self.data_dir / 'sealcheck.db').resolve()}")
        if self.queue_size is None:
            object.__setattr__(self, "queue_size", 2 * self.workers)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read the ``SEALCHECK_*`` variables; unset or empty ones take the default."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("SEALCHECK_DATA_DIR") or "data")
        database_url = (env.get("SEALCHECK_DATABASE_URL") or "").strip()
        if database_url and not database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError(
                "SEALCHECK_DATABASE_URL must be an SQLAlchemy URL for SQLite or PostgreSQL, e.g. "
                f"sqlite:///data/sealcheck.db or postgresql+psycopg://user@host/db, got "
                f"{database_url.split('://')[0]!r}://...")
        if database_url.startswith(("postgresql://", "postgres://")):
            # The driver that ships with sealcheck is psycopg 3; plain URLs would ask for psycopg2.
            database_url = "postgresql+psycopg://" + database_url.split("://", 1)[1]
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            max_upload_bytes=_int(env, "SEALCHECK_MAX_UPLOAD_BYTES", 25 * _MB, 1024),
            max_pixels=_int(env, "SEALCHECK_MAX_PIXELS", 80_000_000, _MIN_PIXELS),
            workers=_int(env, "SEALCHECK_WORKERS", _default_workers(), 1),
            queue_size=(_int(env, "SEALCHECK_QUEUE_SIZE", 0, 0)
                        if (env.get("SEALCHECK_QUEUE_SIZE") or "").strip() else None),
            golden_cache_size=_int(env, "SEALCHECK_GOLDEN_CACHE_SIZE", 8, 1),
        )
