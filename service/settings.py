"""Settings of sealcheck's programs, read once from ``SEALCHECK_*`` environment variables.

This module is the only reader of those variables: the service, the CLI and the batch
workers take what they need from :class:`Settings` and hand it on (the ``vision`` library reads
no environment; its defect model is configured through :func:`vision.defect_model.configure`).

Every setting has an embedded default, so ``make serve`` works with no configuration: the
database is SQLite under ``./data/`` and the photos go beside it. Values that make no sense are
refused when the settings are read (at start-up), with a message that names the variable.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

from vision.decode import DEFAULT_MAX_PIXELS, MIN_SIDE

__all__ = ["Settings", "SettingsError", "debug_requested", "default_workers"]

_MB = 1024 * 1024
_PHOTOS_PER_REQUEST = 4  # at the per-file cap; the default request cap (+ 1 MB of fields)
_MIN_PIXELS = MIN_SIDE * MIN_SIDE  # the smallest photo the decoder accepts at all


class SettingsError(ValueError):
    """A ``SEALCHECK_*`` variable holds a value the service cannot use; one-line message."""


def default_workers() -> int:
    """The CPUs this process may use: the default number of pipeline threads and workers."""
    # The CPUs this process may run on (a container's cpuset), not the host's count.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return _whole(name, raw, minimum)


def _optional_int(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return None
    return _whole(name, raw, minimum)


def _whole(name: str, raw: str, minimum: int) -> int:
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
    # A photo upload's whole body (service.limits); None: four photos at max_upload_bytes.
    max_request_bytes: int | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS  # per photo, checked from the header before decoding
    workers: int = dataclasses.field(default_factory=default_workers)  # pipeline threads
    queue_size: int | None = None  # requests that may wait for a worker; None: twice the workers
    golden_cache_size: int = 8  # prepared goldens kept in memory (~60 MB each at 12 MP)
    defect_model: Path | None = None  # an exported .onnx file; None: the packaged model
    model_threads: int | None = None  # the model's intra-op threads; None: the CPUs (<= 8)
    # The connection layer of `sealcheck serve` (service/server.py), in seconds: a request's
    # line and headers must arrive within header_timeout of the connection opening (or of its
    # first byte after a keep-alive pause); its body may pause at most read_timeout; an idle
    # keep-alive connection is closed after keepalive_timeout.
    header_timeout: int = 10
    read_timeout: int = 15
    keepalive_timeout: int = 5
    max_connections: int | None = None  # None: from the soft file limit (service/server.py)

    def __post_init__(self) -> None:
        if not self.database_url:
            object.__setattr__(self, "database_url",
                               f"sqlite:///{(self.data_dir / 'sealcheck.db').resolve()}")
        if self.queue_size is None:
            object.__setattr__(self, "queue_size", 2 * self.workers)
        if self.max_request_bytes is None:
            object.__setattr__(self, "max_request_bytes",
                               _PHOTOS_PER_REQUEST * self.max_upload_bytes + _MB)
        if self.max_request_bytes < self.max_upload_bytes:
            raise SettingsError(
                f"SEALCHECK_MAX_REQUEST_BYTES ({self.max_request_bytes}) is below "
                f"SEALCHECK_MAX_UPLOAD_BYTES ({self.max_upload_bytes}): a photo at the "
                "per-file limit could never be uploaded; raise the first or lower the second")

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
            max_request_bytes=_optional_int(env, "SEALCHECK_MAX_REQUEST_BYTES", 1024),
            workers=_int(env, "SEALCHECK_WORKERS", default_workers(), 1),
            queue_size=(_int(env, "SEALCHECK_QUEUE_SIZE", 0, 0)
                        if (env.get("SEALCHECK_QUEUE_SIZE") or "").strip() else None),
            golden_cache_size=_int(env, "SEALCHECK_GOLDEN_CACHE_SIZE", 8, 1),
            header_timeout=_int(env, "SEALCHECK_HEADER_TIMEOUT", 10, 1),
            read_timeout=_int(env, "SEALCHECK_READ_TIMEOUT", 15, 1),
            keepalive_timeout=_int(env, "SEALCHECK_KEEPALIVE_TIMEOUT", 5, 1),
            max_connections=_optional_int(env, "SEALCHECK_MAX_CONNECTIONS", 1),
            **_comparison_fields(env),
        )

    @classmethod
    def for_comparison(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Only what a comparison needs (pixel cap, defect model); the rest at its default.

        For ``sealcheck compare``, which opens no database: a setting of the server's (say a
        bad SEALCHECK_DATABASE_URL) must not stop it. Unlike the server, the command line
        refuses a SEALCHECK_MAX_PIXELS that is set but empty.
        """
        env = os.environ if env is None else env
        raw = env.get("SEALCHECK_MAX_PIXELS")
        if raw is not None and raw.strip() == "":
            raise SettingsError(f"SEALCHECK_MAX_PIXELS must be a whole number, got {raw!r}")
        return cls(**_comparison_fields(env))


def _comparison_fields(env: Mapping[str, str]) -> dict:
    model = (env.get("SEALCHECK_DEFECT_MODEL") or "").strip()
    return dict(
        max_pixels=_int(env, "SEALCHECK_MAX_PIXELS", DEFAULT_MAX_PIXELS, _MIN_PIXELS),
        defect_model=Path(model) if model else None,
        model_threads=_optional_int(env, "SEALCHECK_MODEL_THREADS", 1),
    )


def debug_requested(env: Mapping[str, str] | None = None) -> bool:
    """SEALCHECK_DEBUG set: the CLI lets an internal error's traceback through."""
    return bool((os.environ if env is None else env).get("SEALCHECK_DEBUG"))
