"""`sealcheck serve`: the HTTP API and the web pages, with the checks that fail fast first."""

from __future__ import annotations

import argparse

from service.cli import common
from service.cli.compare import check_defect_model

__all__ = ["add_parser", "run"]


def add_parser(commands) -> None:
    """The ``serve`` command's arguments."""
    parser = commands.add_parser(
        "serve", help="run the HTTP service",
        description="Run the HTTP API (OpenAPI at /docs). Settings come from SEALCHECK_* "
        "environment variables: SEALCHECK_DATABASE_URL (default: SQLite under "
        "SEALCHECK_DATA_DIR), SEALCHECK_DATA_DIR (default ./data), SEALCHECK_MAX_UPLOAD_BYTES, "
        "SEALCHECK_MAX_REQUEST_BYTES, SEALCHECK_MAX_PIXELS, SEALCHECK_WORKERS, "
        "SEALCHECK_QUEUE_SIZE, SEALCHECK_GOLDEN_CACHE_SIZE, SEALCHECK_HEADER_TIMEOUT, "
        "SEALCHECK_READ_TIMEOUT, SEALCHECK_KEEPALIVE_TIMEOUT, SEALCHECK_MAX_CONNECTIONS.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")


def run(args: argparse.Namespace) -> int:
    from service.app import create_app
    from service.server import ServerSetupError, build_server

    if not 0 < args.port < 65536:
        raise common.UsageError(f"--port must be between 1 and 65535, got {args.port}")
    from service.storage import BlobStore

    settings = common.load_settings()
    common.migrated_engine(settings).dispose()  # a bad database URL fails here, in one line
    try:
        BlobStore(settings.data_dir).open()
    except OSError as exc:
        raise common.UsageError(f"cannot use the data directory {settings.data_dir} "
                                f"({exc.strerror}); check SEALCHECK_DATA_DIR") from None
    with common.defect_model_configured(settings):
        check_defect_model()
        from service.runtime import tune_allocator

        tune_allocator()  # big photo arrays reuse freed memory (see service/runtime.py)
        try:
            server, listener = build_server(create_app(settings), settings, args.host, args.port)
        except ServerSetupError as exc:
            raise common.UsageError(str(exc)) from None
        with listener:
            server.run(sockets=[listener])
    return 0
